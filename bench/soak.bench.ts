/**
 * One hour of records through the pipeline, memory sampled every five minutes
 * of record time (issue 23: the agent's memory flat over a one-hour replay).
 * A service watched at both ends of its calls: clients come and go (a new
 * process every minute, which exits), keep-alive HTTP/1 connections of 50
 * requests to an API, the API's PostgreSQL queries and Redis commands per
 * request, a traceparent on every tenth request, 1% of connections whose
 * close is never seen, a server error now and then. Records are encoded and
 * decoded as a replay does, spans written as JSON lines to nowhere. Measures
 * the compiled code (`dist/`, `make bench` builds it first).
 *
 *   npx tsx bench/soak.bench.ts [minutes=60] [requests-per-second=200]
 */
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Event } from '../src/events/types';
import { HEADER } from '../test/helpers';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
/* eslint-disable @typescript-eslint/no-require-imports */
const { OutputPipeline } = require(path.join(__dirname, '../dist/pipeline/output.js')) as typeof import('../src/pipeline/output');
const { encodeEvent } = require(path.join(__dirname, '../dist/events/codec.js')) as typeof import('../src/events/codec');
/* eslint-enable @typescript-eslint/no-require-imports */

const MINUTES = Number(process.argv[2] ?? 60);
const RATE = Number(process.argv[3] ?? 200);
const SAMPLE_EVERY_NS = 5n * 60n * 1_000_000_000n;

const API = 200;
const DB = 300;
const REDIS = 400;
let written = 0;
const output = new OutputPipeline(
  {
    ...HEADER,
    processes: [
      { pid: API, exe: '/srv/api' },
      { pid: DB, exe: '/usr/lib/postgresql/15/bin/postgres' },
      { pid: REDIS, exe: '/usr/bin/redis-server' },
    ],
  },
  'jsonl',
  (text) => (written += text.length),
);

let records = 0;
function push(ev: Event): void {
  output.pushBuffer(encodeEvent(ev), () => 'soak', records++, 'soak');
}

interface End {
  pid: number;
  tid: number;
  fd: number;
  cookie: bigint;
  port: number;
}
let nextCookie = 1n;
let nextPort = 30000;
function connect(ts: bigint, client: { pid: number; tid: number; fd: number }, server: { pid: number; tid: number; fd: number; port: number }): [End, End] {
  const port = nextPort++;
  if (nextPort > 60000) nextPort = 30000;
  const c: End = { ...client, cookie: nextCookie++, port };
  const s: End = { ...server, cookie: nextCookie++ };
  const local = (e: End) => ({ addr: '127.0.0.1', port: e.port });
  push({ type: 'sock_open', ts, pid: c.pid, tid: c.tid, cpu: 0, fd: c.fd, family: 4, role: 'client', protocol: 6, local: local(c), remote: local(s), cookie: c.cookie });
  push({ type: 'sock_open', ts, pid: s.pid, tid: s.tid, cpu: 0, fd: s.fd, family: 4, role: 'server', protocol: 6, local: local(s), remote: local(c), cookie: s.cookie });
  return [c, s];
}
function data(ts: bigint, end: End, direction: 'egress' | 'ingress', bytes: string | Buffer, tid = end.tid): void {
  const payload = Buffer.from(bytes);
  push({
    type: 'data',
    ts,
    pid: end.pid,
    tid,
    cpu: 0,
    fd: end.fd,
    direction,
    source: direction === 'egress' ? 'write' : 'read',
    flags: 0,
    cookie: end.cookie,
    bytes: payload.length,
    data: payload,
  });
}
/** One message across a connection: written by one end, read by the other. */
function send(ts: bigint, from: End, to: End, bytes: string | Buffer, readerTid = to.tid): void {
  data(ts, from, 'egress', bytes);
  data(ts + 2_000n, to, 'ingress', bytes, readerTid);
}
function close(ts: bigint, end: End): void {
  push({ type: 'sock_close', ts, pid: end.pid, tid: end.tid, cpu: 0, fd: end.fd, cookie: end.cookie });
}

const pg = (type: string, body: string | Buffer) => {
  const b = Buffer.from(body);
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
};
const PG_ANSWER = Buffer.concat([
  pg('T', Buffer.concat([Buffer.from([0, 1]), Buffer.from('owner\0'), Buffer.alloc(18)])),
  pg('D', Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 3]), Buffer.from('ann')])),
  pg('C', 'SELECT 1\0'),
  pg('Z', 'I'),
]);

const samples: Array<{ minute: number; heapMB: number; rssMB: number; spans: number }> = [];
function sample(ts: bigint): void {
  gc();
  const m = process.memoryUsage();
  samples.push({ minute: Number(ts / 60_000_000_000n), heapMB: m.heapUsed / 1e6, rssMB: m.rss / 1e6, spans: output.pipeline.correlator.stats.spans });
}

const stepNs = BigInt(Math.round(1e9 / RATE));
const endNs = BigInt(MINUTES) * 60_000_000_000n;
let ts = 1_000_000_000n;
let clientPid = 1000;
let clientStarted = ts;
let http: [End, End] | undefined;
let httpLeft = 0;
let clientFd = 10;
let apiFd = 10;
const db = connect(ts, { pid: API, tid: API + 1, fd: 5 }, { pid: DB, tid: DB, fd: 5, port: 5432 });
const redis = connect(ts, { pid: API, tid: API + 1, fd: 6 }, { pid: REDIS, tid: REDIS, fd: 5, port: 6379 });
let nextSample = ts;
const t0 = process.hrtime.bigint();
for (let i = 0; ts < endNs; i++, ts += stepNs) {
  if (ts >= nextSample) {
    sample(ts);
    nextSample += SAMPLE_EVERY_NS;
  }
  // A client process lives a minute, then exits (its connection's close seen or not).
  if (ts - clientStarted >= 60_000_000_000n) {
    if (http) close(ts, http[0]);
    http = undefined;
    push({ type: 'proc_exit', ts, pid: clientPid, tid: clientPid, cpu: 0, exitCode: 0 });
    clientPid++;
    clientStarted = ts;
  }
  if (!http || httpLeft === 0) {
    // 1% of connections end without a close seen at either end.
    if (http && i % 100 !== 0) {
      close(ts, http[0]);
      close(ts, http[1]);
    }
    http = connect(ts, { pid: clientPid, tid: clientPid, fd: clientFd++ }, { pid: API, tid: API, fd: apiFd++, port: 8080 });
    if (clientFd > 1000) clientFd = 10;
    if (apiFd > 1000) apiFd = 10;
    httpLeft = 50;
  }
  httpLeft--;
  const [client, server] = http;
  const traced = i % 10 === 0 ? `traceparent: 00-${i.toString(16).padStart(32, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01\r\n` : '';
  send(ts, client, server, `GET /items/${i % 997}?page=${i % 7} HTTP/1.1\r\nHost: api\r\nUser-Agent: soak\r\n${traced}\r\n`);
  send(ts + 10_000n, db[0], db[1], pg('Q', `SELECT owner FROM items WHERE id = ${i % 997}\0`));
  send(ts + 30_000n, db[1], db[0], PG_ANSWER, API);
  send(ts + 40_000n, redis[0], redis[1], `*2\r\n$3\r\nGET\r\n$${String(i % 997).length + 5}\r\nitem:${i % 997}\r\n`);
  send(ts + 50_000n, redis[1], redis[0], '$3\r\nann\r\n', API);
  const status = i % 500 === 0 ? '500 Internal Server Error' : '200 OK';
  send(ts + 80_000n, server, client, `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"owner":"ann"}`);
}
sample(ts);
output.finish();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

console.log(`\nSoak: ${MINUTES} minutes of records at ${RATE} requests/s (node ${process.version}); goal: memory flat (issue 23)`);
console.log(
  `${records.toLocaleString('en-US')} records in ${seconds.toFixed(1)} s (${Math.round(records / seconds).toLocaleString('en-US')} records/s), ${(written / 1e6).toFixed(0)} MB of JSON lines`,
);
console.log('| record time (minute) | spans so far | heap after GC | process RSS |');
console.log('|---:|---:|---:|---:|');
for (const s of samples) console.log(`| ${s.minute} | ${s.spans.toLocaleString('en-US')} | ${s.heapMB.toFixed(1)} MB | ${s.rssMB.toFixed(0)} MB |`);
const settled = samples.find((s) => s.minute >= 15) ?? samples[0]!;
const last = samples[samples.length - 1]!;
console.log(
  `\nheap from minute ${settled.minute} to ${last.minute}: ${settled.heapMB.toFixed(1)} -> ${last.heapMB.toFixed(1)} MB (${(last.heapMB - settled.heapMB >= 0 ? '+' : '') + (last.heapMB - settled.heapMB).toFixed(1)} MB)`,
);
