/**
 * Differential test: the same generated HTTP/1 corpus through Loupe's parser,
 * Node's own llhttp binding, undici's llhttp (WebAssembly) and http-parser-js. On valid input all three must
 * see the same messages: method, target, version, status, headers, body size.
 */
import fc from 'fast-check';
import { HTTPParser as PeerJsParser } from 'http-parser-js';
import { describe, expect, it } from 'vitest';
import { Http1Parser } from '../src/parsers/http1/parser';
import type { Http1Message } from '../src/parsers/http1/messages';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser: Llhttp, methods: LLHTTP_METHODS } = require('_http_common') as { HTTPParser: any; methods: string[] };

interface Seen {
  start: string;
  headers: Array<[string, string]>;
  body: number;
}

function peer(Parser: any, kind: 'request' | 'response', bytes: Buffer, cuts: number[], llhttp: boolean): Seen[] {
  const p = llhttp ? new Parser() : new Parser(kind === 'request' ? Parser.REQUEST : Parser.RESPONSE);
  if (llhttp) p.initialize(kind === 'request' ? Parser.REQUEST : Parser.RESPONSE, {});
  const out: Seen[] = [];
  let current: Seen | undefined;
  let pendingHeaders: string[] = [];
  p[Parser.kOnHeaders] = (h: string[]) => pendingHeaders.push(...h);
  p[Parser.kOnHeadersComplete] = (...args: any[]) => {
    // (versionMajor, versionMinor, headers, method, url, statusCode, statusMessage, upgrade, keepAlive)
    // llhttp's kOnHeadersComplete takes (major, minor, headers, method, url, status, statusMessage, upgrade, keepAlive)
    const [major, minor, headers, method, url, status, statusMessage] = llhttp
      ? args
      : [args[0].versionMajor, args[0].versionMinor, args[0].headers, args[0].method, args[0].url, args[0].statusCode, args[0].statusMessage];
    const flat: string[] = [...pendingHeaders, ...(headers ?? [])];
    pendingHeaders = [];
    const methodName = typeof method === 'number' ? (llhttp ? LLHTTP_METHODS[method] : PeerJsParser.methods[method]) : method;
    const start = kind === 'request' ? `${methodName} ${url} HTTP/${major}.${minor}` : `HTTP/${major}.${minor} ${status} ${statusMessage}`;
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
    current = { start, headers: pairs, body: 0 };
    return 0;
  };
  p[Parser.kOnBody] = (b: Buffer, _start?: number, len?: number) => {
    current!.body += len ?? b.length;
  };
  p[Parser.kOnMessageComplete] = () => {
    out.push(current!);
    current = undefined;
  };
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > prev) {
      const r = p.execute(bytes.subarray(prev, cut));
      if (r instanceof Error) throw r;
    }
    prev = cut;
  }
  return out;
}

/**
 * undici's llhttp: the WebAssembly build undici parses responses with (a newer
 * llhttp than Node's binding may be), driven through its exports as undici's
 * client does. Throws where it refuses the bytes.
 */
const Wasm = (globalThis as any).WebAssembly;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const UNDICI_LLHTTP = new Wasm.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Buffer);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const UNDICI_CONSTANTS = require('undici/lib/llhttp/constants.js') as { TYPE: { REQUEST: number; RESPONSE: number }; ERROR: { OK: number; PAUSED_UPGRADE: number } };

function undici(kind: 'request' | 'response', bytes: Buffer, cuts: number[]): Seen[] {
  const out: Seen[] = [];
  let current: Seen | undefined;
  let url = '';
  let status = '';
  let field = '';
  let value = '';
  let inValue = false;
  let memory: { buffer: ArrayBuffer };
  const text = (at: number, len: number) => Buffer.from(memory.buffer, at, len).toString('latin1');
  const flush = () => {
    if (field || value) current!.headers.push([field, value]);
    field = '';
    value = '';
    inValue = false;
  };
  const instance = new Wasm.Instance(UNDICI_LLHTTP, {
    env: {
      wasm_on_url: (_p: number, at: number, len: number) => ((url += text(at, len)), 0),
      wasm_on_status: (_p: number, at: number, len: number) => ((status += text(at, len)), 0),
      wasm_on_message_begin: () => {
        current = { start: '', headers: [], body: 0 };
        url = '';
        status = '';
        return 0;
      },
      wasm_on_header_field: (_p: number, at: number, len: number) => {
        if (inValue) flush();
        field += text(at, len);
        return 0;
      },
      wasm_on_header_value: (_p: number, at: number, len: number) => {
        inValue = true;
        value += text(at, len);
        return 0;
      },
      wasm_on_headers_complete: (p: number, statusCode: number) => {
        flush();
        const e = instance.exports as any;
        const version = `HTTP/${e.llhttp_get_http_major(p)}.${e.llhttp_get_http_minor(p)}`;
        const methodName = () => {
          const at = e.llhttp_method_name(e.llhttp_get_method(p));
          const b = Buffer.from(memory.buffer, at, 32);
          return b.toString('latin1', 0, b.indexOf(0));
        };
        current!.start = kind === 'request' ? `${methodName()} ${url} ${version}` : `${version} ${statusCode} ${status}`;
        return 0;
      },
      wasm_on_body: (_p: number, _at: number, len: number) => ((current!.body += len), 0),
      wasm_on_message_complete: () => {
        out.push(current!);
        current = undefined;
        return 0;
      },
    },
  });
  const e = instance.exports as any;
  memory = e.memory;
  e._initialize?.();
  const parser = e.llhttp_alloc(kind === 'request' ? UNDICI_CONSTANTS.TYPE.REQUEST : UNDICI_CONSTANTS.TYPE.RESPONSE);
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > prev) {
      const piece = bytes.subarray(prev, cut);
      const ptr = e.malloc(piece.length);
      new Uint8Array(memory.buffer, ptr, piece.length).set(piece);
      const ret = e.llhttp_execute(parser, ptr, piece.length);
      e.free(ptr);
      if (ret !== UNDICI_CONSTANTS.ERROR.OK) {
        e.llhttp_free(parser);
        throw new Error(`undici llhttp: error ${ret}`);
      }
    }
    prev = cut;
  }
  e.llhttp_free(parser);
  return out;
}

function loupe(kind: 'request' | 'response', bytes: Buffer, cuts: number[], requestMethods: string[] = []): Seen[] {
  const p = new Http1Parser();
  const out: Http1Message[] = [];
  p.onMessage = (m) => out.push(m);
  // a response parser needs the requests it answers (HEAD has no body)
  if (kind === 'response') for (const m of requestMethods) p.feed('client', { data: Buffer.from(`${m} / HTTP/1.1\r\n\r\n`), ts: 0n, tid: 0 });
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > prev) p.feed(kind === 'request' ? 'client' : 'server', { data: bytes.subarray(prev, cut), ts: 0n, tid: 0 });
    prev = cut;
  }
  return out
    .filter((m) => m.kind === kind)
    .map((m) => {
      expect(m.error).toBeUndefined();
      return {
        start: m.kind === 'request' ? `${m.method} ${m.target} ${m.version}` : `${m.version} ${m.status} ${m.reason}`,
        headers: m.headers,
        body: m.bodyBytes,
      };
    });
}

/**
 * What the strict parsers make of bytes: refused by Node's llhttp or by
 * undici's (whose build accepts whitespace before a colon where Node's does
 * not: a refusal by either counts), or the messages both read — the same.
 */
function strictVerdict(kind: 'request' | 'response', bytes: Buffer, cuts: number[], name: string): { refused: boolean; theirs: Seen[] } {
  const attempt = (read: () => Seen[]) => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const node = attempt(() => peer(Llhttp, kind, bytes, cuts, true));
  const undiciSaw = attempt(() => undici(kind, bytes, cuts));
  if (node && undiciSaw) expect(undiciSaw, name).toEqual(node);
  return node && undiciSaw ? { refused: false, theirs: node } : { refused: true, theirs: [] };
}

/** Every message Loupe reports of one side, errors included (a response side gets the GET it answers first). */
function loupeAll(kind: 'request' | 'response', bytes: Buffer, cuts: number[]): Http1Message[] {
  const p = new Http1Parser();
  const out: Http1Message[] = [];
  p.onMessage = (m) => out.push(m);
  if (kind === 'response') p.feed('client', { data: Buffer.from('GET / HTTP/1.1\r\n\r\n'), ts: 0n, tid: 0 });
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > prev) p.feed(kind === 'request' ? 'client' : 'server', { data: bytes.subarray(prev, cut), ts: 0n, tid: 0 });
    prev = cut;
  }
  p.end(0n);
  return out.filter((m) => m.kind === kind);
}

const token = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/)
  .filter((t) => !/^(content-length|transfer-encoding|connection|upgrade|expect|proxy-connection|keep-alive)$/i.test(t));
const fieldValue = fc.stringMatching(/^[!-~]([ -~]{0,40}[!-~])?$/);
const headers = fc.array(fc.tuple(token, fieldValue), { maxLength: 8 });
const body = fc.uint8Array({ maxLength: 300 });

function framed(head: string[], hs: Array<[string, string]>, b: Uint8Array, chunked: boolean): Buffer {
  const lines = [...head, ...hs.map(([n, v]) => `${n}: ${v}`)];
  if (!chunked) return Buffer.concat([Buffer.from(`${[...lines, `Content-Length: ${b.length}`].join('\r\n')}\r\n\r\n`), b]);
  const parts = [Buffer.from(`${[...lines, 'Transfer-Encoding: chunked'].join('\r\n')}\r\n\r\n`)];
  for (let i = 0; i < b.length; i += 64) {
    const piece = b.subarray(i, i + 64);
    parts.push(Buffer.from(`${piece.length.toString(16)};x=y\r\n`), Buffer.from(piece), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

const request = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
    target: fc.stringMatching(/^\/[A-Za-z0-9/._~%-]{0,40}(\?[A-Za-z0-9=&%]{0,30})?$/),
    minor: fc.constantFrom(0, 1),
    headers,
    body,
    chunked: fc.boolean(),
  })
  .map((r) => ({
    r,
    // HTTP/1.0 closes after one exchange unless it asks to keep the connection
    bytes: framed([`${r.method} ${r.target} HTTP/1.${r.minor}`], r.minor === 0 ? [...r.headers, ['Connection', 'keep-alive']] : r.headers, r.body, r.chunked && r.minor === 1),
  }));

const response = fc
  .record({
    status: fc.constantFrom(200, 201, 202, 301, 302, 400, 401, 403, 404, 409, 418, 500, 502, 503),
    reason: fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,20}[A-Za-z]$/),
    headers,
    body,
    chunked: fc.boolean(),
  })
  .map((r) => ({ r, bytes: framed([`HTTP/1.1 ${r.status} ${r.reason}`], r.headers, r.body, r.chunked) }));

const cutsFor = (len: number) => fc.array(fc.nat(len), { maxLength: 8 }).map((c) => [...new Set(c)].sort((a, b) => a - b));

describe('HTTP/1 parser agrees with llhttp and http-parser-js', () => {
  it('on generated pipelined requests, however they are split', () => {
    fc.assert(
      fc.property(
        fc.array(request, { minLength: 1, maxLength: 6 }).chain((rs) => {
          const bytes = Buffer.concat(rs.map((x) => x.bytes));
          return fc.tuple(fc.constant(bytes), cutsFor(bytes.length));
        }),
        ([bytes, cuts]) => {
          const ours = loupe('request', bytes, cuts);
          expect(ours).toEqual(peer(Llhttp, 'request', bytes, cuts, true));
          expect(ours).toEqual(undici('request', bytes, cuts));
          expect(ours).toEqual(peer(PeerJsParser, 'request', bytes, cuts, false));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('on generated responses, however they are split', () => {
    fc.assert(
      fc.property(
        fc.array(response, { minLength: 1, maxLength: 6 }).chain((rs) => {
          const bytes = Buffer.concat(rs.map((x) => x.bytes));
          return fc.tuple(fc.constant(bytes), cutsFor(bytes.length), fc.constant(rs.length));
        }),
        ([bytes, cuts, n]) => {
          const ours = loupe('response', bytes, cuts, Array<string>(n).fill('GET'));
          expect(ours).toEqual(peer(Llhttp, 'response', bytes, cuts, true));
          expect(ours).toEqual(undici('response', bytes, cuts));
          expect(ours).toEqual(peer(PeerJsParser, 'response', bytes, cuts, false));
        },
      ),
      { numRuns: 400 },
    );
  });

  /**
   * Malformed the ways request smuggling and header injection hide: where
   * llhttp (strict, as Node runs it) refuses the bytes, Loupe flags an error
   * on a message; where it accepts them, Loupe reads the same messages.
   */
  it('on requests malformed the smuggling ways: flags every one llhttp refuses, and reads the rest as llhttp does', () => {
    const mutations: Array<[string, (r: { bytes: Buffer }) => Buffer]> = [
      [
        'a second Content-Length, the same',
        ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\nContent-Length: (\d+)\r\n/, '\r\nContent-Length: $1\r\nContent-Length: $1\r\n'), 'latin1'),
      ],
      [
        'a second Content-Length, another',
        ({ bytes }) =>
          Buffer.from(
            bytes.toString('latin1').replace(/\r\nContent-Length: (\d+)\r\n/, (_m, n) => `\r\nContent-Length: ${n}\r\nContent-Length: ${Number(n) + 1}\r\n`),
            'latin1',
          ),
      ],
      [
        'Transfer-Encoding and Content-Length',
        ({ bytes }) => Buffer.from(bytes.toString('latin1').replace('\r\nTransfer-Encoding: chunked\r\n', '\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n'), 'latin1'),
      ],
      [
        'chunked not last',
        ({ bytes }) => Buffer.from(bytes.toString('latin1').replace('\r\nTransfer-Encoding: chunked\r\n', '\r\nTransfer-Encoding: chunked, gzip\r\n'), 'latin1'),
      ],
      [
        'a bare CR in a value',
        ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): ([^\r]*)\r\n/, '\r\n$1: $2\rX-Smuggled: 1\r\n'), 'latin1'),
      ],
      ['a control byte in a value', ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): /, '\r\n$1: \x01'), 'latin1')],
      ['a space before the colon', ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): /, '\r\n$1 : '), 'latin1')],
      ['a chunk size that is not hex', ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\n\r\n([0-9a-f]+);x=y\r\n/, '\r\n\r\n$1g;x=y\r\n'), 'latin1')],
      ['whitespace after a chunk size', ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/\r\n\r\n([0-9a-f]+);x=y\r\n/, '\r\n\r\n$1 ;x=y\r\n'), 'latin1')],
      ['a control byte in the target', ({ bytes }) => Buffer.from(bytes.toString('latin1').replace(/^(\w+ \/)/, '$1\x7f'), 'latin1')],
    ];
    const seen = new Map<string, { refused: number; accepted: number }>();
    fc.assert(
      fc.property(
        request.filter((x) => x.r.minor === 1),
        fc.nat(mutations.length - 1),
        fc.array(fc.nat(), { maxLength: 4 }),
        (req, which, rawCuts) => {
          const [name, mutate] = mutations[which]!;
          const bytes = mutate(req);
          if (bytes.equals(req.bytes)) return; // the mutation found nothing to change (no header, not chunked)
          const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
          const { refused, theirs } = strictVerdict('request', bytes, cuts, name);
          const tally = seen.get(name) ?? { refused: 0, accepted: 0 };
          seen.set(name, tally);
          const ours = loupeAll('request', bytes, cuts);
          if (refused) {
            tally.refused++;
            expect(
              ours.some((m) => m.error !== undefined),
              `${name}: llhttp refuses ${JSON.stringify(bytes.toString('latin1'))}, Loupe flagged nothing`,
            ).toBe(true);
            for (const m of ours) if (m.error !== undefined) expect(m.parseErrorCode, m.error).toMatch(/^HPE_/);
          } else {
            tally.accepted++;
            expect(
              ours
                .filter((m) => m.error === undefined)
                .map((m) => ({ start: m.kind === 'request' ? `${m.method} ${m.target} ${m.version}` : '', headers: m.headers, body: m.bodyBytes })),
              name,
            ).toEqual(theirs);
          }
        },
      ),
      { numRuns: 1500 },
    );
    // Every kind was tried, and the test saw llhttp refuse.
    expect([...seen.keys()].sort()).toEqual(mutations.map(([n]) => n).sort());
    expect([...seen.values()].reduce((n, t) => n + t.refused, 0)).toBeGreaterThan(100);
  });

  it('on responses malformed the smuggling ways: flags every one llhttp refuses, and reads the rest as llhttp does', () => {
    const mutations: Array<[string, (b: Buffer) => Buffer]> = [
      [
        'a second Content-Length, another',
        (b) =>
          Buffer.from(
            b.toString('latin1').replace(/\r\nContent-Length: (\d+)\r\n/, (_m, n) => `\r\nContent-Length: ${n}\r\nContent-Length: ${Number(n) + 1}\r\n`),
            'latin1',
          ),
      ],
      ['a bare CR in a value', (b) => Buffer.from(b.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): ([^\r]*)\r\n/, '\r\n$1: $2\rX-Smuggled: 1\r\n'), 'latin1')],
      ['a control byte in a value', (b) => Buffer.from(b.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): /, '\r\n$1: \x01'), 'latin1')],
      ['a space before the colon', (b) => Buffer.from(b.toString('latin1').replace(/\r\n([A-Za-z][A-Za-z0-9-]*): /, '\r\n$1 : '), 'latin1')],
      ['a chunk size that is not hex', (b) => Buffer.from(b.toString('latin1').replace(/\r\n\r\n([0-9a-f]+);x=y\r\n/, '\r\n\r\n$1g;x=y\r\n'), 'latin1')],
      ['a status of two digits', (b) => Buffer.from(b.toString('latin1').replace(/^HTTP\/1\.1 (\d)(\d)(\d) /, 'HTTP/1.1 $1$2 '), 'latin1')],
    ];
    let refusedTotal = 0;
    fc.assert(
      fc.property(response, fc.nat(mutations.length - 1), fc.array(fc.nat(), { maxLength: 4 }), (res, which, rawCuts) => {
        const [name, mutate] = mutations[which]!;
        const bytes = mutate(res.bytes);
        if (bytes.equals(res.bytes)) return;
        const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
        const { refused, theirs } = strictVerdict('response', bytes, cuts, name);
        const responses = loupeAll('response', bytes, cuts);
        if (refused) {
          refusedTotal++;
          expect(
            responses.some((m) => m.error !== undefined),
            `${name}: llhttp refuses ${JSON.stringify(bytes.toString('latin1'))}, Loupe flagged nothing`,
          ).toBe(true);
          for (const m of responses) if (m.error !== undefined) expect(m.parseErrorCode, m.error).toMatch(/^HPE_/);
        } else {
          expect(
            responses
              .filter((m) => m.error === undefined)
              .map((m) => ({ start: m.kind === 'response' ? `${m.version} ${m.status} ${m.reason}` : '', headers: m.headers, body: m.bodyBytes })),
            name,
          ).toEqual(theirs);
        }
      }),
      { numRuns: 1000 },
    );
    expect(refusedTotal).toBeGreaterThan(100);
  });
});

/** The `HPE_*` code Node's llhttp refuses the bytes with (EOF included), or undefined where it reads them. */
function llhttpCode(kind: 'request' | 'response', bytes: Buffer): string | undefined {
  const p = new Llhttp();
  p.initialize(kind === 'request' ? Llhttp.REQUEST : Llhttp.RESPONSE, {});
  p[Llhttp.kOnHeadersComplete] = () => 0;
  const r = p.execute(bytes);
  if (r instanceof Error) return (r as Error & { code: string }).code;
  const end = p.finish();
  return end instanceof Error ? (end as Error & { code: string }).code : undefined;
}

describe('HTTP/1 error codes', () => {
  // One message per way to fail, each as a server or client would send it. (HTTP/0.9's `GET /` is not here:
  // Node's llhttp reads it as a request of version 0.9; Loupe reports it flagged HPE_INVALID_VERSION, as servers answer it 400.)
  const requests: Array<[string, string]> = [
    ['a method with a byte no token has', 'G@T / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a version that is not HTTP', 'GET / HTTQ/1.1\r\nHost: a\r\n\r\n'],
    ['a header name with a space', 'GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n'],
    ['a header line with no colon', 'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n'],
    ['a control byte in a value', 'GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n'],
    ['a Content-Length that is not a number', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\nab'],
    ['two Content-Lengths that differ', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['a Transfer-Encoding not ending in chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n'],
    ['a chunk size that is not hex', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['chunk data not followed by CRLF', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n'],
    ['a header section past the bound (16 KiB in Node, 1 MiB in Loupe)', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(1_100_000)}\r\n\r\n`],
    ['the connection closing inside the body', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc'],
  ];
  const responses: Array<[string, string]> = [
    ['a line not starting with HTTP/', 'HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a status of two digits', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a version of letters', 'HTTP/x.y 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a header line with no colon', 'HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['the connection closing inside the body', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'],
  ];
  it('gives each refused message the code llhttp gives the same fault, at any split', () => {
    for (const [kind, table] of [
      ['request', requests],
      ['response', responses],
    ] as const) {
      for (const [name, text] of table) {
        const bytes = Buffer.from(text, 'latin1');
        const theirs = llhttpCode(kind, bytes);
        expect(theirs, `${kind}: ${name}: llhttp refuses it`).toMatch(/^HPE_/);
        for (const cuts of [[], [1], [Math.floor(bytes.length / 2)], [bytes.length - 1]]) {
          const flagged = loupeAll(kind, bytes, cuts).filter((m) => m.error !== undefined);
          expect(flagged.length, `${kind}: ${name}`).toBeGreaterThan(0);
          expect(flagged[0]!.parseErrorCode, `${kind}: ${name}: ${flagged[0]!.error}`).toBe(theirs);
        }
      }
    }
  });

  it('names bytes the capture lost with a code of Loupe, a fault llhttp never meets', () => {
    const p = new Http1Parser();
    const out: Http1Message[] = [];
    p.onMessage = (m) => out.push(m);
    p.feed('client', { data: Buffer.from('GET / HTTP/1.1\r\nHost: a'), ts: 0n, tid: 0 });
    p.gap('client', 100, 1n);
    p.end(2n);
    expect(out.map((m) => [m.parseErrorCode, m.error])).toEqual([['LOUPE_LOST_BYTES', 'byte 23: 100 bytes lost inside the message']]);
  });
});
