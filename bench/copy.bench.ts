/**
 * What the copy bound (--max-payload) costs, on this machine's kernel (root
 * only): nghttpd serves a file to h2load over HTTP/2 (both from Debian), with
 * no agent (the peer), and with `loupe run` watching the port at a bound of
 * 4096 bytes (the old default: one record a read or write) and of 65536 (the
 * default: up to 16 records), rounds interleaved. Reported per file size:
 * requests/s, the agent's CPU time per request, records, records the kernel
 * side lost, and server spans that ended complete (status unset) against
 * those that did not.
 *
 * Wall clock is fine here: this is not the core.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { liveSupport } from '../src/sources/live/system';
import { waitFor } from '../test/helpers';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-copy-bench-'));

const support = liveSupport();
const missing = ['nghttpd', 'h2load'].filter((b) => spawnSync('which', [b]).status !== 0);
if (!support.ok || missing.length) {
  console.log(`bench/copy skipped: ${support.ok ? `not installed: ${missing.join(', ')}` : support.reason}`);
  process.exit(0);
}

function cpuMicros(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

function h2load(port: number, file: string, n: number): number {
  const r = spawnSync('h2load', ['-n', String(n), '-c', '4', '-m', '4', `http://127.0.0.1:${port}/${file}`], { encoding: 'utf8' });
  if (!new RegExp(`${n} succeeded`).test(r.stdout)) throw new Error(`h2load failed: ${r.stdout}${r.stderr}`);
  return Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1]);
}

interface Row {
  rps: number;
  cpuUs?: number;
  records?: number;
  lost?: number;
  complete?: number;
  incomplete?: number;
}

async function withAgent(port: number, maxPayload: number, work: () => number, n: number): Promise<Row> {
  const out = path.join(tmp, `spans-${maxPayload}.jsonl`);
  const child = spawn('node', [CLI, 'run', '--port', String(port), '--max-payload', String(maxPayload), '--format', 'jsonl', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  await waitFor(child, 'stderr', /attached/);
  const cpu0 = cpuMicros(child.pid!);
  const rps = work();
  const cpu = cpuMicros(child.pid!) - cpu0;
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  const servers = fs
    .readFileSync(out, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string; service: string; status: { code: string } })
    .filter((s) => s.kind === 'server');
  return {
    rps,
    cpuUs: cpu / n,
    records: Number(/loupe: (\d+) records/.exec(err)?.[1] ?? NaN),
    lost: Number(/(\d+) records lost by the kernel side/.exec(err)?.[1] ?? 0),
    complete: servers.filter((s) => s.status.code === 'unset').length,
    incomplete: servers.filter((s) => s.status.code !== 'unset').length,
  };
}

async function main() {
  const n = Number(process.env.LOUPE_BENCH_REQUESTS ?? 20_000);
  const rounds = Number(process.env.LOUPE_BENCH_ROUNDS ?? 3);
  console.log(`bench/copy: h2load -n ${n} -c 4 -m 4 against nghttpd --no-tls, ${rounds} rounds interleaved, medians; ${os.cpus().length} CPUs, kernel ${os.release()}`);
  console.log('| file | agent | requests/s | agent CPU µs/request | records | lost | server spans complete / not |');
  console.log('|---|---|---|---|---|---|---|');
  for (const size of [1_000, 10_000, 40_000]) {
    const docroot = path.join(tmp, `root-${size}`);
    fs.mkdirSync(docroot);
    fs.writeFileSync(path.join(docroot, 'f'), Buffer.alloc(size, 0x61));
    const port = 24000 + (process.pid % 500) * 4 + [1_000, 10_000, 40_000].indexOf(size);
    const server = spawn('nghttpd', ['--no-tls', '-d', docroot, String(port)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const rows = new Map<string, Row[]>();
    const add = (k: string, r: Row) => rows.set(k, [...(rows.get(k) ?? []), r]);
    for (let i = 0; i < rounds; i++) {
      add('none (peer)', { rps: h2load(port, 'f', n) });
      for (const bound of [4096, 65536]) add(`--max-payload ${bound}`, await withAgent(port, bound, () => h2load(port, 'f', n), n));
    }
    server.kill();
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (const [k, rs] of rows) {
      const f = (sel: (r: Row) => number | undefined, d = 0) => (sel(rs[0]!) !== undefined ? med(rs.map((r) => sel(r)!)).toFixed(d) : '—');
      console.log(
        `| ${size.toLocaleString('en-US')} B | ${k} | ${f((r) => r.rps)} | ${f((r) => r.cpuUs, 1)} | ${f((r) => r.records)} | ${f((r) => r.lost)} | ${f((r) => r.complete)} / ${f((r) => r.incomplete)} |`,
      );
    }
  }
}

void main().then(() => fs.rmSync(tmp, { recursive: true, force: true }));
