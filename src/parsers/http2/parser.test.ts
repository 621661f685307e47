import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http2Parser, PREFACE } from './parser';
import type { Http2Message, Http2Request, Http2Response } from './messages';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';
import { HEADER } from '../../../test/helpers';
import { Script } from '../../../test/script';
import { frame, settings } from '../../../test/http2-frames';
import { Pipeline } from '../../pipeline/pipeline';
import type { Span } from '../../correlator/span';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpackjs = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string }>): void; read(): Buffer; updateTableSize(n: number): void } };
};

const padded = (payload: Buffer, pad: number) => Buffer.concat([Buffer.from([pad]), payload, Buffer.alloc(pad)]);

function encoders(serverTable = 4096) {
  const c = hpackjs.compressor.create({ table: { size: 4096 } });
  const s = hpackjs.compressor.create({ table: { size: serverTable } });
  const block = (enc: typeof c, fields: Record<string, string>) => {
    enc.write(Object.entries(fields).map(([name, value]) => ({ name, value })));
    return enc.read();
  };
  return { req: (f: Record<string, string>) => block(c, f), res: (f: Record<string, string>) => block(s, f), server: s };
}

const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new Http2Parser(), turns, cuts) as Http2Message[];

describe('Http2Parser frames', () => {
  it('reads padded and prioritised HEADERS, CONTINUATION, padded DATA, trailers and RST_STREAM', () => {
    const e = encoders();
    const reqBlock = e.req({ ':method': 'POST', ':path': '/items?x=1', ':scheme': 'http', ':authority': 'shop', 'content-type': 'application/json' });
    const prio = Buffer.concat([Buffer.from([0, 0, 0, 0, 16]), reqBlock.subarray(0, 5)]);
    const turns: Turn[] = [
      {
        side: 'client',
        bytes: Buffer.concat([
          PREFACE,
          settings(),
          frame(1, 0x8 | 0x20, 1, padded(prio, 3)),
          frame(9, 0x4, 1, reqBlock.subarray(5)),
          frame(0, 0x8 | 0x1, 1, padded(Buffer.from('{"a":1}'), 10)),
        ]),
      },
      {
        side: 'server',
        bytes: Buffer.concat([
          settings(),
          frame(1, 0x4, 1, e.res({ ':status': '201' })),
          frame(0, 0, 1, Buffer.from('made')),
          frame(1, 0x4 | 0x1, 1, e.res({ 'x-trailer': 'yes' })),
        ]),
      },
      { side: 'client', bytes: frame(1, 0x4, 3, e.req({ ':method': 'GET', ':path': '/slow', ':scheme': 'http', ':authority': 'shop' })) },
      { side: 'client', bytes: frame(3, 0, 3, Buffer.from([0, 0, 0, 8])) },
    ];
    const ms = parse(turns);
    const [post, created, slow, reset] = ms as [Http2Request, Http2Response, Http2Request, Http2Response];
    expect(post).toMatchObject({ kind: 'request', streamId: 1, method: 'POST', path: '/items?x=1', authority: 'shop', bodyBytes: 7 });
    expect(created).toMatchObject({ kind: 'response', streamId: 1, status: 201, bodyBytes: 4, trailers: [['x-trailer', 'yes']] });
    expect(slow).toMatchObject({ streamId: 3, path: '/slow', open: true });
    expect(reset).toMatchObject({ streamId: 3, reset: 'CANCEL' });
    // Byte cuts change nothing.
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 20 }), (cuts) => {
        expect(shape(parse(turns, cuts))).toEqual(shape(ms));
      }),
      { numRuns: 40 },
    );
  });

  it('decodes a PUSH_PROMISE request with the server table, and honours SETTINGS_HEADER_TABLE_SIZE', () => {
    const e = encoders(0); // the client's SETTINGS_HEADER_TABLE_SIZE 0 leaves the server no table
    const turns: Turn[] = [
      { side: 'client', bytes: Buffer.concat([PREFACE, settings([[1, 0]]), frame(1, 0x5, 1, e.req({ ':method': 'GET', ':path': '/', ':scheme': 'http', ':authority': 'a' }))]) },
      {
        side: 'server',
        bytes: Buffer.concat([
          frame(5, 0x4, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), e.res({ ':method': 'GET', ':path': '/style.css', ':scheme': 'http', ':authority': 'a' })])),
          frame(1, 0x4, 1, e.res({ ':status': '200' })),
          frame(0, 0x1, 1, Buffer.from('<html>')),
          frame(1, 0x4, 2, e.res({ ':status': '200' })),
          frame(0, 0x1, 2, Buffer.from('body{}')),
        ]),
      },
    ];
    const ms = parse(turns);
    expect(ms.map((m) => `${m.kind} ${m.streamId} ${m.kind === 'request' ? m.path : m.status}`)).toEqual([
      'request 1 /',
      'request 2 /style.css',
      'response 1 200',
      'response 2 200',
    ]);
    expect(ms.every((m) => !m.unknownHeaders)).toBe(true);
  });

  it('says which fields it could not know and keeps the stream when the capture starts late', () => {
    const e = encoders();
    e.req({ ':method': 'GET', ':path': '/first', ':scheme': 'http', ':authority': 'svc', 'x-tenant': 'acme' }); // missed
    const ms = parse([
      { side: 'client', bytes: frame(1, 0x5, 3, e.req({ ':method': 'GET', ':path': '/second', ':scheme': 'http', ':authority': 'svc', 'x-tenant': 'acme' })) },
      { side: 'server', bytes: frame(1, 0x5, 3, e.res({ ':status': '204' })) },
    ]);
    const [req, res] = ms as [Http2Request, Http2Response];
    expect(req.path).toBe('/second');
    expect(req.unknownHeaders!.length).toBeGreaterThan(0);
    expect(req.headers.some(([n]) => n.startsWith('<unknown index'))).toBe(true);
    expect(res.status).toBe(204);
  });

  it('follows an HTTP/1.1 Upgrade: h2c to HTTP/2, the answer on stream 1 ending the request span', () => {
    const e = encoders();
    const s = new Script();
    const [client] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 1, fd: 5, port: 8080 });
    s.send(client, 'GET /upgrade HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
    s.data(
      client,
      'ingress',
      Buffer.concat([
        Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'),
        settings(),
        frame(1, 0x4, 1, e.res({ ':status': '200', 'content-type': 'text/plain' })),
        frame(0, 0x1, 1, Buffer.from('upgraded!')),
      ]),
    );
    s.data(client, 'egress', Buffer.concat([PREFACE, settings()]));
    s.data(client, 'egress', frame(1, 0x5, 3, e.req({ ':method': 'GET', ':path': '/after', ':scheme': 'http', ':authority': 'svc' })));
    s.data(client, 'ingress', frame(1, 0x5, 3, e.res({ ':status': '404' })));
    s.close(client);
    const spans: Span[] = [];
    const p = new Pipeline({ ...HEADER, processes: [{ pid: 3, exe: '/usr/bin/curl' }] }, [{ onSpan: (x) => spans.push(x) }]);
    p.push(s.events);
    p.finish();
    expect(spans.map((x) => [x.attributes['url.full'], x.attributes['http.response.status_code']])).toEqual([
      ['http://svc/upgrade', 200],
      ['http://svc/after', 404],
    ]);
  });

  it('frames DATA larger than the kernel copies: the response ends with its real status, and gRPC counts hold', () => {
    const e = encoders();
    const grpcMessage = (n: number) => {
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(n, 1);
      return Buffer.concat([prefix, Buffer.alloc(n, 7)]);
    };
    const grpcHeaders = { ':method': 'POST', ':path': '/routeguide.RouteGuide/RecordRoute', ':scheme': 'http', ':authority': 'rg', 'content-type': 'application/grpc' };
    const turns: Turn[] = [
      { side: 'client', bytes: Buffer.concat([PREFACE, settings(), frame(1, 0x5, 1, e.req({ ':method': 'GET', ':path': '/big', ':scheme': 'http', ':authority': 'shop' }))]) },
      { side: 'server', bytes: Buffer.concat([settings(), frame(1, 0x4, 1, e.res({ ':status': '200' })), frame(0, 0x1, 1, Buffer.alloc(12_000, 0x61))]) },
      // A client stream of two gRPC messages, one of 10 KB, in one DATA frame; the answer in the next write.
      { side: 'client', bytes: Buffer.concat([frame(1, 0x4, 3, e.req(grpcHeaders)), frame(0, 0, 3, Buffer.concat([grpcMessage(10_000), grpcMessage(3)]))]) },
      { side: 'client', bytes: frame(0, 0x1, 3, grpcMessage(2)) },
      {
        side: 'server',
        bytes: Buffer.concat([
          frame(1, 0x4, 3, e.res({ ':status': '200', 'content-type': 'application/grpc' })),
          frame(0, 0, 3, grpcMessage(4)),
          frame(1, 0x5, 3, e.res({ 'grpc-status': '0' })),
        ]),
      },
      { side: 'client', bytes: frame(1, 0x5, 5, e.req({ ':method': 'GET', ':path': '/after', ':scheme': 'http', ':authority': 'shop' })) },
      { side: 'server', bytes: Buffer.concat([frame(1, 0x5, 5, e.res({ ':status': '204' }))]) },
    ];
    const ms = runCopied(() => new Http2Parser(), turns, 4096) as Http2Message[];
    const res = ms.filter((m): m is Http2Response => m.kind === 'response');
    expect(res.map((r) => [r.streamId, r.status, r.bodyBytes, r.error])).toEqual([
      [1, 200, 12_000, undefined],
      [3, 200, 9, undefined],
      [5, 204, 0, undefined],
    ]);
    expect(res[0]!.lostBytes).toBe(turns[1]!.bytes.length - 4096);
    expect(res[1]).toMatchObject({ grpcStatus: 0, grpc: { messages: 1 } });
    const rpc = ms.find((m): m is Http2Request => m.kind === 'request' && m.streamId === 3)!;
    // The 10 KB message's end fell in the lost bytes, with the next prefix: counted up to there.
    expect(rpc).toMatchObject({ bodyBytes: 10_020, grpc: { messages: 1 } });
    expect(rpc.lostBytes).toBeGreaterThan(5_000);
    expect(ms.find((m) => m.kind === 'request' && m.streamId === 5)).toMatchObject({ path: '/after' });
  });

  it('reports a request still being sent when the connection closes, as an incomplete span, never dropping it', () => {
    const e = encoders();
    const s = new Script();
    const [client] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 1, fd: 5, port: 8080 });
    s.data(client, 'egress', Buffer.concat([PREFACE, settings(), frame(1, 0x5, 1, e.req({ ':method': 'GET', ':path': '/done', ':scheme': 'http', ':authority': 'svc' }))]));
    s.data(client, 'ingress', Buffer.concat([settings(), frame(1, 0x5, 1, e.res({ ':status': '200' }))]));
    // An upload whose END_STREAM never came, and a stream whose headers came but nothing else.
    s.data(
      client,
      'egress',
      Buffer.concat([frame(1, 0x4, 3, e.req({ ':method': 'POST', ':path': '/upload', ':scheme': 'http', ':authority': 'svc' })), frame(0, 0, 3, Buffer.alloc(100, 1))]),
    );
    s.data(client, 'egress', frame(1, 0x4, 5, e.req({ ':method': 'POST', ':path': '/other', ':scheme': 'http', ':authority': 'svc' })));
    s.close(client);
    const spans: Span[] = [];
    const p = new Pipeline({ ...HEADER, processes: [{ pid: 3, exe: '/usr/bin/curl' }] }, [{ onSpan: (x) => spans.push(x) }]);
    p.push(s.events);
    p.finish();
    expect(spans.map((x) => [x.attributes['url.full'], x.attributes['http.response.status_code'] ?? null, x.attributes['loupe.incomplete'] ?? null])).toEqual([
      ['http://svc/done', 200, null],
      ['http://svc/upload', null, 'connection closed before the response'],
      ['http://svc/other', null, 'connection closed before the response'],
    ]);
    // At any cut of the bytes, the parser alone says the same when it ends.
    const turns: Turn[] = s.events.flatMap((ev) =>
      ev.type === 'data' ? [{ side: ev.direction === 'egress' ? ('client' as const) : ('server' as const), bytes: Buffer.from(ev.data) }] : [],
    );
    const whole = parse(turns);
    expect(whole.filter((m) => m.kind === 'request').map((m) => [(m as Http2Request).path, (m as Http2Request).open ?? false, m.bodyBytes])).toEqual([
      ['/done', false, 0],
      ['/upload', true, 100],
      ['/other', true, 0],
    ]);
    for (let cut = 1; cut < 200; cut += 13) expect(shape(parse(turns, [cut, cut * 3, cut * 7]))).toEqual(shape(whole));
  });

  it('never throws or hangs on random bytes', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.record({ side: fc.constantFrom('client' as const, 'server' as const), bytes: fc.uint8Array({ maxLength: 200 }) }), { maxLength: 10 }),
        (preface, turns) => {
          const t = turns.map((x) => ({ side: x.side, bytes: Buffer.from(x.bytes) }));
          if (preface) t.unshift({ side: 'client', bytes: PREFACE });
          parse(t);
        },
      ),
    );
  });
});
