/**
 * A pcap larger than memory should cost no more memory than a small one:
 * `loupe parse` reads a pcap through a window and streams its messages
 * (issue 19). This writes an HTTP/1 capture of 64 connections open at a time
 * (keep-alive, bodies of 1–60 KB, segments of 1448 bytes) at two sizes, the
 * larger past Node's 2 GiB buffer (the old whole-file read refused it), and
 * runs `loupe parse` and the peer, Wireshark's `tshark` (HTTP reassembly on,
 * its default), on each, under /usr/bin/time for peak RSS.
 *
 *   npx tsc -p tsconfig.json && npx tsx bench/pcap.bench.ts [small-MiB] [large-MiB]
 *
 * Needs tshark (apt-get install tshark). Wall clock is fine here: this is not the core.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { conversation, tcpPacket, type Seg } from '../test/pcap-writer';

const ROOT = path.resolve(__dirname, '..');
const SIZES_MIB = [Number(process.argv[2] ?? 256), Number(process.argv[3] ?? 3072)];
const OPEN_AT_ONCE = 64;
const EXCHANGES_PER_CONNECTION = 4;
const HEAP_CAP_MIB = Number(process.env.LOUPE_BENCH_HEAP_MIB ?? 48);

/** Requests written, so both tools' counts can be checked against it. */
function writePcap(file: string, mib: number): { requests: number; bytes: number } {
  const fd = fs.openSync(file, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  fs.writeSync(fd, header);
  let bytes = 24;
  let requests = 0;
  let ts = 1_700_000_000_000_000_000n;
  for (let block = 0; bytes < mib * 1024 * 1024; block++) {
    const convs: Seg[][] = [];
    for (let i = 0; i < OPEN_AT_ONCE; i++) {
      const exchanges: Array<[string, string]> = [];
      for (let e = 0; e < EXCHANGES_PER_CONNECTION; e++) {
        const size = 1000 + ((block * 7919 + i * 104729 + e * 1299709) % 59_000);
        const body = 'b'.repeat(size);
        exchanges.push([
          `POST /orders/${block}/${i}/${e} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n${body}`,
          `HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ncreated`,
        ]);
        requests++;
      }
      const client = `10.${(block >> 8) & 255}.${block & 255}.${i + 1}:${40000 + i}`;
      convs.push(conversation(client, '10.200.0.1:8080', exchanges, 1448));
    }
    const parts: Buffer[] = [];
    for (let at = 0; convs.some((c) => at < c.length); at++) {
      for (const c of convs) {
        if (at >= c.length) continue;
        const { frame, originalLength } = tcpPacket(c[at]!);
        const rec = Buffer.alloc(16);
        ts += 10_000n;
        rec.writeUInt32LE(Number(ts / 1_000_000_000n), 0);
        rec.writeUInt32LE(Number((ts % 1_000_000_000n) / 1000n), 4);
        rec.writeUInt32LE(frame.length, 8);
        rec.writeUInt32LE(originalLength, 12);
        parts.push(rec, frame);
      }
    }
    const chunk = Buffer.concat(parts);
    fs.writeSync(fd, chunk);
    bytes += chunk.length;
  }
  fs.closeSync(fd);
  return { requests, bytes };
}

interface Measured {
  tool: string;
  peakMiB: number;
  wallS: number;
  userS: number;
  requests: number;
}

/** Runs `argv` under /usr/bin/time; `count` reads the number of HTTP requests it found from its output. */
function measure(tool: string, argv: string[], count: (stdout: string, stderr: string) => number): Measured {
  const out = path.join(os.tmpdir(), `loupe-bench-${process.pid}.out`);
  const r = spawnSync('/bin/sh', ['-c', `/usr/bin/time -f 'TIME %M %e %U' "$@" > ${out}`, 'sh', ...argv], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const m = /TIME (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (!m) throw new Error(`${tool}: ${r.stderr}`);
  const stdout = fs.readFileSync(out, 'utf8');
  fs.rmSync(out);
  return { tool, peakMiB: Number(m[1]) / 1024, wallS: Number(m[2]), userS: Number(m[3]), requests: count(stdout, r.stderr) };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-pcap-bench-'));
try {
  console.log('| pcap | tool | requests found / written | peak RSS MiB | wall s | user s | MB/s |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const mib of SIZES_MIB) {
    const file = path.join(dir, `http-${mib}.pcap`);
    const { requests, bytes } = writePcap(file, mib);
    const runs = [
      measure(
        'loupe parse',
        ['node', path.join(ROOT, 'dist/cli/main.js'), 'parse', file, '--format', 'jsonl'],
        (stdout) => stdout.split('\n').filter((l) => l.includes('"kind":"request"')).length,
      ),
      // The bound, shown: the same run with V8's heap capped (it fails with "heap out of memory" if anything grows with the file).
      measure(
        `loupe parse, heap capped at ${HEAP_CAP_MIB} MiB`,
        ['node', `--max-old-space-size=${HEAP_CAP_MIB}`, path.join(ROOT, 'dist/cli/main.js'), 'parse', file, '--format', 'jsonl'],
        (stdout) => stdout.split('\n').filter((l) => l.includes('"kind":"request"')).length,
      ),
      measure(
        'tshark -Y http.request',
        ['tshark', '-n', '-r', file, '-Y', 'http.request', '-T', 'fields', '-e', 'frame.number'],
        (stdout) => stdout.split('\n').filter((l) => l !== '').length,
      ),
    ];
    for (const r of runs) {
      console.log(
        `| ${(bytes / 2 ** 20).toFixed(0)} MiB | ${r.tool} | ${r.requests} / ${requests} | ${r.peakMiB.toFixed(0)} | ${r.wallS.toFixed(1)} | ${r.userS.toFixed(1)} | ${(bytes / 1e6 / r.wallS).toFixed(0)} |`,
      );
    }
    fs.rmSync(file);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
