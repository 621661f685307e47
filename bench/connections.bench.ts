/**
 * Memory per open connection: the pipeline (connection tracking, detection, a
 * parser per socket, the correlator's state) holding N connections open, both
 * ends watched, a request in flight on each (issue 23: RSS at most 64 MB with
 * 10,000 open connections). It measures the compiled code users run (`dist/`,
 * `make bench` builds it first): under tsx every closure carries a name
 * property, which adds about 4 KiB per connection that the build does not.
 * No JavaScript peer runs such a pipeline; the goal is absolute.
 */
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { HEADER } from '../test/helpers';
import { Script, type Sock } from '../test/script';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Pipeline } = require(path.join(__dirname, '../dist/pipeline/pipeline.js')) as typeof import('../src/pipeline/pipeline');

function measure(n: number): { heapPerConnection: number; heapMB: number; rssMB: number; spans: number } {
  const s = new Script();
  const pairs: Array<[Sock, Sock]> = [];
  for (let i = 0; i < n; i++) pairs.push(s.connection({ pid: 1, tid: 1, fd: 10 + i, port: 20000 + (i % 40000) }, { pid: 2, tid: 2, fd: 10 + i, port: 8080 }));
  for (const [client, server] of pairs) {
    const request = `GET /items/${client.fd} HTTP/1.1\r\nHost: api\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`;
    s.send(client, request);
    s.recv(server, request);
  }
  let spans = 0;
  const pipeline = new Pipeline(
    {
      ...HEADER,
      processes: [
        { pid: 1, exe: '/srv/client' },
        { pid: 2, exe: '/srv/api' },
      ],
    },
    [{ onSpan: () => spans++ }],
  );
  gc();
  const before = process.memoryUsage().heapUsed;
  pipeline.push(s.events);
  gc();
  const after = process.memoryUsage();
  const heap = after.heapUsed - before;
  // Kept alive until measured: the pipeline holds every connection open.
  if (pipeline === undefined) throw new Error('unreachable');
  return { heapPerConnection: heap / n, heapMB: heap / 1e6, rssMB: after.rss / 1e6, spans };
}

gc();
const idle = process.memoryUsage().rss / 1e6;
console.log(`\nOpen connections, both ends watched, a request in flight on each (node ${process.version}); goal: RSS at most 64 MB at 10,000 (issue 23)`);
console.log(`| connections | heap held | per connection | process RSS after | spans ended |`);
console.log('|---:|---:|---:|---:|---:|');
console.log(`| 0 | — | — | ${idle.toFixed(0)} MB | — |`);
for (const n of [1000, 10000]) {
  const r = measure(n);
  if (r.spans !== 0) throw new Error(`${r.spans} spans ended: every request must still be in flight`);
  console.log(`| ${n.toLocaleString('en-US')} | ${r.heapMB.toFixed(1)} MB | ${(r.heapPerConnection / 1024).toFixed(1)} KiB | ${r.rssMB.toFixed(0)} MB | ${r.spans} |`);
}
