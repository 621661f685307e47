import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http1Parser } from './parser';
import type { Http1Request, Http1Message } from './messages';
import type { Side } from '../types';

type Feed = Array<[Side, string | Buffer]>;

function run(feed: Feed, end = true): Http1Message[] {
  const out: Http1Message[] = [];
  const p = new Http1Parser();
  p.onMessage = (m) => out.push(m);
  feed.forEach(([side, data], i) => p.feed(side, { data: Buffer.from(data), ts: BigInt(i + 1), tid: 1 }));
  if (end) p.end(BigInt(feed.length + 1));
  return out;
}

const summary = (ms: Http1Message[]) =>
  ms.map((m) => (m.kind === 'request' ? `${m.method} ${m.target} ${m.bodyBytes}` : `${m.status} ${m.bodyBytes}`) + (m.error ? ` ERR(${m.error})` : ''));

describe('HTTP/1 parser', () => {
  it('parses a request and a Content-Length response with headers in order', () => {
    const ms = run([
      ['client', 'POST /api?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello'],
      ['server', 'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok'],
    ]);
    expect(ms[0]).toMatchObject({
      kind: 'request',
      method: 'POST',
      target: '/api?x=1',
      version: 'HTTP/1.1',
      bodyBytes: 5,
      headers: [
        ['Host', 'a'],
        ['Content-Length', '5'],
        ['X-A', '1'],
      ],
      offset: 0,
    });
    expect(ms[1]).toMatchObject({ kind: 'response', status: 201, reason: 'Created', bodyBytes: 2 });
  });

  it('decodes chunked bodies with extensions and trailers', () => {
    const ms = run([['server', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n']]);
    expect(summary(ms)).toEqual(['200 11']);
  });

  it('knows HEAD, 204 and 304 responses have no body, and close-delimited ones end at close', () => {
    const ms = run([
      ['client', 'HEAD / HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.0\r\n\r\n'],
      [
        'server',
        'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end',
      ],
    ]);
    expect(summary(ms)).toEqual(['HEAD / 0', 'GET /a 0', 'GET /b 0', 'GET /c 0', '200 0', '204 0', '304 0', '200 13']);
  });

  it('reports interim 100 Continue before the final response', () => {
    const ms = run([
      ['client', 'PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'],
      ['server', 'HTTP/1.1 100 Continue\r\n\r\n'],
      ['client', 'abc'],
      ['server', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ]);
    expect(summary(ms)).toEqual(['100 0', 'PUT /u 3', '200 0']);
  });

  it('reports malformed input with the byte offset and resynchronises on the next request', () => {
    const ms = run([['client', 'GET / HTTP/1.1\r\n\r\nBLAH BLAH\r\nmore junk\r\nGET /next HTTP/1.1\r\n\r\n']]);
    // What could be read of the broken line is kept (servers answer such lines with 400): a method, a target, a code.
    expect(summary(ms)).toEqual(['GET / 0', 'BLAH BLAH 0 ERR(byte 18: invalid request line "BLAH BLAH")', 'GET /next 0']);
    expect((ms[1] as Http1Request).parseErrorCode).toBe('HPE_INVALID_VERSION');
  });

  it('reads what it can of request lines a strict parser refuses, each with its code, and frames the next request the same', () => {
    for (const [line, method, target, code] of [
      ['GET /', 'GET', '/', 'HPE_INVALID_VERSION'], // HTTP/0.9
      ['GET  /a HTTP/1.1', 'GET', '/a', 'HPE_INVALID_REQUEST_LINE'],
      ['GET HTTP/1.1', 'GET', '', 'HPE_INVALID_URL'],
      ['G@T /x HTTP/1.1', 'G@T', '/x', 'HPE_INVALID_METHOD'],
      ['GET /x HTTP/1.1 extra', 'GET', '/x', 'HPE_INVALID_VERSION'],
    ] as const) {
      const ms = run([['client', `${line}\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n`]]);
      expect(
        ms.map((m) => (m.kind === 'request' ? [m.method, m.target, m.parseErrorCode ?? null] : [])),
        line,
      ).toEqual([
        [method, target, code],
        ['GET', '/next', null],
      ]);
    }
  });

  it('flags what strict parsers refuse and reads on as the RFC frames it: both framing headers, a bare CR, a second Content-Length, a spaced chunk size', () => {
    const ms = run([
      [
        'client',
        [
          'POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
          'GET /b HTTP/1.1\r\nX-A: 1\rX-Smuggled: yes\r\n\r\n',
          'POST /c HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
          'POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nhi\r\n0\r\n\r\n',
          'GET /e HTTP/1.1\r\n\r\n',
        ].join(''),
      ],
    ]);
    expect(ms.map((m) => (m.kind === 'request' ? [m.target, m.bodyBytes, m.parseErrorCode ?? null, m.lenient ?? false] : []))).toEqual([
      ['/a', 2, 'HPE_UNEXPECTED_CONTENT_LENGTH', true], // Transfer-Encoding frames it (RFC 9112 §6.3)
      ['/b', 0, 'HPE_LF_EXPECTED', true],
      ['/c', 2, 'HPE_UNEXPECTED_CONTENT_LENGTH', true],
      ['/d', 2, 'HPE_INVALID_CHUNK_SIZE', true],
      ['/e', 0, null, false],
    ]);
    // The bare CR stays inside its value: no field is made of what follows it.
    expect((ms[1] as Http1Request).headers).toEqual([['X-A', '1\rX-Smuggled: yes']]);
  });

  it('keeps trailer fields apart from the headers, and counts the chunks', () => {
    const ms = run([
      [
        'server',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nGrpc-Status: 0\r\nServer-Timing: db;dur=3\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
      ],
    ]);
    const [chunked, plain] = ms as [import('./messages').Http1Response, import('./messages').Http1Response];
    expect(chunked).toMatchObject({
      status: 200,
      bodyBytes: 5,
      chunks: 2,
      trailers: [
        ['Grpc-Status', '0'],
        ['Server-Timing', 'db;dur=3'],
      ],
    });
    expect(chunked.headers.map(([n]) => n)).toEqual(['Transfer-Encoding', 'Trailer']);
    expect(plain.chunks).toBeUndefined();
    expect(plain.trailers).toBeUndefined();
  });

  it('takes what follows a CONNECT request, and a 2xx to it, or a 101, as tunnel data, not HTTP', () => {
    const hello = '\x16\x03\x01\x00\x2fHELLO / HTTP/1.1\r\nnot: http\r\n\r\n';
    for (const turns of [
      // The client starts its TLS before the proxy's answer (as curl may), and after it.
      [
        ['client', `CONNECT db.internal:443 HTTP/1.1\r\nHost: db.internal:443\r\n\r\n${hello}`],
        ['server', 'HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03 server hello'],
        ['client', hello],
      ],
      [
        ['client', 'GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
        ['server', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello'],
        ['client', '\x81\x85GET / HTTP/1.1\r\n\r\n'],
      ],
    ] as Array<Array<[Side, string]>>) {
      const ms = run(turns);
      expect(ms.map((m) => (m.kind === 'request' ? `${m.method} ${m.target}` : `${m.status}`))).toEqual(
        turns[0]![1].startsWith('CONNECT') ? ['CONNECT db.internal:443', '200'] : ['GET /chat', '101'],
      );
      expect(ms.every((m) => m.error === undefined)).toBe(true);
    }
    // Refused (407): what the client sent after the CONNECT is HTTP again.
    const refused = run([
      ['client', 'CONNECT db.internal:443 HTTP/1.1\r\nHost: db.internal:443\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n'],
      ['server', 'HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ]);
    expect(refused.map((m) => (m.kind === 'request' ? `${m.method} ${m.target}` : `${m.status}`))).toEqual(['CONNECT db.internal:443', '407', 'GET /after', '200']);
  });

  it('says when the connection closed mid-message', () => {
    const ms = run([['server', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc']]);
    expect(ms[0]!.error).toBe('byte 42: connection closed before the message was complete');
  });

  it('counts lost bytes inside a body without losing the message', () => {
    const out: Http1Message[] = [];
    const p = new Http1Parser();
    p.onMessage = (m) => out.push(m);
    p.feed('server', { data: Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), ts: 1n, tid: 1 });
    p.gap('server', 5, 2n);
    p.feed('server', { data: Buffer.from('xy'), ts: 3n, tid: 1 });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ status: 200, bodyBytes: 5, lostBytes: 5, tsEnd: 3n });
  });

  it('stops parsing after a protocol switch (101)', () => {
    const ms = run([
      ['client', 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
      ['server', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello'],
      ['client', '\x81\x85garbage that is not HTTP'],
    ]);
    expect(summary(ms)).toEqual(['GET /ws 0', '101 0']);
  });

  const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
  const requestArb = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
    path: fc.stringMatching(/^\/[a-z0-9/._~-]{0,30}(\?[a-z0-9=&]{0,20})?$/),
    headers: fc.array(
      fc.tuple(
        token.filter((t) => !/^(content-length|transfer-encoding)$/i.test(t)),
        fc.stringMatching(/^[ -~]{0,30}$/).map((v) => v.trim()),
      ),
      { maxLength: 6 },
    ),
    body: fc.uint8Array({ maxLength: 200 }),
    chunked: fc.boolean(),
  });

  function serialize(r: { method: string; path: string; headers: [string, string][]; body: Uint8Array; chunked: boolean }): Buffer {
    const head = [`${r.method} ${r.path} HTTP/1.1`, ...r.headers.map(([n, v]) => `${n}: ${v}`)];
    if (r.chunked) {
      head.push('Transfer-Encoding: chunked');
      const parts: Buffer[] = [Buffer.from(`${head.join('\r\n')}\r\n\r\n`)];
      for (let i = 0; i < r.body.length; i += 37) {
        const piece = r.body.subarray(i, i + 37);
        parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), Buffer.from(piece), Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      return Buffer.concat(parts);
    }
    head.push(`Content-Length: ${r.body.length}`);
    return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), Buffer.from(r.body)]);
  }

  function parseWithCuts(bytes: Buffer, cuts: number[]) {
    const out: Http1Message[] = [];
    const p = new Http1Parser();
    p.onMessage = (m) => out.push(m);
    let prev = 0;
    for (const cut of [...cuts, bytes.length]) {
      if (cut > prev) p.feed('client', { data: bytes.subarray(prev, cut), ts: 1n, tid: 1 });
      prev = cut;
    }
    p.end(2n);
    return out;
  }

  it('gives the same messages for any split of the bytes, and round-trips generated requests', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (reqs, rawCuts) => {
        const bytes = Buffer.concat(reqs.map(serialize));
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const whole = parseWithCuts(bytes, []);
        expect(parseWithCuts(bytes, cuts)).toEqual(whole);
        expect(
          whole.map((m) => m.kind === 'request' && [m.method, m.target, m.headers.filter(([n]) => !/^(content-length|transfer-encoding)$/i.test(n)), m.bodyBytes, m.error]),
        ).toEqual(reqs.map((r) => [r.method, r.path, r.headers, r.body.length, undefined]));
      }),
      { numRuns: 500 },
    );
  });

  it('parses a 1 MB header line fed in 1 KiB pieces, and refuses one over the limit', () => {
    const big = 'v'.repeat(1_000_000);
    const bytes = Buffer.from(`GET / HTTP/1.1\r\nX-Big: ${big}\r\n\r\n`);
    const pieces: Array<[Side, Buffer]> = [];
    for (let i = 0; i < bytes.length; i += 1024) pieces.push(['client', bytes.subarray(i, i + 1024)]);
    const [m] = run(pieces);
    expect(m!.error).toBeUndefined();
    expect(m!.headers[0]![1]).toHaveLength(1_000_000);
    const out: Http1Message[] = [];
    const p = new Http1Parser({ maxHeaderBytes: 64 * 1024, maxHeaderCount: 10 });
    p.onMessage = (x) => out.push(x);
    for (const [, c] of pieces) p.feed('client', { data: c, ts: 1n, tid: 1 });
    p.feed('client', { data: Buffer.from('GET /after HTTP/1.1\r\n\r\n'), ts: 2n, tid: 1 });
    expect(summary(out)).toEqual(['GET / 0 ERR(byte 0: header section exceeds 65536 bytes)', 'GET /after 0']);
  });

  it('never throws on random bytes, on either side', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom<Side>('client', 'server'), fc.uint8Array({ maxLength: 200 }))), (feeds) => {
        const p = new Http1Parser();
        let n = 0;
        p.onMessage = () => n++;
        for (const [side, data] of feeds) p.feed(side, { data, ts: 1n, tid: 1 });
        p.end(2n);
        expect(n).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 1000 },
    );
  });
});
