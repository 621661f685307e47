/**
 * The live agent's cost, measured on this machine's kernel (root only):
 *
 * 1. Drain rate: bench/tools/blast makes small TCP writes on loopback at a
 *    paced rate (each one write(2), so one data record); the agent (`loupe
 *    run`) takes them through the ring buffer into the pipeline. Reported:
 *    records/s the agent consumed and records the kernel side lost.
 * 2. Overhead at saturation: wrk against a Node HTTP server, with no agent
 *    (the peer), with `loupe run` watching the server's port (both ends), its
 *    pid (the server only), its pid with the agent kept on the last CPU
 *    (`--cpus`), and its pid with the agent's process stopped (the kernel side
 *    alone), interleaved round by round. Reported: requests/s, p50
 *    latency, the server's CPU share and the host's idle share, and the
 *    agent's CPU time per request.
 * 3. Overhead at a steady rate: bench/tools/pace sends 2,000 requests/s on one
 *    keep-alive connection, with and without the agent (the same four ways
 *    as in 2), interleaved. Reported: p50 and p99 latency.
 *    Both again against bench/tools/api-server.js, a handler with a real
 *    request's work (JSON of 100 records, about 125 µs of CPU).
 * 4. OTLP export: paced rates with `--otlp` to a local collector, against the
 *    same agent writing JSON lines only. Reported: agent CPU per request, and
 *    spans exported and dropped.
 * 5. The kernel side's cost per syscall: bench/tools/syscalls times getppid(2)
 *    (never recorded) and a 100-byte write(2) + read(2) on loopback TCP, with
 *    no agent (the peer), with the agent watching another process, and with
 *    it watching this one (running, and stopped). Reported: ns per call.
 *
 * Wall clock is fine here: this is not the core.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { liveSupport } from '../src/sources/live/system';
import { waitFor } from '../test/helpers';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-bench-'));

function skip(reason: string): never {
  console.log(`bench/live skipped: ${reason}`);
  process.exit(0);
}

const support = liveSupport();
if (!support.ok) skip(support.reason);
if (spawnSync('wrk', ['--version']).error) skip('wrk is not installed (apt-get install wrk)');

const blast = path.join(tmp, 'blast');
execFileSync('gcc', ['-O2', '-pthread', '-o', blast, path.join(ROOT, 'bench/tools/blast.c')]);
const pace = path.join(tmp, 'pace');
execFileSync('gcc', ['-O2', '-o', pace, path.join(ROOT, 'bench/tools/pace.c')]);
const syscallsTool = path.join(tmp, 'syscalls');
execFileSync('gcc', ['-O2', '-o', syscallsTool, path.join(ROOT, 'bench/tools/syscalls.c')]);

interface Agent {
  pid: number;
  stop(): Promise<{ records: number; lost: number }>;
}

/** CPU time (user + system) a process and its threads used so far, in µs. */
function cpuMicros(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
}

/** `--port P` watches both ends of the server's connections (wrk too); `--pid` the server process only, as Beyla's port discovery selects the service that owns the port. */
async function startAgent(ports: number[], pid?: number, extra: string[] = [], env: Record<string, string> = {}): Promise<Agent & { stderr: () => string }> {
  const args = ['run', '--format', 'jsonl', ...(pid !== undefined ? ['--pid', String(pid)] : ports.flatMap((p) => ['--port', String(p)])), ...extra];
  const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  await waitFor(child, 'stderr', /attached/);
  return {
    pid: child.pid!,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
      const records = Number(/loupe: (\d+) records/.exec(err)?.[1] ?? NaN);
      const lost = Number(/(\d+) records lost by the kernel side/.exec(err)?.[1] ?? 0);
      return { records, lost };
    },
  };
}

/** The CPU `--cpus` rows keep the agent on: the last one online. */
const AGENT_CPU = String(os.cpus().length - 1);

let nextPort = 23000 + (process.pid % 1000) * 10;

async function drainRate(rate: number, seconds: number): Promise<string> {
  const port = nextPort++;
  const agent = await startAgent([port]);
  const t0 = process.hrtime.bigint();
  const writes = Number(execFileSync(blast, [String(port), String(rate), String(seconds), '64'], { encoding: 'utf8' }).trim());
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const { records, lost } = await agent.stop();
  return `| ${rate.toLocaleString('en-US')} | ${writes.toLocaleString('en-US')} | ${records.toLocaleString('en-US')} | ${Math.round(records / elapsed).toLocaleString('en-US')} | ${lost} |`;
}

interface WrkResult {
  rps: number;
  p50ms: number;
  /** Share of one core the server process used, and share of the host's CPU time left idle, during the run. */
  serverCpu?: number;
  idle?: number;
}

/** Idle CPU time of the host so far, in µs (the idle column of /proc/stat's cpu line). */
function idleMicros(): number {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  return (Number(cpu[4]) * 1e6) / 100;
}

function wrk(port: number, seconds: number): WrkResult {
  const out = execFileSync('wrk', ['-t1', '-c8', `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const m = /50%\s+([\d.]+)(us|ms|s)/.exec(out)!;
  const p50ms = Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
  return { rps, p50ms };
}

/** A difference with its sign, + or - (toFixed writes only the minus). */
const signed = (x: number, digits = 1) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** hello: `hello\n` and nothing else (about 10 µs of server CPU a request); api: bench/tools/api-server.js (about 125 µs). */
type ServerKind = 'hello' | 'api';
const SERVER_LABEL: Record<ServerKind, string> = { hello: 'Node http hello', api: 'Node http API (JSON)' };

async function startServer(kind: ServerKind): Promise<{ port: number; server: ChildProcess }> {
  const port = nextPort++;
  const args =
    kind === 'hello'
      ? ['-e', `require('http').createServer((q, r) => r.end('hello\\n')).listen(${port}, '127.0.0.1', () => console.log('ready'))`]
      : [path.join(ROOT, 'bench/tools/api-server.js'), String(port)];
  const server = spawn('node', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitFor(server, 'stdout', /ready/);
  return { port, server };
}

async function steadyRate(rounds: number, rate: number, seconds: number, kind: ServerKind = 'hello'): Promise<string[]> {
  const { port, server } = await startServer(kind);
  const run = () =>
    execFileSync(pace, [String(port), String(rate), String(seconds)], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .map(Number);
  run(); // warm-up
  const plain: number[][] = [];
  const watched: number[][] = [];
  const serverOnly: number[][] = [];
  const pinned: number[][] = [];
  const stopped: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    plain.push(run());
    let agent = await startAgent([port]);
    watched.push(run());
    await agent.stop();
    agent = await startAgent([], server.pid);
    serverOnly.push(run());
    await agent.stop();
    agent = await startAgent([], server.pid, ['--cpus', AGENT_CPU]);
    pinned.push(run());
    await agent.stop();
    // The kernel side alone: the agent's process stopped, its ring buffer fills and records are dropped and counted.
    agent = await startAgent([], server.pid);
    process.kill(agent.pid, 'SIGSTOP');
    stopped.push(run());
    process.kill(agent.pid, 'SIGCONT');
    await agent.stop();
  }
  server.kill();
  const p50 = (xs: number[][]) => median(xs.map((x) => x[0]!));
  const p99 = (xs: number[][]) => median(xs.map((x) => x[1]!));
  const diff = (xs: number[][]) => `${signed(p50(xs) - p50(plain))} µs (${signed(((p50(xs) - p50(plain)) / p50(plain)) * 100)}%) | ${signed(p99(xs) - p99(plain))} µs`;
  return [
    '| server | p50 latency µs | p99 latency µs |',
    '|---|---:|---:|',
    `| ${SERVER_LABEL[kind]}, no agent (peer) | ${p50(plain).toFixed(1)} | ${p99(plain).toFixed(1)} |`,
    `| ${SERVER_LABEL[kind]}, loupe run --port (client and server watched) | ${p50(watched).toFixed(1)} | ${p99(watched).toFixed(1)} |`,
    `| difference | ${diff(watched)} |`,
    `| ${SERVER_LABEL[kind]}, loupe run --pid (the server only) | ${p50(serverOnly).toFixed(1)} | ${p99(serverOnly).toFixed(1)} |`,
    `| difference | ${diff(serverOnly)} |`,
    `| ${SERVER_LABEL[kind]}, loupe run --pid --cpus ${AGENT_CPU} (the agent kept on one CPU) | ${p50(pinned).toFixed(1)} | ${p99(pinned).toFixed(1)} |`,
    `| difference | ${diff(pinned)} |`,
    `| ${SERVER_LABEL[kind]}, loupe run --pid with the agent process stopped (kernel side only) | ${p50(stopped).toFixed(1)} | ${p99(stopped).toFixed(1)} |`,
    `| difference | ${diff(stopped)} |`,
  ];
}

async function overhead(rounds: number, seconds: number, kind: ServerKind = 'hello'): Promise<string[]> {
  const { port, server } = await startServer(kind);
  wrk(port, 2); // warm-up
  const plain: WrkResult[] = [];
  const watched: WrkResult[] = [];
  const serverOnly: WrkResult[] = [];
  const pinned: WrkResult[] = [];
  const stopped: WrkResult[] = [];
  const stoppedNoOptions: WrkResult[] = [];
  let recordsPerSec = 0;
  let serverRecordsPerSec = 0;
  const serverOnlyNoOptions: WrkResult[] = [];
  const agentCpu: { port: number[]; pid: number[]; pinned: number[]; noOptions: number[] } = { port: [], pid: [], pinned: [], noOptions: [] };
  /** wrk, with the server's CPU share and the host's idle share during it. */
  const measured = (): WrkResult => {
    const s0 = cpuMicros(server.pid!);
    const i0 = idleMicros();
    const t0 = process.hrtime.bigint();
    const result = wrk(port, seconds);
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    return { ...result, serverCpu: (cpuMicros(server.pid!) - s0) / wall, idle: (idleMicros() - i0) / (wall * os.cpus().length) };
  };
  const timed = async (agent: Agent, into: WrkResult[], cpu: number[]) => {
    const t0 = process.hrtime.bigint();
    const c0 = cpuMicros(agent.pid);
    const result = measured();
    cpu.push((cpuMicros(agent.pid) - c0) / (result.rps * seconds));
    into.push(result);
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    return (await agent.stop()).records / elapsed;
  };
  for (let r = 0; r < rounds; r++) {
    plain.push(measured());
    recordsPerSec = await timed(await startAgent([port]), watched, agentCpu.port);
    serverRecordsPerSec = await timed(await startAgent([], server.pid), serverOnly, agentCpu.pid);
    await timed(await startAgent([], server.pid, ['--cpus', AGENT_CPU]), pinned, agentCpu.pinned);
    await timed(await startAgent([], server.pid, ['--no-tcp-options']), serverOnlyNoOptions, agentCpu.noOptions);
    // The kernel side alone: the agent's process is stopped, its ring buffer fills, and records are dropped and counted.
    const agent = await startAgent([], server.pid);
    process.kill(agent.pid, 'SIGSTOP');
    stopped.push(measured());
    process.kill(agent.pid, 'SIGCONT');
    await agent.stop();
    // The same without TCP-option propagation: what the kernel side's request-start context costs.
    const noOptions = await startAgent([], server.pid, ['--no-tcp-options']);
    process.kill(noOptions.pid, 'SIGSTOP');
    stoppedNoOptions.push(measured());
    process.kill(noOptions.pid, 'SIGCONT');
    await noOptions.stop();
  }
  server.kill();
  const med = (xs: WrkResult[]) => ({
    rps: median(xs.map((x) => x.rps)),
    p50: median(xs.map((x) => x.p50ms)),
    shares: `${Math.round(median(xs.map((x) => x.serverCpu!)) * 100)}% | ${Math.round(median(xs.map((x) => x.idle!)) * 100)}%`,
  });
  const p = med(plain);
  const row = (label: string, xs: WrkResult[]) => {
    const w = med(xs);
    return [
      `| ${label} | ${Math.round(w.rps).toLocaleString('en-US')} | ${w.p50.toFixed(3)} | ${w.shares} |`,
      `| difference | ${signed(((w.rps - p.rps) / p.rps) * 100)}% | ${signed(((w.p50 - p.p50) / p.p50) * 100)}% | | |`,
    ];
  };
  return [
    '| server | requests/s | p50 latency ms | server CPU (of one core) | host CPU idle |',
    '|---|---:|---:|---:|---:|',
    `| ${SERVER_LABEL[kind]}, no agent (peer) | ${Math.round(p.rps).toLocaleString('en-US')} | ${p.p50.toFixed(3)} | ${p.shares} |`,
    ...row(`${SERVER_LABEL[kind]}, loupe run --port (client and server watched)`, watched),
    ...row(`${SERVER_LABEL[kind]}, loupe run --pid (the server only)`, serverOnly),
    ...row(`${SERVER_LABEL[kind]}, loupe run --pid --cpus ${AGENT_CPU} (the agent kept on one CPU)`, pinned),
    ...row(`${SERVER_LABEL[kind]}, loupe run --pid --no-tcp-options`, serverOnlyNoOptions),
    ...row(`${SERVER_LABEL[kind]}, loupe run --pid with the agent process stopped (kernel side only)`, stopped),
    ...row(`${SERVER_LABEL[kind]}, the same with --no-tcp-options (kernel side only)`, stoppedNoOptions),
    '',
    `(the agent consumed about ${Math.round(recordsPerSec).toLocaleString('en-US')} records/s with --port, ${Math.round(serverRecordsPerSec).toLocaleString('en-US')} with --pid;`,
    ` its CPU time per request, all threads: ${median(agentCpu.port).toFixed(1)} µs with --port, ${median(agentCpu.pid).toFixed(1)} µs with --pid,`,
    ` ${median(agentCpu.pinned).toFixed(1)} µs with --pid --cpus ${AGENT_CPU}, ${median(agentCpu.noOptions).toFixed(1)} µs with --pid --no-tcp-options)`,
  ];
}

/**
 * OTLP export from the live agent: paced requests (one keep-alive connection) to a
 * watched server, spans exported over http/protobuf to a collector that answers
 * at once (a separate process). Peer: the same agent and rate with JSON lines only.
 */
async function otlpRates(rates: number[], seconds: number): Promise<string[]> {
  const collectorPort = nextPort++;
  const collector = spawn(
    'node',
    [
      '-e',
      `require('http').createServer((q, r) => { q.resume(); q.on('end', () => { r.writeHead(200, { 'content-type': 'application/x-protobuf' }); r.end(); }); }).listen(${collectorPort}, '127.0.0.1', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await waitFor(collector, 'stdout', /ready/);
  const { port, server } = await startServer('hello');
  const lines = [
    '| requests/s | agent CPU per request, JSON lines only (peer) | agent CPU per request, JSON lines and OTLP | spans exported | spans dropped | agent CPU per request, OTLP sampled at 10% | spans exported, sampled |',
    '|---:|---:|---:|---:|---:|---:|---:|',
  ];
  /** An agent that has seen a second of traffic (its JIT warm) before the measured run. */
  const warmAgent = async (extra: string[], env: Record<string, string>) => {
    const agent = await startAgent([], server.pid, extra, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`, ...env });
    execFileSync(pace, [String(port), String(rates[0]), '1']);
    return agent;
  };
  const sampled = { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' };
  for (const rate of rates) {
    const row: string[] = [rate.toLocaleString('en-US')];
    for (const [extra, env] of [
      [[], {}],
      [['--otlp'], {}],
      [['--otlp'], sampled],
    ] as Array<[string[], Record<string, string>]>) {
      const agent = await warmAgent(extra, env);
      const c0 = cpuMicros(agent.pid);
      execFileSync(pace, [String(port), String(rate), String(seconds)]);
      const used = cpuMicros(agent.pid) - c0;
      await new Promise((r) => setTimeout(r, 500)); // the last exports
      await agent.stop();
      row.push(`${(used / (rate * seconds)).toFixed(1)} µs`);
      const m = /OTLP: (\d+) spans exported, \d+ left out by the sampler, (\d+) dropped/.exec(agent.stderr());
      if (m) row.push(env === sampled ? Number(m[1]).toLocaleString('en-US') : `${Number(m[1]).toLocaleString('en-US')} | ${Number(m[2]).toLocaleString('en-US')}`);
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  server.kill();
  collector.kill();
  return lines;
}

/** The kernel side's price per syscall, watched or not (bench/tools/syscalls), interleaved round by round. */
async function syscallCost(rounds: number): Promise<string[]> {
  const tool = spawn(syscallsTool, ['1000000'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const bystander = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const lines: string[] = [];
  tool.stdout!.setEncoding('utf8');
  tool.stdout!.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  const measure = async (): Promise<number[]> => {
    const before = lines.length;
    tool.stdin!.write('\n');
    while (lines.length === before) await new Promise((r) => setTimeout(r, 20));
    return lines[before]!.split(' ').map(Number);
  };
  await measure(); // warm-up
  const rows: Record<string, number[][]> = { none: [], other: [], watched: [], stopped: [] };
  for (let r = 0; r < rounds; r++) {
    rows.none!.push(await measure());
    let agent = await startAgent([], bystander.pid);
    rows.other!.push(await measure());
    await agent.stop();
    agent = await startAgent([], tool.pid);
    rows.watched!.push(await measure());
    process.kill(agent.pid, 'SIGSTOP');
    // Fill the ring buffer first, so the stopped row is the cost of records the kernel side drops.
    await measure();
    rows.stopped!.push(await measure());
    process.kill(agent.pid, 'SIGCONT');
    await agent.stop();
  }
  tool.stdin!.end();
  bystander.kill();
  const col = (xs: number[][], i: number) => median(xs.map((x) => x[i]!));
  const row = (name: string, xs: number[][]) => {
    const [g, e] = [col(xs, 0), col(xs, 1)];
    const [g0, e0] = [col(rows.none!, 0), col(rows.none!, 1)];
    return xs === rows.none ? `| ${name} | ${g.toFixed(1)} | | ${e.toFixed(0)} | |` : `| ${name} | ${g.toFixed(1)} | ${signed(g - g0)} | ${e.toFixed(0)} | ${signed(e - e0, 0)} |`;
  };
  return [
    '| agent | getppid ns | added | write + read of 100 bytes, ns | added |',
    '|---|---:|---:|---:|---:|',
    row('none (peer)', rows.none!),
    row('loupe run --pid of another process', rows.other!),
    row('loupe run --pid of this one', rows.watched!),
    row('loupe run --pid of this one, agent stopped (ring buffer full)', rows.stopped!),
  ];
}

/**
 * What header injection into a program that is not Go costs: wrk (the client, a C program) watched
 * by --exe, against the hello server, with no propagation and with a traceparent put on every
 * request (sk_msg: the head copied, scanned, the header pushed; a trace_context record more).
 * TCP options off in both, so the difference is the header's. The agent stopped (SIGSTOP) leaves
 * the kernel side alone.
 */
async function injectionCost(rounds: number, seconds: number): Promise<string[]> {
  const { port, server } = await startServer('hello');
  wrk(port, 2); // warm-up
  const select = ['--exe', '/wrk$', '--no-tcp-options'];
  const rows = { plain: [] as WrkResult[], off: [] as WrkResult[], on: [] as WrkResult[], offKernel: [] as WrkResult[], onKernel: [] as WrkResult[] };
  const cpu = { off: [] as number[], on: [] as number[] };
  let inserted = '';
  const run = async (extra: string[], into: WrkResult[], cpuInto: number[]) => {
    const agent = await startAgent([], undefined, [...select, ...extra]);
    const c0 = cpuMicros(agent.pid);
    const result = wrk(port, seconds);
    cpuInto.push((cpuMicros(agent.pid) - c0) / (result.rps * seconds));
    into.push(result);
    await agent.stop();
    return agent.stderr();
  };
  const kernelOnly = async (extra: string[], into: WrkResult[]) => {
    const agent = await startAgent([], undefined, [...select, ...extra]);
    process.kill(agent.pid, 'SIGSTOP');
    into.push(wrk(port, seconds));
    process.kill(agent.pid, 'SIGCONT');
    await agent.stop();
  };
  for (let r = 0; r < rounds; r++) {
    rows.plain.push(wrk(port, seconds));
    await run(['--no-inject'], rows.off, cpu.off);
    inserted = /traceparent put on (\d+) requests/.exec(await run(['--inject-despite-fionread'], rows.on, cpu.on))?.[1] ?? '?';
    await kernelOnly(['--no-inject'], rows.offKernel);
    await kernelOnly(['--inject-despite-fionread'], rows.onKernel);
  }
  server.kill();
  const p = median(rows.plain.map((x) => x.rps));
  const row = (label: string, xs: WrkResult[], perRequest?: number[]) => {
    const rps = median(xs.map((x) => x.rps));
    return `| ${label} | ${Math.round(rps).toLocaleString('en-US')} | ${signed(((rps - p) / p) * 100)}% | ${median(xs.map((x) => x.p50ms)).toFixed(3)} | ${perRequest ? median(perRequest).toFixed(1) : ''} |`;
  };
  return [
    '| wrk -t1 -c8 against a Node http hello server | requests/s | vs no agent | p50 ms | agent CPU µs per request |',
    '|---|---:|---:|---:|---:|',
    row('no agent (peer)', rows.plain),
    row('loupe run --exe /wrk$ --no-tcp-options --no-inject', rows.off, cpu.off),
    row(`the same with --inject-despite-fionread (a header on every request: ${inserted} in the last round)`, rows.on, cpu.on),
    row('--no-inject, the agent stopped (kernel side only)', rows.offKernel),
    row('with injection, the agent stopped (kernel side only)', rows.onKernel),
  ];
}

/** LOUPE_BENCH_PARTS=drain,saturated,steady,api,otlp,kernel,inject (any of them; all by default) runs only those measures; LOUPE_BENCH_RATES=a,b,... the OTLP rates. */
const PARTS = new Set((process.env.LOUPE_BENCH_PARTS ?? 'drain,saturated,steady,api,otlp,kernel,inject').split(','));

async function main(): Promise<void> {
  console.log(`\nLive agent (${os.cpus().length} cores, ${process.version}, kernel ${os.release()})`);
  if (PARTS.has('drain')) {
    console.log('\nLive drain: paced 64-byte writes on loopback into `loupe run`');
    console.log('| target writes/s | writes made | records consumed | records/s consumed | records lost |');
    console.log('|---:|---:|---:|---:|---:|');
    for (const rate of [10_000, 50_000, 100_000, 200_000]) console.log(await drainRate(rate, 4));
  }
  if (PARTS.has('saturated')) {
    console.log('\nInstrumented vs not: wrk -t1 -c8 against a Node HTTP server, 5 rounds of 5 s each, medians');
    for (const line of await overhead(5, 5)) console.log(line);
  }
  if (PARTS.has('steady')) {
    console.log('\nInstrumented vs not at a steady 2,000 requests/s (bench/tools/pace, one keep-alive connection), 5 rounds of 3 s, medians');
    for (const line of await steadyRate(5, 2000, 3)) console.log(line);
  }
  if (PARTS.has('api')) {
    console.log("\nThe same two measures against a server doing a real request's work (bench/tools/api-server.js: 100 records as 8.7 KB of JSON, about 125 µs of CPU a request)");
    console.log('\nwrk -t1 -c8, 5 rounds of 5 s each, medians');
    for (const line of await overhead(5, 5, 'api')) console.log(line);
    console.log('\nA steady 2,000 requests/s (bench/tools/pace), 5 rounds of 3 s, medians');
    for (const line of await steadyRate(5, 2000, 3, 'api')) console.log(line);
  }
  if (PARTS.has('otlp')) {
    console.log(
      '\nOTLP export from the live agent (--pid, http/protobuf to a local collector), paced requests on one connection, 4 s each (a warm-up second before, whose spans count too); the last columns with OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1',
    );
    for (const line of await otlpRates(process.env.LOUPE_BENCH_RATES ? process.env.LOUPE_BENCH_RATES.split(',').map(Number) : [10_000, 20_000, 40_000, 60_000], 4))
      console.log(line);
  }
  if (PARTS.has('kernel')) {
    console.log('\nThe kernel side per syscall (bench/tools/syscalls: best of 5 runs of 10^6 getppid and 10^5 loopback TCP write + read pairs), 5 rounds, medians');
    for (const line of await syscallCost(5)) console.log(line);
  }
  if (PARTS.has('inject')) {
    console.log("\nHeader injection into a program that is not Go: wrk's requests, 5 rounds of 5 s each, medians");
    for (const line of await injectionCost(5, 5)) console.log(line);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

void main();
