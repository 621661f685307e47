/**
 * HTTP/2 and gRPC from real peers: Node's http2 (nghttp2) and @grpc/grpc-js,
 * client and server on loopback, recorded through a proxy. Loupe's records
 * are compared with what the real server received and answered (a
 * differential test against nghttp2), and the recorded bytes are re-cut at
 * random to check that the messages do not depend on where bytes split.
 */
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers';
import { recordingProxy } from './recording-proxy';
import { Http2Parser } from '../src/parsers/http2/parser';
import type { Http2Message, Http2Request, Http2Response } from '../src/parsers/http2/messages';
import type { DataEvent, Event } from '../src/events/types';
import { StreamMasker } from '../src/security/redact-payload';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const PROTO = path.join(ROOT, 'test/fixtures/greeter.proto');

interface Seen {
  method: string;
  path: string;
  custom: string | undefined;
  body: number;
}

/** Feed a recorded client connection's data events to a parser, re-cut at `cuts`. */
function parseEvents(events: Event[], cuts: number[] = [], skipFirst = 0): Http2Message[] {
  const p = new Http2Parser();
  const out: Http2Message[] = [];
  p.onMessage = (m) => out.push(m);
  let c = 0;
  const data = events.filter((e): e is DataEvent => e.type === 'data').slice(skipFirst);
  for (const ev of data) {
    const side = ev.direction === 'egress' ? 'client' : 'server';
    const b = Buffer.from(ev.data);
    const at = cuts.length ? cuts[c++ % cuts.length]! % (b.length + 1) : 0;
    if (at > 0 && at < b.length) {
      p.feed(side, { data: b.subarray(0, at), ts: ev.ts, tid: ev.tid });
      p.feed(side, { data: b.subarray(at), ts: ev.ts, tid: ev.tid });
    } else p.feed(side, { data: b, ts: ev.ts, tid: ev.tid });
  }
  return out;
}

const strip = (ms: Http2Message[]) => ms.map(({ tsStart: _a, tsEnd: _b, tid: _c, offset: _d, ...rest }) => rest);

describe('HTTP/2 from node:http2 (nghttp2)', () => {
  const seen: Seen[] = [];
  let server: http2.Http2Server;
  let events: Event[] = [];
  let capture = '';

  beforeAll(async () => {
    server = http2.createServer();
    server.on('stream', (stream, headers) => {
      let body = 0;
      stream.on('data', (c: Buffer) => (body += c.length));
      stream.on('end', () => {
        const p = String(headers[':path']);
        seen.push({ method: String(headers[':method']), path: p, custom: headers['x-custom'] as string | undefined, body });
        if (p === '/reset') return stream.close(http2.constants.NGHTTP2_CANCEL);
        if (p === '/missing') return stream.respond({ ':status': 404 }, { endStream: true });
        if (p === '/big') {
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
          return stream.end(Buffer.alloc(100_000, 7));
        }
        if (p === '/trailers') {
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
          return stream.end('with trailers');
        }
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-served-by': 'node' });
        stream.end(`you sent ${body} bytes to ${p}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const proxy = await recordingProxy(port, 5151, '/usr/bin/node');
    const client = http2.connect(`http://127.0.0.1:${proxy.port}`);
    const request = (headers: http2.OutgoingHttpHeaders, body?: Buffer) =>
      new Promise<number>((resolve) => {
        const req = client.request(headers);
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', () => resolve(-1));
        req.on('close', () => resolve(-1));
        req.resume();
        req.end(body);
      });
    // Concurrent streams, repeated headers (the dynamic table at work), a body, a big answer, 404, reset, trailers.
    await Promise.all([
      request({ ':path': '/a', 'x-custom': 'one' }),
      request({ ':path': '/b', 'x-custom': 'two' }),
      request({ ':method': 'POST', ':path': '/upload', 'x-custom': 'three', 'content-type': 'application/json' }, Buffer.alloc(40_000, 1)),
      request({ ':path': '/big' }),
    ]);
    await request({ ':path': '/a', 'x-custom': 'one' });
    await request({ ':path': '/missing' });
    await request({ ':path': '/reset' });
    await request({ ':path': '/trailers' });
    client.close();
    await new Promise((r) => setTimeout(r, 100));
    capture = path.join(tempDir(), 'h2.loupe');
    events = proxy.events;
    await proxy.close(capture);
  }, 30_000);

  afterAll(() => server?.close());

  it('reports every request the server received, with its headers, and every answer', () => {
    const ms = parseEvents(events);
    const reqs = ms.filter((m): m is Http2Request => m.kind === 'request');
    const got = reqs.map((r) => ({ method: r.method, path: r.path, custom: r.headers.find(([n]) => n === 'x-custom')?.[1], body: r.bodyBytes }));
    const byPath = (xs: Seen[]) => [...xs].sort((a, b) => a.path.localeCompare(b.path) || (a.custom ?? '').localeCompare(b.custom ?? ''));
    expect(byPath(got)).toEqual(byPath(seen));
    const res = ms.filter((m): m is Http2Response => m.kind === 'response');
    const statusOf = (p: string) => res.find((r) => r.streamId === reqs.find((q) => q.path === p)!.streamId)!;
    expect(statusOf('/big')).toMatchObject({ status: 200, bodyBytes: 100_000 });
    expect(statusOf('/missing')).toMatchObject({ status: 404, bodyBytes: 0 });
    expect(statusOf('/reset').reset).toBe('CANCEL');
    expect(statusOf('/trailers').trailers).toEqual([['x-checksum', 'abc']]);
    expect(statusOf('/upload').bodyBytes).toBe(Buffer.byteLength('you sent 40000 bytes to /upload'));
    expect(ms.every((m) => !m.unknownHeaders && !m.error)).toBe(true);
  });

  it('gives the same messages however the recorded bytes are cut', () => {
    const whole = strip(parseEvents(events));
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (cuts) => {
        expect(strip(parseEvents(events, cuts))).toEqual(whole);
      }),
      { numRuns: 50 },
    );
  });

  it('joining late: decodes what it can, marks dynamic-table references unknown, invents nothing', () => {
    const data = events.filter((e) => e.type === 'data');
    // Skip the preface, the settings and the first burst of requests.
    const skip = data.findIndex((e, i) => i > 4 && e.type === 'data' && e.direction === 'egress' && Buffer.from(e.data).includes(Buffer.from('/missing')));
    const ms = parseEvents(events, [], skip > 0 ? skip : 6);
    expect(ms.length).toBeGreaterThan(0);
    for (const m of ms) {
      for (const [n] of m.headers) if (n.startsWith('<unknown')) expect(m.unknownHeaders?.length).toBeGreaterThan(0);
    }
    const statuses = ms.filter((m): m is Http2Response => m.kind === 'response').map((r) => r.status);
    expect(statuses).toContain(404); // :status 404 is in the static table: known whatever was missed
  });

  it('loupe parse and replay on the capture: records with streamId, client spans per stream', () => {
    const parsed = spawnSync('node', [CLI, 'parse', capture, '--quiet'], { encoding: 'utf8' });
    expect(parsed.status, parsed.stderr).toBe(0);
    const records = parsed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.filter((r) => r.kind === 'request').every((r) => r.protocol === 'http2' && Number.isInteger(r.streamId))).toBe(true);
    const replay = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    const spans = replay.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(spans).toHaveLength(seen.length);
    const missing = spans.find((s) => s.attributes['url.full']?.endsWith('/missing'));
    expect(missing).toMatchObject({ kind: 'client', name: 'GET', status: { code: 'error' } });
    expect(missing.attributes['http.response.status_code']).toBe(404);
    expect(missing.attributes['network.protocol.version']).toBe('2');
  });
});

describe('gRPC from @grpc/grpc-js', () => {
  let server: grpc.Server;
  let events: Event[] = [];
  let capture = '';

  beforeAll(async () => {
    const def = protoLoader.loadSync(PROTO);
    const pkg = grpc.loadPackageDefinition(def) as unknown as { demo: { v1: { Greeter: grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition } } } };
    const Greeter = pkg.demo.v1.Greeter;
    server = new grpc.Server();
    server.addService(Greeter.service, {
      SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (call.request.name === 'nobody') return cb({ code: grpc.status.NOT_FOUND, details: 'no such person: nobody' });
        cb(null, { message: `hello ${call.request.name}` });
      },
      ListGreetings: (call: grpc.ServerWritableStream<{ name: string; times: number }, unknown>) => {
        for (let i = 0; i < call.request.times; i++) call.write({ message: `hi ${i}` });
        call.end();
      },
      CollectNames: (call: grpc.ServerReadableStream<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const names: string[] = [];
        call.on('data', (r: { name: string }) => names.push(r.name));
        call.on('end', () => cb(null, { message: names.join(',') }));
      },
      Chat: (call: grpc.ServerDuplexStream<{ name: string }, unknown>) => {
        call.on('data', (r: { name: string }) => call.write({ message: `echo ${r.name}` }));
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const proxy = await recordingProxy(port, 5252, '/usr/bin/node');
    const client = new Greeter(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
    const unary = (name: string) => new Promise((resolve) => (client.SayHello as (r: unknown, cb: (e: unknown, r: unknown) => void) => void)({ name }, (e, r) => resolve(e ?? r)));
    await unary('ann');
    await unary('nobody');
    await new Promise((resolve) => {
      const s = (client.ListGreetings as (r: unknown) => grpc.ClientReadableStream<unknown>)({ name: 'x', times: 3 });
      s.on('data', () => {});
      s.on('end', resolve);
    });
    await new Promise((resolve) => {
      const s = (client.CollectNames as (cb: (e: unknown, r: unknown) => void) => grpc.ClientWritableStream<unknown>)(resolve);
      for (const name of ['a', 'b', 'c', 'd']) s.write({ name });
      s.end();
    });
    await new Promise((resolve) => {
      const s = (client.Chat as () => grpc.ClientDuplexStream<unknown, unknown>)();
      s.on('data', () => {});
      s.on('end', resolve);
      s.write({ name: 'p' });
      s.write({ name: 'q' });
      s.end();
    });
    client.close();
    await new Promise((r) => setTimeout(r, 100));
    events = proxy.events;
    capture = path.join(tempDir(), 'grpc.loupe');
    await proxy.close(capture);
  }, 30_000);

  afterAll(() => server?.forceShutdown());

  it('reads service, method, message counts per direction and grpc-status for every call kind', () => {
    const ms = parseEvents(events);
    const calls = ms
      .filter((m): m is Http2Response => m.kind === 'response')
      .map((r) => {
        const req = ms.find((m): m is Http2Request => m.kind === 'request' && m.streamId === r.streamId)!;
        return [req.grpc?.method, req.grpc?.messages, r.grpc?.messages ?? 0, r.grpcStatus, r.grpcMessage ?? null];
      });
    expect(calls).toEqual([
      ['SayHello', 1, 1, 0, 'OK'], // grpc-js sends grpc-message: OK
      ['SayHello', 1, 0, 5, 'no such person: nobody'], // trailers-only response
      ['ListGreetings', 1, 3, 0, 'OK'],
      ['CollectNames', 4, 1, 0, 'OK'],
      ['Chat', 2, 2, 0, 'OK'],
    ]);
    expect(ms.every((m) => m.protocol === 'grpc')).toBe(true);
    expect((ms[0] as Http2Request).grpc?.service).toBe('demo.v1.Greeter');
    // HelloRequest{name:"ann"} is 5 bytes of protobuf: field 1, length 3, "ann".
    expect((ms[0] as Http2Request).grpc?.bytes).toBe(5);
  });

  it('replays into RPC client spans with rpc.* attributes and the gRPC status', () => {
    const replay = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    const spans = replay.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(spans.map((s) => s.name)).toEqual([
      'demo.v1.Greeter/SayHello',
      'demo.v1.Greeter/SayHello',
      'demo.v1.Greeter/ListGreetings',
      'demo.v1.Greeter/CollectNames',
      'demo.v1.Greeter/Chat',
    ]);
    expect(spans[1].attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'demo.v1.Greeter', 'rpc.method': 'SayHello', 'rpc.grpc.status_code': 5 });
    expect(spans[1].status.code).toBe('error');
    expect(spans[0].status.code).toBe('unset');
  });

  it('masked as the live agent masks (the default), message bodies are gone and every call still reads the same', () => {
    const masked = events.map((ev) => (ev.type === 'data' ? { ...ev, data: Buffer.from(ev.data) } : ev));
    const maskers = new Map<string, StreamMasker>();
    const socket = {};
    for (const ev of masked)
      if (ev.type === 'data') {
        if (!maskers.has(ev.direction)) maskers.set(ev.direction, new StreamMasker(socket));
        maskers.get(ev.direction)!.mask(ev.data);
      }
    const text = (list: Event[]) => list.map((e) => (e.type === 'data' ? Buffer.from(e.data).toString('latin1') : '')).join('');
    // The names sent and greetings answered were in the bytes, and are not any more.
    for (const word of ['ann', 'hello ann', 'echo p', 'hi 2']) {
      expect(text(events)).toContain(word);
      expect(text(masked)).not.toContain(word);
    }
    const summary = (ms: Http2Message[]) => ms.map((m) => [m.kind, m.streamId, m.grpc?.method, m.grpc?.messages, m.grpc?.bytes, m.kind === 'response' ? m.grpcStatus : undefined]);
    expect(summary(parseEvents(masked))).toEqual(summary(parseEvents(events)));
  });

  it('with --proto, loupe parse decodes the message bodies', () => {
    const parsed = spawnSync('node', [CLI, 'parse', capture, '--quiet', '--proto', path.dirname(PROTO)], { encoding: 'utf8' });
    expect(parsed.status, parsed.stderr).toBe(0);
    const records = parsed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records[0]).toMatchObject({ rpcService: 'demo.v1.Greeter', rpcMethod: 'SayHello', messages: [{ name: 'ann' }] });
    expect(records[1]).toMatchObject({ grpcStatus: 0, messages: [{ message: 'hello ann' }] });
  });
});
