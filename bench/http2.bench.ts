/**
 * HTTP/2 response decoding: Loupe's Http2Parser against Node's own http2
 * (nghttp2 in C, through a client session) on the same server bytes, in one
 * run. The server side is generated once: SETTINGS, then for streams 1, 3, 5…
 * a HEADERS block (HPACK with Huffman and the dynamic table, by hpack.js) and
 * a DATA frame. Node's client opens those streams and reads the bytes from an
 * in-memory stream; Loupe parses the same bytes (and the client's requests).
 * Each must see every response end. Wall clock is fine here: not the core.
 *
 * A second workload is gRPC unary as the live agent sees it: each call one
 * write each way (the client's HEADERS and DATA; the server's HEADERS, DATA
 * and trailers), fed one write per chunk, both sides to Loupe.
 */
import * as http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { Http2Parser, PREFACE } from '../src/parsers/http2/parser';
import { report, type Result } from './harness';
import { frame } from '../test/http2-frames';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack = require('hpack.js') as { compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string }>): void; read(): Buffer } } };

const STREAMS = 1000;
const BODY = Buffer.alloc(1024, 0x61);
const CHUNK = 16 * 1024;

const serverEnc = hpack.compressor.create({ table: { size: 4096 } });
const clientEnc = hpack.compressor.create({ table: { size: 4096 } });
const serverParts = [frame(4, 0, 0, Buffer.alloc(0)), frame(4, 1, 0, Buffer.alloc(0))];
const clientParts = [PREFACE, frame(4, 0, 0, Buffer.alloc(0))];
for (let i = 0; i < STREAMS; i++) {
  const id = 2 * i + 1;
  clientEnc.write([
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'http' },
    { name: ':authority', value: 'bench' },
    { name: ':path', value: `/items/${i}` },
  ]);
  clientParts.push(frame(1, 0x5, id, clientEnc.read()));
  serverEnc.write([
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'application/json' },
    { name: 'content-length', value: String(BODY.length) },
    { name: 'server', value: 'bench' },
    { name: 'x-request-id', value: `req-${i.toString(16).padStart(8, '0')}` },
  ]);
  serverParts.push(frame(1, 0x4, id, serverEnc.read()), frame(0, 0x1, id, BODY));
}
const server = Buffer.concat(serverParts);
const client = Buffer.concat(clientParts);
const chunks = Array.from({ length: Math.ceil(server.length / CHUNK) }, (_, i) => server.subarray(i * CHUNK, (i + 1) * CHUNK));

function loupe(): number {
  const p = new Http2Parser();
  let done = 0;
  p.onMessage = (m) => {
    if (m.kind === 'response' && m.status === 200) done++;
  };
  p.feed('client', { data: client, ts: 0n, tid: 0 });
  for (const c of chunks) p.feed('server', { data: c, ts: 0n, tid: 0 });
  return done;
}

/**
 * Node's client session making STREAMS requests (headers of the i-th by `request`) and reading the server's
 * bytes, a chunk per push; resolves with the ms from the first byte to the last response's end.
 */
function nodeSession(authority: string, request: (i: number) => http2.OutgoingHttpHeaders, serverChunks: Buffer[]): Promise<{ ms: number; done: number }> {
  return new Promise((resolve, reject) => {
    const socket = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    const session = http2.connect(authority, { createConnection: () => socket as unknown as import('node:net').Socket, peerMaxConcurrentStreams: STREAMS + 1 });
    session.on('error', reject);
    let done = 0;
    for (let i = 0; i < STREAMS; i++) {
      const req = session.request(request(i), { endStream: true });
      req.on('response', () => {});
      req.on('data', () => {});
      req.on('error', reject);
      req.on('end', () => {
        if (++done === STREAMS) {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          session.destroy();
          resolve({ ms, done });
        }
      });
    }
    let t0 = 0n;
    // Answer only once the session has sent its requests: HEADERS on a stream still idle is a protocol error.
    session.on('connect', () =>
      setTimeout(() => {
        t0 = process.hrtime.bigint();
        for (const c of serverChunks) socket.push(c);
      }, 50),
    );
  });
}
const node = () => nodeSession('http://bench', (i) => ({ ':path': `/items/${i}` }), chunks);

// ---- gRPC unary: grpc-go's frames, one write per message each way.
const grpcServerEnc = hpack.compressor.create({ table: { size: 4096 } });
const grpcClientEnc = hpack.compressor.create({ table: { size: 4096 } });
const grpcMessage = (bytes: number) => {
  const m = Buffer.alloc(5 + bytes, 0x62);
  m[0] = 0;
  m.writeUInt32BE(bytes, 1);
  return m;
};
const grpcTurns: Array<{ side: 'client' | 'server'; data: Buffer }> = [
  { side: 'client', data: Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]) },
  { side: 'server', data: Buffer.concat([frame(4, 0, 0, Buffer.alloc(0)), frame(4, 1, 0, Buffer.alloc(0))]) },
];
for (let i = 0; i < STREAMS; i++) {
  const id = 2 * i + 1;
  grpcClientEnc.write([
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/helloworld.Greeter/SayHello' },
    { name: ':authority', value: 'bench:50051' },
    { name: 'content-type', value: 'application/grpc' },
    { name: 'user-agent', value: 'grpc-go/1.64.0' },
    { name: 'te', value: 'trailers' },
    { name: 'grpc-timeout', value: '999837u' },
  ]);
  grpcTurns.push({ side: 'client', data: Buffer.concat([frame(1, 0x4, id, grpcClientEnc.read()), frame(0, 0x1, id, grpcMessage(12))]) });
  grpcServerEnc.write([
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'application/grpc' },
  ]);
  const head = grpcServerEnc.read();
  grpcServerEnc.write([
    { name: 'grpc-status', value: '0' },
    { name: 'grpc-message', value: '' },
  ]);
  grpcTurns.push({ side: 'server', data: Buffer.concat([frame(1, 0x4, id, head), frame(0, 0, id, grpcMessage(18)), frame(1, 0x5, id, grpcServerEnc.read())]) });
}
const grpcServerChunks = grpcTurns.filter((t) => t.side === 'server').map((t) => t.data);

function loupeGrpc(): number {
  const p = new Http2Parser();
  let done = 0;
  p.onMessage = (m) => {
    if (m.kind === 'response') done++;
  };
  for (const t of grpcTurns) p.feed(t.side, { data: t.data, ts: 0n, tid: 0 });
  return done;
}

const nodeGrpc = () =>
  nodeSession('http://bench:50051', () => ({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', 'content-type': 'application/grpc', te: 'trailers' }), grpcServerChunks);

/** Loupe's pass and Node's session interleaved, 15 rounds after 3 to warm up, each checked to see every response: median ms of each. */
async function interleaved(what: string, loupeRun: () => number, nodeRun: () => Promise<{ ms: number; done: number }>): Promise<[number, number]> {
  if (loupeRun() !== STREAMS) throw new Error(`loupe did not see every ${what} response`);
  for (let i = 0; i < 3; i++) {
    loupeRun();
    if ((await nodeRun()).done !== STREAMS) throw new Error(`node did not see every ${what} response`);
  }
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r < 15; r++) {
    const t0 = process.hrtime.bigint();
    loupeRun();
    times[0].push(Number(process.hrtime.bigint() - t0) / 1e6);
    times[1].push((await nodeRun()).ms);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return [median(times[0]), median(times[1])];
}

async function main(): Promise<void> {
  const [loupeMs, nodeMs] = await interleaved('HTTP/2', loupe, node);
  const results: Result[] = [
    { name: 'loupe Http2Parser (frames, HPACK, streams; both sides)', medianMs: loupeMs, bytes: server.length, messages: STREAMS },
    { name: "Node's http2 client session (nghttp2), server side", medianMs: nodeMs, bytes: server.length, messages: STREAMS },
  ];
  report(`HTTP/2: ${STREAMS} responses (HEADERS + 1 KiB DATA), ${(server.length / 1e6).toFixed(2)} MB of server bytes in 16 KiB chunks ("messages" = responses)`, results);

  const [loupeGrpcMs, nodeGrpcMs] = await interleaved('gRPC', loupeGrpc, nodeGrpc);
  const grpcBytes = grpcServerChunks.reduce((n, c) => n + c.length, 0);
  report(`gRPC unary: ${STREAMS} calls, one write per message each way, fed one write per chunk (Loupe: both sides; "messages" = responses); goal: at least 1x (issue 23)`, [
    { name: 'loupe Http2Parser (both sides)', medianMs: loupeGrpcMs, bytes: grpcBytes, messages: STREAMS },
    { name: "Node's http2 client session (nghttp2), server side", medianMs: nodeGrpcMs, bytes: grpcBytes, messages: STREAMS },
  ]);
}

void main();
