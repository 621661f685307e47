import fc from 'fast-check';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordingProxy } from '../../test/recording-proxy';
import { tempDir } from '../../test/helpers';
import { spansOfCapture } from '../pipeline/replay';
import { frame, settings } from '../../test/http2-frames';
import { Http2Parser, PREFACE } from '../parsers/http2/parser';
import type { Http2Message } from '../parsers/http2/messages';
import { StreamMasker } from './redact-payload';
import { isSecretHeader } from '../parsers/http1/secrets';
import { HUFFMAN_CODES } from '../parsers/http2/hpack-tables';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpackjs = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string; huffman?: boolean; neverIndex?: boolean }>): void; read(): Buffer } };
};

interface Field {
  name: string;
  value: string;
  huffman: boolean;
  neverIndex: boolean;
}

const SECRET = 'S3cr3tT0ken';

/** A client's bytes: preface, SETTINGS, then each request's header block in a HEADERS frame (some padded or split into CONTINUATION). */
function clientStream(requests: Field[][], shapes: number[], bodies = true): Buffer {
  const enc = hpackjs.compressor.create({ table: { size: 4096 } });
  const parts = [PREFACE, settings()];
  requests.forEach((fields, i) => {
    enc.write(fields);
    const block = enc.read();
    const stream = 1 + 2 * i;
    const shape = shapes[i % shapes.length]! % 3;
    if (shape === 0) parts.push(frame(1, 0x4 | 0x1, stream, block));
    else if (shape === 1) parts.push(frame(1, 0x4 | 0x1 | 0x8 | 0x20, stream, Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 16]), block, Buffer.alloc(3)])));
    else {
      const cut = Math.floor(block.length / 2);
      parts.push(frame(1, 0x1, stream, block.subarray(0, cut)), frame(9, 0x4, stream, block.subarray(cut)));
    }
    if (bodies) parts.push(frame(0, 0x1, stream, Buffer.from(`body ${SECRET}`))); // bodies are not headers: left alone
  });
  return Buffer.concat(parts);
}

function requestsOf(bytes: Buffer): Http2Message[] {
  const out: Http2Message[] = [];
  const p = new Http2Parser();
  p.onMessage = (m) => out.push(m);
  p.feed('client', { data: bytes, ts: 1n, tid: 1 });
  return out;
}

/** Mask a stream cut into records at these points. */
function maskInRecords(bytes: Buffer, cuts: number[]): Buffer {
  const out = Buffer.from(bytes);
  const m = new StreamMasker();
  const points = [...new Set([0, ...cuts.map((c) => c % (out.length + 1)), out.length])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) m.mask(out.subarray(points[i]!, points[i + 1]!));
  return out;
}

const field = fc.record({
  name: fc.constantFrom('authorization', 'cookie', 'x-api-key', 'x-request-id', 'accept', 'user-agent', 'x-note'),
  value: fc.oneof(fc.constant(`Bearer ${SECRET}`), fc.constant(`id=${SECRET}; theme=dark`), fc.stringMatching(/^[a-z0-9 ;=-]{0,20}$/)),
  huffman: fc.boolean(),
  neverIndex: fc.boolean(),
});
const request = fc
  .tuple(fc.constantFrom('/items', '/items?token=abc123&page=2', `/search?q=${SECRET}#frag=x`, '/a?x'), fc.array(field, { maxLength: 5 }), fc.boolean())
  .map(([path, fields, huffman]): Field[] => [
    { name: ':method', value: 'GET', huffman, neverIndex: false },
    { name: ':path', value: path, huffman, neverIndex: false },
    { name: ':scheme', value: 'http', huffman, neverIndex: false },
    { name: ':authority', value: 'shop', huffman, neverIndex: false },
    ...fields,
  ]);

/** A path with each query value's characters as 'v': what masking must keep. */
function querySkeleton(path: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const hash = path.indexOf('#', q);
  const end = hash < 0 ? path.length : hash;
  const query = path
    .slice(q + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq < 0 ? pair : `${pair.slice(0, eq + 1)}${'v'.repeat(pair.length - eq - 1)}`;
    });
  return `${path.slice(0, q + 1)}${query.join('&')}${path.slice(end)}`;
}

describe('HTTP/2 masking in captures', () => {
  it('hides credential values and :path query values, and every other header decodes as before, however the bytes are cut', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 8 }), (requests, shapes, cuts) => {
        const original = clientStream(requests, shapes.length ? shapes : [0]);
        const masked = maskInRecords(original, cuts);
        expect(masked.length).toBe(original.length);
        const before = requestsOf(original);
        const after = requestsOf(masked);
        expect(after.length).toBe(before.length);
        for (let i = 0; i < before.length; i++) {
          const [b, a] = [before[i]!, after[i]!];
          if (b.kind !== 'request' || a.kind !== 'request') throw new Error('expected requests');
          expect(a.unknownHeaders).toEqual(b.unknownHeaders);
          expect(a.headers.map(([n]) => n)).toEqual(b.headers.map(([n]) => n));
          a.headers.forEach(([name, value], k) => {
            const was = b.headers[k]![1];
            expect(value.length, name).toBe(was.length); // decoded lengths kept: HPACK's table sizes stay right
            if (isSecretHeader(name)) {
              if (was.length > 0) expect(value).not.toContain(SECRET.slice(0, 4));
            } else if (name === ':path') {
              // the path and the query's names stay; its values are masked
              expect(querySkeleton(value)).toBe(querySkeleton(was));
              if (was.includes('?')) expect(value).not.toContain(SECRET);
            } else expect(value, name).toBe(was);
          });
        }
        // Bodies are untouched.
        expect(masked.toString('latin1').split(`body ${SECRET}`).length).toBe(original.toString('latin1').split(`body ${SECRET}`).length);
      }),
      { numRuns: 300 },
    );
  });

  it('masks a plain (not Huffman) secret with *, byte for byte', () => {
    const bytes = clientStream(
      [
        [
          { name: ':method', value: 'GET', huffman: false, neverIndex: false },
          { name: ':path', value: '/p?k=v1', huffman: false, neverIndex: false },
          { name: 'authorization', value: `Bearer ${SECRET}`, huffman: false, neverIndex: true },
        ],
      ],
      [0],
      false,
    );
    const masked = maskInRecords(bytes, []);
    const text = masked.toString('latin1');
    expect(text).not.toContain(SECRET);
    expect(text).toContain('*'.repeat(`Bearer ${SECRET}`.length));
    expect(text).toContain('/p?k=**');
  });

  it('leaves no character of a Huffman-coded secret wherever the records cut it, a symbol split between two included', () => {
    // Characters for which some other symbol of the same code length begins with any first bits of theirs
    // (nearly every letter and digit): split anywhere, each can become another character.
    const codes = HUFFMAN_CODES.slice(0, 256);
    const replaceable = (c: string) => {
      const [length, code] = codes[c.charCodeAt(0)]!;
      for (let kept = 1; kept < length; kept++) {
        const span = 2 ** (length - kept);
        const start = Math.floor(code / span) * span;
        if (!codes.some(([l, other], sym) => l === length && other !== code && other >= start && other < start + span && !'&=#'.includes(String.fromCharCode(sym)))) return false;
      }
      return true;
    };
    const secret = 'Zq7Vx2Lm9Kp4Wd8Rt5Gy3Nb6Hj1Fc0';
    expect([...secret].every(replaceable)).toBe(true);
    const value = `Bearer ${secret}`;
    // 'A' (100001) has one other 6-bit code after its first five bits, '=' (100000): split there it stays
    // 'A', since a new '=' would change the query's shape.
    const path = `/p?k=${'A'.repeat(12)}&n=1`;
    const bytes = clientStream(
      [
        [
          { name: ':method', value: 'GET', huffman: true, neverIndex: false },
          { name: ':path', value: path, huffman: true, neverIndex: false },
          { name: 'authorization', value, huffman: true, neverIndex: true },
        ],
      ],
      [0],
      false,
    );
    const header = (b: Buffer, name: string) => {
      const [m] = requestsOf(b);
      if (m?.kind !== 'request') throw new Error('expected a request');
      return m.headers.find(([n]) => n === name)![1];
    };
    const authorization = (b: Buffer) => header(b, 'authorization');
    // Uncut, a character that is its code length's stand-in stays itself: those are not the split's doing.
    const whole = authorization(maskInRecords(bytes, []));
    const standIns = new Set([...value].flatMap((c, i) => (whole[i] === c ? [i] : [])));
    for (let cut = 1; cut < bytes.length; cut++) {
      const masked = authorization(maskInRecords(bytes, [cut]));
      expect(masked.length).toBe(value.length);
      const kept = [...value].flatMap((c, i) => (i >= 'Bearer '.length && masked[i] === c && !standIns.has(i) ? [`${c}@${i}`] : []));
      expect(kept, `cut at byte ${cut}`).toEqual([]);
      const maskedPath = header(maskInRecords(bytes, [cut]), ':path');
      expect(querySkeleton(maskedPath), `cut at byte ${cut}`).toBe(querySkeleton(path));
      expect(maskedPath.replace(/[^&=#]/g, ''), `cut at byte ${cut}`).toBe('=&=');
    }
  });

  it('keeps its place over bytes the kernel did not copy, and masks what a gap leaves of a header block', () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    const block = (fields: Field[]) => {
      enc.write(fields);
      return enc.read();
    };
    const req = (path: string): Field[] => [
      { name: ':method', value: 'POST', huffman: true, neverIndex: false },
      { name: ':path', value: path, huffman: true, neverIndex: false },
      { name: 'authorization', value: `Bearer ${SECRET}`, huffman: false, neverIndex: true },
    ];
    const big = Buffer.alloc(10_000, 0x41);
    const first = Buffer.concat([PREFACE, settings(), frame(1, 0x4, 1, block(req('/upload?k=1'))), frame(0, 0x1, 1, big)]);
    const second = frame(1, 0x5, 3, block(req('/next?k=2')));
    // The kernel copied the first 4096 bytes of the write that carried the big DATA frame.
    const m = new StreamMasker();
    const cutAt = 4096;
    const head = Buffer.from(first.subarray(0, cutAt));
    m.mask(head, first.length - cutAt);
    const tail = Buffer.from(second);
    m.mask(tail);
    expect(head.toString('latin1')).not.toContain(SECRET);
    expect(tail.toString('latin1')).not.toContain(SECRET);
    // The second request still decodes: the gap fell in a DATA frame, so HPACK's state held.
    const p = new Http2Parser();
    const got: Http2Message[] = [];
    p.onMessage = (x) => got.push(x);
    p.feed('client', { data: head, ts: 1n, tid: 1 });
    p.gap('client', first.length - cutAt, 1n);
    p.feed('client', { data: tail, ts: 2n, tid: 1 });
    const second2 = got.find((x) => x.kind === 'request' && x.streamId === 3);
    expect(second2 && second2.kind === 'request' && second2.path).toMatch(/^\/next\?k=.$/);

    // A gap inside a header block: HPACK's table is lost, so every later header-block byte is masked.
    const m2 = new StreamMasker();
    const blockStart = PREFACE.length + settings().length + 9;
    const cut = Buffer.from(first.subarray(0, blockStart + 2));
    m2.mask(cut, 3);
    const rest = Buffer.from(Buffer.concat([first.subarray(blockStart + 5), second]));
    m2.mask(rest);
    expect(rest.toString('latin1')).not.toContain(SECRET);
  });

  it('resumes at the next record that starts a frame when lost bytes cross a frame boundary, and reads later blocks as after a late join', () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    const block = (fields: Field[]) => {
      enc.write(fields);
      return enc.read();
    };
    const req = (path: string, note: string): Field[] => [
      { name: ':method', value: 'POST', huffman: true, neverIndex: false },
      { name: ':path', value: path, huffman: true, neverIndex: false },
      { name: 'authorization', value: `Bearer ${SECRET}`, huffman: false, neverIndex: true },
      { name: 'x-note', value: note, huffman: false, neverIndex: false },
    ];
    // A 20 KB body in two DATA frames written at once: the copy ends inside the first, the loss runs past its end.
    const first = Buffer.concat([
      PREFACE,
      settings(),
      frame(1, 0x4, 1, block(req('/upload?k=1', 'one'))),
      frame(0, 0, 1, Buffer.alloc(16_384, 0x41)),
      frame(0, 0x1, 1, Buffer.alloc(4_000, 0x42)),
    ]);
    const second = frame(1, 0x5, 3, block(req('/next?k=2', 'two')));
    const m = new StreamMasker();
    const head = Buffer.from(first.subarray(0, 4096));
    m.mask(head, first.length - 4096);
    const tail = Buffer.from(second);
    m.mask(tail);
    const p = new Http2Parser();
    const got: Http2Message[] = [];
    p.onMessage = (x) => got.push(x);
    p.feed('client', { data: head, ts: 1n, tid: 1 });
    p.gap('client', first.length - 4096, 1n);
    p.feed('client', { data: tail, ts: 2n, tid: 1 });
    const next = got.find((x): x is Extract<Http2Message, { kind: 'request' }> => x.kind === 'request' && x.streamId === 3);
    // Its block names entries of a table the lost bytes may have changed: those are unknown, and their values masked.
    expect(next).toBeDefined();
    expect(next!.method).toBe('POST');
    expect(tail.toString('latin1')).not.toContain(SECRET);
    expect(tail.subarray(0, 9)).toEqual(second.subarray(0, 9));
    expect(tail.equals(Buffer.alloc(tail.length, 0x2a))).toBe(false);
    // A record that does not start a frame while framing is lost is masked whole.
    const m2 = new StreamMasker();
    const h2 = Buffer.from(first.subarray(0, 4096));
    m2.mask(h2, first.length - 4096 + 3);
    const odd = Buffer.from(second.subarray(3));
    m2.mask(odd);
    expect(odd.equals(Buffer.alloc(odd.length, 0x2a))).toBe(true);
  });

  it('masks what a real HTTP/2 client and server (nghttp2 in node:http2) send, and the spans of the masked capture keep every other field', async () => {
    const server = http2.createServer((_req, res) => {
      res.setHeader('set-cookie', `session=${SECRET}`);
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = await recordingProxy((server.address() as { port: number }).port, 7, '/usr/bin/node');
    const client = http2.connect(`http://127.0.0.1:${proxy.port}`);
    for (const q of ['a', 'b', 'c']) {
      await new Promise<void>((resolve, reject) => {
        const r = client.request({
          ':path': `/items?token=${SECRET}&q=${q}`,
          authorization: `Bearer ${SECRET}`,
          cookie: `id=${SECRET}`,
          'x-note': 'hide me',
          'accept-language': 'keep me',
        });
        r.on('data', () => {})
          .on('end', resolve)
          .on('error', reject);
        r.end();
      });
    }
    client.close();
    await new Promise((r) => setTimeout(r, 50));
    // What the live agent does to each data record, one masker per direction.
    const maskers = new Map<string, StreamMasker>();
    for (const ev of proxy.events) {
      if (ev.type !== 'data') continue;
      const key = ev.direction;
      if (!maskers.has(key)) maskers.set(key, new StreamMasker());
      maskers.get(key)!.mask(ev.data);
      expect(Buffer.from(ev.data).toString('latin1')).not.toContain(SECRET);
    }
    // Decoded, no header says the secret any more (nghttp2 Huffman-codes it, so the raw bytes never did).
    const parser = new Http2Parser();
    const messages: Http2Message[] = [];
    parser.onMessage = (x) => messages.push(x);
    for (const ev of proxy.events) if (ev.type === 'data') parser.feed(ev.direction === 'egress' ? 'client' : 'server', { data: ev.data, ts: ev.ts, tid: 1 });
    const headers = messages.flatMap((x) => ('headers' in x ? x.headers : []));
    // Headers on the allowlist keep their values; any other is masked like a credential.
    expect(headers.filter(([n]) => n === 'accept-language').map(([, v]) => v)).toEqual(['keep me', 'keep me', 'keep me']);
    expect(
      headers
        .filter(([n]) => n === 'x-note')
        .map(([, v]) => v)
        .every((v) => !v.includes('hide')),
    ).toBe(true);
    expect(headers.filter(([n]) => ['authorization', 'cookie', 'set-cookie', ':path'].includes(n))).toHaveLength(12);
    for (const [n, v] of headers) expect(v, n).not.toContain(SECRET);
    const file = path.join(tempDir(), 'h2.loupe');
    await proxy.close(file);
    server.close();
    const { spans } = spansOfCapture(file);
    expect(spans).toHaveLength(3);
    for (const span of spans) {
      expect(span.kind).toBe('client');
      expect(span.attributes['http.response.status_code']).toBe(200);
      expect(String(span.attributes['url.full'])).toMatch(/\/items\?token=REDACTED&q=REDACTED$/);
      expect(span.attributes['loupe.parse_error']).toBeUndefined();
    }
  });

  it('masks the same bytes however the records cut them: valid streams, and random bytes after an HTTP/2 start', () => {
    const midStream = frame(1, 0x5, 3, Buffer.from([0x82, 0x86, 0x0f, 0x10, 0x03, 0x61, 0x62, 0x63]));
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 12 }), (requests, shapes, cuts) => {
        const original = clientStream(requests, shapes.length ? shapes : [0]);
        expect(maskInRecords(original, cuts).equals(maskInRecords(original, []))).toBe(true);
        // A byte at a time: every possible cut at once.
        expect(maskInRecords(original, [...original.keys()]).equals(maskInRecords(original, []))).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.constantFrom(PREFACE, settings([[1, 4096]]), midStream), fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 8 }), (start, junk, cuts) => {
        const bytes = Buffer.concat([start, Buffer.from(junk)]);
        expect(maskInRecords(bytes, cuts).equals(maskInRecords(bytes, []))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("masks credential members of a JSON body across DATA frames, and a gRPC stream's messages whole but their prefixes, however the records cut them", () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    const block = (fields: Array<[string, string]>) => {
      enc.write(fields.map(([name, value]) => ({ name, value, huffman: true })));
      return enc.read();
    };
    const json = Buffer.from(`{"user":"ann","password":"${SECRET}","keep":"visible"}`);
    const message = Buffer.from(`\x0a\x0b${SECRET}`, 'latin1'); // protobuf: field 1, 11 bytes
    const grpcMessage = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    const bytes = Buffer.concat([
      PREFACE,
      settings(),
      frame(
        1,
        0x4,
        1,
        block([
          [':method', 'POST'],
          [':path', '/login'],
          ['content-type', 'application/json'],
        ]),
      ),
      frame(0, 0, 1, json.subarray(0, 20)),
      frame(0, 0x1 | 0x8, 1, Buffer.concat([Buffer.from([2]), json.subarray(20), Buffer.alloc(2)])),
      frame(
        1,
        0x4,
        3,
        block([
          [':method', 'POST'],
          [':path', '/demo.v1.Greeter/SayHello'],
          ['content-type', 'application/grpc'],
        ]),
      ),
      // The second call's content-type comes by index from the dynamic table.
      frame(0, 0x1, 3, Buffer.concat([grpcMessage, grpcMessage])),
      frame(
        1,
        0x4,
        5,
        block([
          [':method', 'POST'],
          [':path', '/demo.v1.Greeter/SayHello'],
          ['content-type', 'application/grpc'],
        ]),
      ),
      frame(0, 0, 5, grpcMessage.subarray(0, 7)),
      frame(0, 0x1, 5, grpcMessage.subarray(7)),
    ]);
    const whole = maskInRecords(bytes, []);
    const text = whole.toString('latin1');
    expect(text.split(SECRET).length - 1).toBe(0);
    expect(text).toContain(`ord":"${'*'.repeat(SECRET.length)}"`); // "passw" ends the first DATA frame
    expect(text).toContain('"keep":"visible"');
    expect(text.split(Buffer.from([0, 0, 0, 0, message.length]).toString('latin1')).length - 1).toBe(3); // every prefix kept
    for (let cut = 1; cut < bytes.length; cut += 3) expect(maskInRecords(bytes, [cut, cut + 11]).equals(whole), `cut at ${cut}`).toBe(true);
    const [req1, req2, req3] = requestsOf(whole);
    expect([req1, req2, req3].map((m) => (m?.kind === 'request' ? [m.streamId, m.grpc?.messages ?? 0, m.grpc?.bytes ?? 0] : []))).toEqual([
      [1, 0, 0],
      [3, 2, 2 * message.length],
      [5, 1, message.length],
    ]);
  });

  it('never throws on random bytes (after an HTTP/2 start, after frames met mid-stream, or alone), and never changes a length', () => {
    const midStream = frame(1, 0x5, 3, Buffer.from([0x82, 0x86, 0x0f, 0x10, 0x03, 0x61, 0x62, 0x63]));
    fc.assert(
      fc.property(
        fc.constantFrom(PREFACE, settings([[1, 4096]]), midStream, Buffer.alloc(0)),
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.nat(5000),
        (start, junk, cuts, missing) => {
          const bytes = Buffer.concat([start, Buffer.from(junk)]);
          const m = new StreamMasker();
          const points = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
          for (let i = 0; i + 1 < points.length; i++) {
            const piece = bytes.subarray(points[i]!, points[i + 1]!);
            const before = piece.length;
            m.mask(piece, i === 1 ? missing : 0);
            expect(piece.length).toBe(before);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('masks a connection met mid-stream: values whose name it cannot know, secrets, and a block already under way', () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    const block = (fields: Field[]) => {
      enc.write(fields);
      return enc.read();
    };
    const plain = (name: string, value: string): Field => ({ name, value, huffman: false, neverIndex: false });
    // Before the agent: entries enter the dynamic table.
    block([plain(':method', 'GET'), plain(':path', '/a'), plain('x-custom', 'first'), plain('authorization', 'Bearer old')]);
    // After the join: names from those entries, a static-named secret, a static-named plain header.
    const second = block([plain(':method', 'GET'), plain(':path', '/b?k=v'), plain('x-custom', `x${SECRET}`), plain('cookie', `id=${SECRET}`), plain('user-agent', 'curl/8.0')]);
    const third = block([plain(':method', 'GET'), plain(':path', '/c'), plain('authorization', `Bearer ${SECRET}`)]);
    const cut = Math.floor(third.length / 2);
    const joined = Buffer.concat([frame(1, 0x5, 3, second), frame(1, 0x1, 5, third.subarray(0, cut)), frame(9, 0x4, 5, third.subarray(cut))]);
    const m = new StreamMasker();
    const bytes = Buffer.from(joined);
    m.mask(bytes);
    const text = bytes.toString('latin1');
    expect(text).not.toContain(SECRET);
    expect(text).toContain('curl/8.0'); // a static name says it is not a secret
    expect(text).toContain('/b?k=*');

    // Joining inside a header block: the CONTINUATION's bytes are masked to the block's end.
    const m2 = new StreamMasker();
    const tail = Buffer.from(frame(9, 0x4, 5, third.subarray(cut)));
    m2.mask(tail);
    expect(tail.subarray(9).every((b) => b === 0x2a)).toBe(true);
    // and the next block is read normally again
    const next = Buffer.from(frame(1, 0x5, 7, block([plain(':method', 'GET'), plain('user-agent', 'kept')])));
    m2.mask(next);
    expect(next.toString('latin1')).toContain('kept');
  });

  it('masks a connection met inside a frame once a later record is whole frames, as the detector takes them', () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    const plain = (name: string, value: string): Field => ({ name, value, huffman: false, neverIndex: false });
    enc.write([plain(':method', 'POST'), plain(':path', '/upload')]);
    enc.read();
    enc.write([plain(':method', 'GET'), plain(':path', '/next?k=v'), plain('authorization', `Bearer ${SECRET}`), plain('user-agent', 'kept/1')]);
    const secretBlock = enc.read();
    // The agent joins in the middle of a large DATA frame: its first record is the frame's tail,
    // which no protocol claims; the next records are whole frames.
    const tail = Buffer.from(`...rest of a body ${SECRET}`);
    const frames = Buffer.concat([frame(1, 0x5, 3, secretBlock), frame(0, 0x1, 3, Buffer.from(`body ${SECRET}`))]);
    const m = new StreamMasker();
    const first = Buffer.from(tail);
    m.mask(first);
    const later = Buffer.from(frames);
    m.mask(later);
    const text = later.toString('latin1');
    expect(text).not.toContain(`Bearer ${SECRET}`);
    expect(text).toContain('/next?k=*');
    expect(text).toContain('kept/1');
    expect(text).toContain(`body ${SECRET}`); // a body is not a header
    expect(first.equals(tail)).toBe(true); // the tail it could not frame is left as it was
  });

  it('does not take an HTTP/1 connection for HTTP/2 later, whatever its bodies hold', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (body) => {
        const m = new StreamMasker();
        m.mask(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n'));
        // Bytes that happen to be whole HTTP/2 frames, in a body: the HTTP/1 rules stay.
        const fake = Buffer.concat([frame(1, 0x5, 3, Buffer.from(body))]);
        const copy = Buffer.from(fake);
        m.mask(copy);
        expect(copy.equals(fake)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('leaves HTTP/1 and other bytes to the HTTP/1 rules', () => {
    const m = new StreamMasker();
    const req = Buffer.from('GET /x?a=1 HTTP/1.1\r\nAuthorization: Basic abc\r\n\r\n');
    m.mask(req);
    expect(req.toString()).toBe('GET /x?a=* HTTP/1.1\r\nAuthorization: *********\r\n\r\n');
  });
});
