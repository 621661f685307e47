/**
 * The live agent on this kernel: real eBPF, real services, real curl. Runs as
 * root where BPF works (CI); elsewhere every test here reports itself skipped
 * with the reason, never a silent pass.
 *
 * The identity test is architecture rule 3: a live run and the replay of its
 * recording give the same spans, byte for byte.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveSupport } from '../src/sources/live/system';
import { freePort, ROOT, tempDir, waitFor } from './helpers';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const SERVICE = path.join(ROOT, 'scenarios/services/factorial.js');

const support = liveSupport();
const curl = spawnSync('curl', ['--version']).status === 0;
const skipReason = !support.ok ? support.reason : !curl ? 'curl is not installed' : '';
if (skipReason) console.warn(`live eBPF tests skipped: ${skipReason}`);

interface SpanLine {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  service: string;
  attributes: Record<string, string | number | boolean>;
}

function exited(child: ChildProcess, ms = 30_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('did not exit')), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function startAgent(args: string[], prefix: string[] = []): { agent: ChildProcess; stderr: () => string } {
  const [cmd, ...rest] = [...prefix, 'node', CLI, ...args];
  const agent = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  agent.stderr!.on('data', (c) => (err += c));
  return { agent, stderr: () => err };
}

/** Programs of ours still attached in the kernel (by their names in bpf/*.bpf.c). */
function attachedLoupePrograms(): string[] {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const ours = new Set(['sys_exit_io', 'sock_set_state', 'process_exec', 'go_serve_http', 'go_newproc1', 'loupe_sockops', 'loupe_inject_tr']);
  return (JSON.parse(r.stdout) as Array<{ name?: string }>).map((p) => p.name ?? '').filter((n) => ours.has(n));
}

describe.skipIf(Boolean(skipReason))(`live eBPF agent${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const dir = tempDir();
  const services: ChildProcess[] = [];
  let frontendPort = 0;
  let backendPort = 0;
  let liveSpans = '';
  let capture = '';
  let agentErr = '';

  /** A node binary under another name, so the exec record names the service. */
  function serviceBinary(name: string): string {
    const link = path.join(dir, name);
    if (!fs.existsSync(link)) fs.symlinkSync(process.execPath, link);
    return link;
  }

  beforeAll(async () => {
    frontendPort = await freePort();
    backendPort = await freePort();
    capture = path.join(dir, 'live.loupe');
    const spansFile = path.join(dir, 'live.jsonl');
    const { agent, stderr } = startAgent([
      'run', '--port', String(frontendPort), '--port', String(backendPort),
      '--format', 'jsonl', '-o', spansFile, '--record', capture,
    ]);
    await waitFor(agent, 'stderr', /attached \d+ programs/);
    const backend = spawn(serviceBinary('backend'), [SERVICE, 'backend', String(backendPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const frontend = spawn(serviceBinary('frontend'), [SERVICE, 'frontend', String(frontendPort), String(backendPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    services.push(backend, frontend);
    await Promise.all([waitFor(backend, 'stdout', /ready/), waitFor(frontend, 'stdout', /ready/)]);
    for (const n of [5, 10, 20]) {
      const r = spawnSync('curl', ['-sS', '-H', 'Authorization: Bearer hunter2', `http://127.0.0.1:${frontendPort}/factorial/${n}?token=s3cret`], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    agent.kill('SIGINT');
    expect(await exited(agent)).toBe(0);
    agentErr = stderr();
    liveSpans = fs.readFileSync(spansFile, 'utf8');
  }, 90_000);

  afterAll(() => {
    for (const s of services) s.kill();
  });

  it('replaying the recording gives the live spans byte for byte', () => {
    const r = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(liveSpans.length).toBeGreaterThan(0);
    expect(r.stdout).toBe(liveSpans);
  });

  it('joins curl -> frontend -> backend into one trace per request, with no header context', () => {
    const spans = liveSpans.trim().split('\n').map((l) => JSON.parse(l) as SpanLine);
    const traces = new Map<string, SpanLine[]>();
    for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    expect(traces.size).toBe(3);
    for (const trace of traces.values()) {
      const shape = (service: string, kind: string) => trace.filter((s) => s.service === service && s.kind === kind);
      const [curlSpan] = shape('curl', 'client');
      const [front] = shape('frontend', 'server');
      const [frontCall] = shape('frontend', 'client');
      const [back] = shape('backend', 'server');
      expect([curlSpan, front, frontCall, back].every(Boolean), JSON.stringify(trace.map((s) => `${s.service} ${s.kind}`))).toBe(true);
      expect(curlSpan!.parentSpanId).toBe('');
      expect(front!.parentSpanId).toBe(curlSpan!.spanId);
      expect(front!.attributes['loupe.context']).toBe('connection-pair');
      expect(frontCall!.parentSpanId).toBe(front!.spanId);
      expect(frontCall!.attributes['loupe.context']).toBe('thread');
      expect(back!.parentSpanId).toBe(frontCall!.spanId);
      expect(back!.attributes['url.path']).toBe('/compute');
      expect(back!.attributes['http.response.status_code']).toBe(200);
      expect(front!.attributes['url.path']).toMatch(/^\/factorial\/(5|10|20)$/);
      expect(front!.attributes['server.port']).toBe(frontendPort);
    }
  });

  it('writes the capture mode 0600 with credentials and query values masked', () => {
    expect(fs.statSync(capture).mode & 0o777).toBe(0o600);
    const bytes = fs.readFileSync(capture).toString('latin1');
    expect(bytes).toContain('GET /factorial/5?token=****** HTTP/1.1');
    expect(bytes).not.toContain('s3cret');
    expect(bytes).not.toContain('hunter2');
    expect(bytes).not.toMatch(/n=(5|10|20) HTTP/); // the backend call's query value too
    // The process table keeps argv[0] only: curl's arguments held the same secrets.
    expect(bytes).not.toContain('Bearer');
  });

  it('reports what it attached and the lockdown mode, and detaches everything on SIGINT', () => {
    expect(agentErr).toMatch(/attached \d+ programs; watching ports/);
    expect(agentErr).toMatch(/kernel lockdown: \w+/);
    expect(agentErr).toMatch(/loupe: \d+ records, \d+ connections, 12 spans, 0 incomplete/);
    expect(attachedLoupePrograms()).toEqual([]);
  });

  it('records with loupe record until --duration, with a progress line, and detaches on SIGTERM too', async () => {
    const out = path.join(dir, 'rec.loupe');
    const { agent, stderr } = startAgent(['record', '-o', out, '--port', String(frontendPort), '--duration', '30']);
    await waitFor(agent, 'stderr', /attached/);
    spawnSync('curl', ['-sS', `http://127.0.0.1:${frontendPort}/factorial/3`]);
    await waitFor(agent, 'stderr', /recording: \d+ records \(\d+\/s\), \d+ lost/, 10_000);
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    expect(stderr()).toMatch(/wrote \d+ records to/);
    expect(attachedLoupePrograms()).toEqual([]);
    const replayed = spawnSync('node', [CLI, 'replay', out, '--format', 'tree', '--quiet'], { encoding: 'utf8' });
    expect(replayed.stdout).toMatch(/curl CLIENT GET http:\/\/127\.0\.0\.1:\d+\/factorial\/3 -> 200/);
    expect(replayed.stdout).toMatch(/frontend SERVER GET \/factorial\/3 -> 200/);
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || !fs.existsSync('/proc/sys/kernel/ns_last_pid'))(
  `live eBPF, a pid reused by another process${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  /** A server under `name` (OTEL_SERVICE_NAME); with `pid`, started only as that pid (the kernel hands out ns_last_pid + 1). */
  async function server(port: number, name: string, pid?: number): Promise<ChildProcess | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (pid !== undefined) fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
      const child = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('${name}\\n')).listen(${port}, '127.0.0.1', () => console.log('ready'))`],
        { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: name } });
      if (pid === undefined || child.pid === pid) {
        await waitFor(child, 'stdout', /ready/);
        return child;
      }
      child.kill(); // another process took the pid first: try again
      await exited(child);
    }
    return undefined;
  }

  it('leaves a valid capture when the recording is killed with SIGKILL: header first, records as they came', async () => {
    const port = await freePort();
    const capture = path.join(tempDir(), 'killed.loupe');
    const { agent } = startAgent(['record', '--port', String(port), '-o', capture]);
    const srv = (await server(port, 'killed'))!;
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      const N = 5;
      for (let i = 0; i < N; i++) expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/k${i}`], { encoding: 'utf8' }).stdout).toBe('killed\n');
      // Each batch's records reach the file as the batch ends: wait until the last answer is there, then kill.
      const answered = () => {
        const r = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
        return r.stdout.split('\n').filter((l) => l.includes('"server"') && l.includes('/k')).length;
      };
      for (let i = 0; i < 400 && answered() < N; i++) await new Promise((r) => setTimeout(r, 50));
      agent.kill('SIGKILL');
      await exited(agent);
      const r = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const servers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as SpanLine).filter((x) => x.kind === 'server');
      expect(servers.map((x) => x.attributes['url.path'])).toEqual(Array.from({ length: N }, (_, i) => `/k${i}`));
      expect(fs.readdirSync(path.dirname(capture))).toEqual(['killed.loupe']); // no spool beside it
    } finally {
      agent.kill('SIGKILL');
      srv.kill();
    }
  }, 60_000);

  it('leaves no program, link or attachment behind when the agent is killed with SIGKILL, and a new agent starts cleanly', async () => {
    /** BPF programs a process holds, by id, from its fds' fdinfo. */
    const heldPrograms = (pid: number) => {
      const ids = new Set<string>();
      for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
        try {
          const id = /^prog_id:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
          if (id) ids.add(id);
        } catch {
          // closed meanwhile
        }
      }
      return ids;
    };
    const loaded = () => {
      const progs = (JSON.parse(spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }).stdout) as Array<{ id: number }>).map((p) => String(p.id));
      const cgroup = spawnSync('bpftool', ['cgroup', 'tree'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]!);
      return new Set([...progs, ...cgroup]);
    };
    const port = await freePort();
    const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl']);
    await waitFor(agent, 'stderr', /attached \d+ programs/);
    const ours = heldPrograms(agent.pid!);
    expect(ours.size).toBeGreaterThanOrEqual(10);
    agent.kill('SIGKILL');
    await exited(agent);
    // The kernel lets go of them as it frees the dead process's fds (a link's release waits out an RCU grace period).
    let left = [...ours].filter((id) => loaded().has(id));
    for (let i = 0; i < 300 && left.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = [...ours].filter((id) => loaded().has(id));
    }
    expect(left).toEqual([]);
    expect(fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('loupe'))).toEqual([]); // nothing pinned
    // A new agent starts and traces, and traffic passes as sent.
    const srv = (await server(port, 'after-kill'))!;
    const { agent: next, stderr } = startAgent(['run', '--port', String(port), '--format', 'jsonl']);
    try {
      await waitFor(next, 'stderr', /attached \d+ programs/);
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/again`], { encoding: 'utf8' }).stdout).toBe('after-kill\n');
      let out = '';
      next.stdout!.on('data', (c) => (out += c));
      for (let i = 0; i < 300 && !out.includes('/again'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"url.path":"/again"');
    } finally {
      next.kill('SIGINT');
      await exited(next);
      srv.kill();
    }
    expect(stderr()).not.toMatch(/error/i);
  }, 90_000);

  it('names each process its own service, live and in the replay', async () => {
    const port = await freePort();
    const dir = tempDir();
    const spansFile = path.join(dir, 'reuse.jsonl');
    const capture = path.join(dir, 'reuse.loupe');
    const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '-o', spansFile, '--record', capture]);
    let second: ChildProcess | undefined;
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      const first = (await server(port, 'first'))!;
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/one`], { encoding: 'utf8' }).stdout).toBe('first\n');
      // The agent reads /proc when it meets a process's first record: give it time to, while `first` still runs.
      await new Promise((r) => setTimeout(r, 300));
      first.kill();
      await exited(first);
      second = await server(port, 'second', first.pid);
      expect(second, `no new process got pid ${first.pid}`).toBeDefined();
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/two`], { encoding: 'utf8' }).stdout).toBe('second\n');
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      agent.kill('SIGINT');
      second?.kill();
    }
    expect(await exited(agent)).toBe(0);
    const live = fs.readFileSync(spansFile, 'utf8');
    const servers = live.trim().split('\n').map((l) => JSON.parse(l) as SpanLine & { pid: number }).filter((x) => x.kind === 'server');
    expect(servers.map((x) => [x.attributes['url.path'], x.service])).toEqual([['/one', 'first'], ['/two', 'second']]);
    expect(servers[0]!.pid).toBe(servers[1]!.pid);
    const replay = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(replay.status, replay.stderr).toBe(0);
    expect(replay.stdout).toBe(live);
  }, 60_000);

  it('does not take the next process for the first when the pid was reused before the agent read /proc', async () => {
    const port = await freePort();
    const spansFile = path.join(tempDir(), 'late.jsonl');
    const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '-o', spansFile]);
    let second: ChildProcess | undefined;
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      const first = (await server(port, 'first'))!;
      // The agent falls behind (stopped): its records wait in the ring buffer while the pid changes hands.
      process.kill(agent.pid!, 'SIGSTOP');
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/one`], { encoding: 'utf8' }).stdout).toBe('first\n');
      first.kill();
      await exited(first);
      // /proc dates a start to the 10 ms tick: a process started within a tick of the record cannot be told apart.
      await new Promise((r) => setTimeout(r, 50));
      second = await server(port, 'second', first.pid);
      expect(second, `no new process got pid ${first.pid}`).toBeDefined();
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/two`], { encoding: 'utf8' }).stdout).toBe('second\n');
    } finally {
      process.kill(agent.pid!, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 300));
    agent.kill('SIGINT');
    second?.kill();
    expect(await exited(agent)).toBe(0);
    const servers = fs.readFileSync(spansFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SpanLine).filter((x) => x.kind === 'server');
    expect(servers.map((x) => x.attributes['url.path'])).toEqual(['/one', '/two']);
    // /proc had only the second process by then: the first is named by its exec record, not as the second.
    expect(servers[0]!.service).toBe('node');
    expect(servers[1]!.service).toBe('second');
  }, 60_000);
});

describe.skipIf(Boolean(skipReason))(`live eBPF, spans to a file${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('writes -o as spans come, not all at the end (an agent runs for days)', async () => {
    const port = await freePort();
    const spansFile = path.join(tempDir(), 'streamed.jsonl');
    const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '-o', spansFile]);
    try {
      await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached \d+ programs/)]);
      for (const n of [1, 2, 3]) expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/n/${n}`]).status).toBe(0);
      const servedInFile = () => (fs.existsSync(spansFile) ? fs.readFileSync(spansFile, 'utf8').split('\n').filter((l) => l.includes('"kind":"server"')).length : 0);
      for (let i = 0; i < 50 && servedInFile() < 3; i++) await new Promise((r) => setTimeout(r, 100));
      expect(agent.exitCode, 'the agent is still running').toBeNull();
      expect(servedInFile()).toBe(3);
    } finally {
      agent.kill('SIGINT');
      server.kill();
    }
    expect(await exited(agent)).toBe(0);
    expect(fs.readFileSync(spansFile, 'utf8').trim().split('\n')).toHaveLength(6); // curl's three and the server's
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('gcc', ['--version']).status !== 0)(`live eBPF, the ring buffer${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('wakes the drain thread before a small ring buffer overflows: --ring-mb 1 takes 10 MB/s without loss', async () => {
    // The drain thread polls every 200 ms; 10 MB/s fills 1 MiB in 100 ms, so only the early wakeup saves it.
    const dir = tempDir();
    const blast = path.join(dir, 'blast');
    execFileSync('gcc', ['-O2', '-pthread', '-o', blast, path.join(ROOT, 'bench/tools/blast.c')]);
    const port = await freePort();
    // Copies of 4096 bytes: each write one record, and the reader's large reads cut to one too (10 MB/s through the ring, not 20).
    // At a raised priority, as an agent is run: what is tested is the early wakeup, not how soon a loaded
    // scheduler (make stress: stress-ng on every CPU) runs an ordinary thread — there it lost records.
    const { agent, stderr } = startAgent(['record', '-o', path.join(dir, 'burst.loupe'), '--ring-mb', '1', '--max-payload', '4096', '--port', String(port)], ['nice', '-n', '-15']);
    await waitFor(agent, 'stderr', /attached \d+ programs/);
    const writes = Number(execFileSync(blast, [String(port), '2500', '2', '4000'], { encoding: 'utf8' }).trim());
    await new Promise((r) => setTimeout(r, 500));
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    expect(writes).toBeGreaterThan(4000);
    expect(stderr()).not.toMatch(/[1-9]\d* lost|lost by the kernel side/);
    const records = Number(/wrote (\d+) records/.exec(stderr())?.[1]);
    expect(records).toBeGreaterThan(writes); // each write a record, and the reader's reads
  }, 60_000);
});

describe.skipIf(Boolean(skipReason))(`live eBPF, output as it comes${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('writes OTLP JSON as a request line each second of what ended, not one document at the end', async () => {
    const port = await freePort();
    const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { agent } = startAgent(['run', '--port', String(port), '--format', 'otlp-json']);
    let out = '';
    agent.stdout!.on('data', (c) => (out += c));
    type Request = { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; kind: number; attributes: Array<{ key: string; value: { stringValue?: string } }> }> }> }> };
    const spansOf = (line: string) => (JSON.parse(line) as Request).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    const paths = (text: string) => text.trim().split('\n').filter(Boolean).flatMap(spansOf)
      .flatMap((s) => s.attributes.filter((a) => a.key === 'url.path' || a.key === 'url.full').map((a) => new URL(a.value.stringValue!, 'http://x').pathname));
    try {
      await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached \d+ programs/)]);
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/first`]).status).toBe(0);
      for (let i = 0; i < 30 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(agent.exitCode, 'the agent is still running').toBeNull();
      expect(paths(out)).toEqual(['/first', '/first']); // curl's span and the server's
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/second`]).status).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      agent.kill('SIGINT');
      server.kill();
    }
    expect(await exited(agent)).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.length, 'a line per flush').toBe(2);
    expect(paths(out)).toEqual(['/first', '/first', '/second', '/second']);
  }, 60_000);

  it('prints a trace\'s tree once it has been quiet 2 s, while running and with nothing else happening', async () => {
    const port = await freePort();
    const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { agent } = startAgent(['run', '--port', String(port)]); // the default format: tree
    let out = '';
    agent.stdout!.on('data', (c) => (out += c));
    try {
      await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached \d+ programs/)]);
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/quiet/1`]).status).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
      expect(out, 'not before it has been quiet 2 s').toBe('');
      for (let i = 0; i < 300 && !out.includes('/quiet/1'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(agent.exitCode, 'the agent is still running').toBeNull();
      expect(out).toMatch(/^trace [0-9a-f]{32} {2}2 spans/);
      expect(out).toContain(`curl CLIENT GET http://127.0.0.1:${port}/quiet/1 -> 200`);
      expect(out).toContain('node SERVER GET /quiet/1 -> 200');
    } finally {
      agent.kill('SIGINT');
      server.kill();
    }
    expect(await exited(agent)).toBe(0);
    expect(out.match(/^trace /gm), 'printed once').toHaveLength(1);
  }, 60_000);
});

describe.skipIf(Boolean(skipReason))(`live eBPF, --open-port${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('watches the processes listening on the ports named, those that start listening later too, and no others', async () => {
    const [early, late, other] = [await freePort(), await freePort(), await freePort()];
    const serve = (port: number, name: string) => spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('${name}')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const servers = [serve(early, 'early'), serve(other, 'other')];
    await Promise.all(servers.map((s) => waitFor(s, 'stdout', /ready/)));
    const { agent, stderr } = startAgent(['run', '--open-port', String(early), '--open-port', String(late), '--format', 'jsonl']);
    let out = '';
    agent.stdout!.on('data', (c) => (out += c));
    const get = (port: number, what: string) => expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/${what}`]).status).toBe(0);
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      expect(stderr()).toContain(`watching processes listening on ${early},${late}; `);
      get(early, 'early/1');
      get(other, 'other/1');
      const lateServer = serve(late, 'late');
      servers.push(lateServer);
      await waitFor(lateServer, 'stdout', /ready/);
      await new Promise((r) => setTimeout(r, 2500)); // the agent looks again every 2 s
      get(late, 'late/1');
      get(early, 'early/2');
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      agent.kill('SIGINT');
      for (const s of servers) s.kill();
    }
    expect(await exited(agent)).toBe(0);
    const spans = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as SpanLine);
    expect(spans.map((s) => `${s.kind} ${s.attributes['url.path']}`)).toEqual(['server /early/1', 'server /late/1', 'server /early/2']);
  }, 60_000);
});

describe.skipIf(Boolean(skipReason))(`live eBPF, the agent's CPUs${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  /** Cpus_allowed_list of each thread of a process. */
  const threadCpus = (pid: number) => fs.readdirSync(`/proc/${pid}/task`).map((tid) => /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1]);
  const online = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  const lastCpu = String(Math.max(...online.split(',').map((r) => Number(r.split('-').pop()))));

  it('keeps every thread on the CPUs --cpus names, and still traces', async () => {
    const port = await freePort();
    const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { agent, stderr } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '--cpus', lastCpu]);
    let spans = '';
    agent.stdout!.on('data', (c) => (spans += c));
    const out = () => spans;
    try {
      await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached \d+ programs/)]);
      const cpus = threadCpus(agent.pid!);
      expect(cpus.length).toBeGreaterThan(3); // V8's helpers and the drain thread, made before and after the pinning
      expect(new Set(cpus)).toEqual(new Set([lastCpu]));
      expect(stderr()).toContain(`watching ports ${port}; the agent on CPU ${lastCpu}; `);
      expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/pinned`]).status).toBe(0);
      for (let i = 0; i < 50 && !out().includes('/pinned'); i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      agent.kill('SIGINT');
      server.kill();
    }
    expect(await exited(agent)).toBe(0);
    expect(out().split('\n').filter((l) => l.includes('"kind":"server"') && l.includes('/pinned'))).toHaveLength(1);
  }, 60_000);

  const cpusetV1 = '/sys/fs/cgroup/cpuset';
  const noCpuset = lastCpu === '0' ? 'one CPU only' : !fs.existsSync(path.join(cpusetV1, 'cpuset.cpus')) ? `no cgroup v1 cpuset at ${cpusetV1}` : '';
  it.skipIf(Boolean(noCpuset))(
    `says why when the CPUs named are not allowed to it (a cpuset), and exits 3${noCpuset ? ` (skipped: ${noCpuset})` : ''}`, async () => {
      const dir = path.join(cpusetV1, `loupe-test-${process.pid}`);
      fs.mkdirSync(dir);
      try {
        fs.writeFileSync(path.join(dir, 'cpuset.mems'), fs.readFileSync(path.join(cpusetV1, 'cpuset.mems')));
        fs.writeFileSync(path.join(dir, 'cpuset.cpus'), '0');
        const r = spawnSync('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec node ${CLI} run --cpus ${lastCpu} --duration 1`], { encoding: 'utf8' });
        expect(r.stderr).toMatch(/cannot run here: cannot pin the agent's threads: none of those CPUs is allowed to it \(a cgroup cpuset\?\)/);
        expect(r.status).toBe(3);
      } finally {
        fs.rmdirSync(dir);
      }
    }, 60_000);

  it('leaves the threads where the scheduler puts them without --cpus', async () => {
    const { agent } = startAgent(['run', '--port', String(await freePort()), '--format', 'jsonl']);
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      expect(new Set(threadCpus(agent.pid!))).toEqual(new Set([online]));
    } finally {
      agent.kill('SIGINT');
    }
    expect(await exited(agent)).toBe(0);
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('python3', ['--version']).status !== 0)(
  `live eBPF, closes and reused fd numbers${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('reports each close with its own socket, also when the next socket gets the same fd', async () => {
      // Python hands out the lowest free fd, so the second connection's two sockets get the first's numbers.
      const child = spawn('python3', ['-c', `
import json, socket, sys
sys.stdin.readline()
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
fds = []
for n in range(2):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    client.sendall(b'ping %d' % n); server.recv(16)
    fds.append((client.fileno(), server.fileno()))
    client.close(); server.close()
print(json.dumps(fds), flush=True)
`], { stdio: ['pipe', 'pipe', 'inherit'] });
      const capture = path.join(tempDir(), 'closes.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(child.pid)]);
      let fds: number[][] = [];
      try {
        await waitFor(agent, 'stderr', /attached/);
        child.stdin!.write('go\n');
        const printed = await waitFor(child, 'stdout', /\]\]/);
        fds = JSON.parse(printed) as number[][];
        expect(fds[0], 'the second connection reuses the first one\'s fds').toEqual(fds[1]);
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        agent.kill('SIGINT');
        child.kill();
      }
      expect(await exited(agent)).toBe(0);
      const converted = path.join(tempDir(), 'closes.jsonl');
      expect(spawnSync('node', [CLI, 'convert', capture, converted]).status).toBe(0);
      type Rec = { type: string; pid: number; fd: number; role?: string; cookie: string };
      const records = fs.readFileSync(converted, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as Rec)
        .filter((r) => r.pid === child.pid && ['sock_open', 'sock_close', 'data'].includes(r.type));
      expect(records.filter((r) => r.type === 'sock_open').map((r) => r.role)).toEqual(['client', 'server', 'client', 'server']);
      // Per fd: opened, its data, closed, and again for the next socket on the number. (A cookie
      // names a kernel socket while it lives: the second pair may well reuse the first one's memory.)
      for (const fd of fds[0]!) {
        const own = records.filter((r) => r.fd === fd);
        const shape = own.map((r) => r.type).filter((t, i, all) => t !== 'data' || all[i - 1] !== 'data');
        expect(shape).toEqual(['sock_open', 'data', 'sock_close', 'sock_open', 'data', 'sock_close']);
        let openCookie = '';
        for (const r of own) {
          if (r.type === 'sock_open') openCookie = r.cookie;
          else expect(r.cookie, `${r.type} of fd ${fd}: the cookie of the socket opened last on it`).toBe(openCookie);
        }
      }
    }, 60_000);
  },
);

describe.skipIf(Boolean(skipReason) || spawnSync('python3', ['--version']).status !== 0)(
  `live eBPF, the kernel side's pid filter${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    type Rec = { type: string; pid: number; dir?: string; data?: string; dataB64?: string; cookie?: string };
    /** The records of a capture, through its JSONL form. */
    const recordsOf = (capture: string): Rec[] => {
      const converted = `${capture}.jsonl`;
      expect(spawnSync('node', [CLI, 'convert', capture, converted]).status).toBe(0);
      return fs.readFileSync(converted, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as Rec);
    };
    const payloads = (records: Rec[], pid: number, dir: string) => records.filter((r) => r.type === 'data' && r.pid === pid && r.dir === dir).map((r) => r.data ?? Buffer.from(r.dataB64!, 'base64').toString());
    /** Python lines: take two connections on `listener`, read each, then print done. */
    const ACCEPT_TWO_THEN_DONE = ['for _ in range(2):', '    conn, _ = listener.accept()', '    conn.recv(64); conn.close()', "print('done', flush=True)"].join('\n');
    /** A Python listener on a free port that takes `count` connections, reads each, then prints done. */
    const listenerTaking = async (count: number) => {
      const listener = spawn('python3', ['-c', `
import socket, sys
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
print(listener.getsockname()[1], flush=True)
${ACCEPT_TWO_THEN_DONE.replace('range(2)', `range(${count})`)}
`], { stdio: ['ignore', 'pipe', 'inherit'] });
      return { listener, port: Number((await waitFor(listener, 'stdout', /\d+\n/)).trim()) };
    };
    /** python3 under another name, in `dir`: its exec record names it so. */
    const pythonNamed = (dir: string, name: string) => {
      const link = path.join(dir, name);
      fs.symlinkSync(spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim(), link);
      return link;
    };
    // Waits for a line, then sends `message` to PORT and prints its pid when done (and with `stay`, exits at the next line).
    const sender = (python: string, port: number, message: string, env: NodeJS.ProcessEnv = process.env, stay = false) => spawn(python, ['-c', `
import os, socket, sys
sys.stdin.readline()
with socket.create_connection(('127.0.0.1', ${port})) as s:
    s.sendall(b'${message}')
print(os.getpid(), flush=True)
${stay ? 'sys.stdin.readline()' : ''}
`], { stdio: ['pipe', 'pipe', 'inherit'], env });

    it('watches the children a watched process forks, and no other process', async () => {
      // The watched parent listens and forks a child that connects; a stranger connects too.
      const parent = spawn('python3', ['-c', `
import os, socket, sys
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
print(listener.getsockname()[1], flush=True)
sys.stdin.readline()
if os.fork() == 0:
    with socket.create_connection(listener.getsockname()) as s:
        s.sendall(b'from the child')
    os._exit(0)
${ACCEPT_TWO_THEN_DONE}
`], { stdio: ['pipe', 'pipe', 'inherit'] });
      const port = Number((await waitFor(parent, 'stdout', /\d+\n/)).trim());
      const stranger = sender('python3', port, 'from a stranger');
      const capture = path.join(tempDir(), 'filter.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(parent.pid)]);
      let strangerPid = 0;
      try {
        await waitFor(agent, 'stderr', /attached/);
        const done = waitFor(parent, 'stdout', /done/);
        const strangerDone = waitFor(stranger, 'stdout', /\d+\n/);
        parent.stdin!.write('go\n');
        stranger.stdin!.write('go\n');
        strangerPid = Number((await strangerDone).trim());
        await done;
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        agent.kill('SIGINT');
        parent.kill();
        stranger.kill();
      }
      expect(await exited(agent)).toBe(0);
      const records = recordsOf(capture);
      expect(payloads(records, parent.pid!, 'ingress').sort()).toEqual(['from a stranger', 'from the child']);
      const childPids = new Set(records.filter((r) => r.type === 'data' && r.dir === 'egress' && r.pid !== parent.pid).map((r) => r.pid));
      expect(childPids.size, 'one forked child wrote').toBe(1);
      expect(payloads(records, [...childPids][0]!, 'egress')).toEqual(['from the child']);
      // tcp_state records carry whichever process was on the CPU when a watched socket changed state (on loopback, often the peer): not counted.
      expect(records.filter((r) => r.pid === strangerPid && r.type !== 'tcp_state'), 'nothing of the stranger').toEqual([]);
    }, 60_000);

    it('catches short-lived programs by --exe though they connect before the agent decides, and drops those it does not choose', async () => {
      const port = await freePort();
      const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const dir = tempDir();
      const spansFile = path.join(dir, 'curl.jsonl');
      // curl under another name, which /curl$ does not match.
      const kurl = path.join(dir, 'kurl');
      fs.symlinkSync(spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim(), kurl);
      const capture = path.join(dir, 'curl.loupe');
      const { agent } = startAgent(['run', '--exe', '/curl$', '--format', 'jsonl', '-o', spansFile, '--record', capture]);
      const get = (program: string, what: string) => expect(spawnSync(program, ['-sS', `http://127.0.0.1:${port}/${what}`]).status).toBe(0);
      try {
        await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached/)]);
        await new Promise((r) => setTimeout(r, 300));
        // The agent stopped: it decides on these execs only after the programs are gone. The kernel side
        // watched them as pending meanwhile; the agent keeps curl's records and drops kurl's.
        process.kill(agent.pid!, 'SIGSTOP');
        try {
          for (let n = 1; n <= 4; n++) {
            get('curl', `n/${n}`);
            get(kurl, `k/${n}`);
          }
        } finally {
          process.kill(agent.pid!, 'SIGCONT');
        }
        // Running: the exec record wakes the agent, which decides within ms; curl is pending until then.
        for (let n = 5; n <= 8; n++) {
          get('curl', `n/${n}`);
          get(kurl, `k/${n}`);
        }
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        agent.kill('SIGINT');
        server.kill();
      }
      expect(await exited(agent)).toBe(0);
      const spans = fs.readFileSync(spansFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SpanLine);
      const urls = (service: string) => spans.filter((s) => s.kind === 'client' && s.service === service).map((s) => s.attributes['url.full'] as string);
      expect(urls('curl')).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => `http://127.0.0.1:${port}/n/${n}`));
      expect(spans.filter((s) => JSON.stringify(s).includes('/k/')), 'nothing of kurl').toEqual([]);
      expect(spans.filter((s) => s.kind === 'server'), 'the server is not selected').toEqual([]);
      // Nor in the capture: kurl's sockets' TCP state changes (made in softirq, under any pid) go with the rest.
      const records = recordsOf(capture);
      const opened = new Set(records.filter((r) => r.type === 'sock_open').map((r) => r.cookie));
      expect(opened.size, 'curl\'s sockets (eight, but a cookie repeats when the kernel reuses a socket\'s memory)').toBeGreaterThan(0);
      const states = records.filter((r) => r.type === 'tcp_state');
      expect(states.length).toBeGreaterThan(0);
      expect(states.filter((r) => !opened.has(r.cookie)), 'state changes of sockets not in the capture').toEqual([]);
    }, 60_000);

    it('watches what a program --exe chooses forked before the agent decided', async () => {
      const dir = tempDir();
      const python = pythonNamed(dir, 'loupe-exe-forker');
      const { listener, port } = await listenerTaking(1);
      const capture = path.join(dir, 'forker.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--exe', 'loupe-exe-forker$']);
      let forker: ChildProcess | undefined;
      let childPid = 0;
      try {
        await waitFor(agent, 'stderr', /attached/);
        await new Promise((r) => setTimeout(r, 300));
        // The agent stopped: the program forks while it is pending, before the agent has chosen it.
        process.kill(agent.pid!, 'SIGSTOP');
        try {
          forker = spawn(python, ['-c', `
import os, socket, sys
child = os.fork()
if child == 0:
    sys.stdin.readline()
    with socket.create_connection(('127.0.0.1', ${port})) as s:
        s.sendall(b'from the child')
    os._exit(0)
print(child, flush=True)
os.waitpid(child, 0)
`], { stdio: ['pipe', 'pipe', 'inherit'] });
          childPid = Number((await waitFor(forker, 'stdout', /\d+\n/)).trim());
        } finally {
          process.kill(agent.pid!, 'SIGCONT');
        }
        await new Promise((r) => setTimeout(r, 300)); // the agent decides on the exec
        const done = waitFor(listener, 'stdout', /done/);
        forker.stdin!.write('go\n');
        await done;
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        agent.kill('SIGINT');
        for (const c of [listener, forker]) c?.kill();
      }
      expect(await exited(agent)).toBe(0);
      expect(payloads(recordsOf(capture), childPid, 'egress')).toEqual(['from the child']);
    }, 60_000);

    it('decides on a program --exe watched as pending whose exec record was lost (a full ring buffer), from /proc', async () => {
      const dir = tempDir();
      const blast = path.join(dir, 'loupe-lost-blast');
      execFileSync('gcc', ['-O2', '-pthread', '-o', blast, path.join(ROOT, 'bench/tools/blast.c')]);
      const matching = pythonNamed(dir, 'loupe-lost-match');
      const { listener, port } = await listenerTaking(2);
      const capture = path.join(dir, 'lost.loupe');
      const { agent, stderr } = startAgent(['record', '-o', capture, '--ring-mb', '1', '--exe', 'loupe-lost-(blast|match)$']);
      let matched: ChildProcess | undefined;
      let other: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached/);
        await new Promise((r) => setTimeout(r, 300));
        // The agent stopped, a chosen program fills the 1 MiB ring buffer: the two execs after it are lost.
        process.kill(agent.pid!, 'SIGSTOP');
        try {
          execFileSync(blast, [String(await freePort()), '2500', '1', '4000']);
          // Each stays until told to go: deciding without the exec record, the agent reads /proc.
          matched = sender(matching, port, 'matched', process.env, true);
          other = sender('python3', port, 'not matched', process.env, true);
          await new Promise((r) => setTimeout(r, 300)); // both exec'd
        } finally {
          process.kill(agent.pid!, 'SIGCONT');
        }
        await new Promise((r) => setTimeout(r, 600)); // the agent empties the ring buffer
        const done = waitFor(listener, 'stdout', /done/);
        for (const c of [matched, other]) c!.stdin!.write('go\n');
        await done;
        await new Promise((r) => setTimeout(r, 600)); // the agent decides on their records
        for (const c of [matched, other]) c!.stdin!.end('exit\n');
      } finally {
        agent.kill('SIGINT');
        for (const c of [listener, matched, other]) c?.kill();
      }
      expect(await exited(agent)).toBe(0);
      expect(stderr()).toMatch(/\d+ records lost by the kernel side/);
      const records = recordsOf(capture);
      expect(records.filter((r) => r.type === 'proc_exec' && (r.pid === matched!.pid || r.pid === other!.pid)), 'their exec records were lost').toEqual([]);
      expect(payloads(records, matched!.pid!, 'egress')).toEqual(['matched']);
      // A loss record, like tcp_state, carries whichever process made the next record that fitted.
      expect(records.filter((r) => r.pid === other!.pid && r.type !== 'tcp_state' && r.type !== 'loss'), 'nothing of the program not chosen').toEqual([]);
    }, 60_000);

    it('adds a process whose executable matches --exe when it starts, and not one that does not', async () => {
      const dir = tempDir();
      const python = pythonNamed(dir, 'loupe-exe-match');
      const { listener, port } = await listenerTaking(2);
      const capture = path.join(dir, 'exe.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--exe', 'loupe-exe-match$']);
      let matched: ChildProcess | undefined;
      let other: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached/);
        // Started after the agent: their exec is what --exe is decided on.
        matched = sender(python, port, 'matched');
        other = sender('python3', port, 'not matched');
        const done = waitFor(listener, 'stdout', /done/);
        for (const c of [matched, other]) c.stdin!.write('go\n');
        await done;
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        agent.kill('SIGINT');
        for (const c of [listener, matched, other]) c?.kill();
      }
      expect(await exited(agent)).toBe(0);
      const records = recordsOf(capture);
      expect(payloads(records, matched.pid!, 'egress')).toEqual(['matched']);
      expect(records.filter((r) => r.pid === other!.pid && r.type === 'data'), 'nothing of the other process').toEqual([]);
      expect(records.filter((r) => r.pid === listener.pid && r.type === 'data'), 'nor of the listener, started before').toEqual([]);
    }, 60_000);
  },
);

describe.skipIf(Boolean(skipReason))(`live eBPF, connections opened before the agent${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('learns their 4-tuples at first use, so connection pairs still join the trace', async () => {
    const frontendPort = await freePort();
    const backendPort = await freePort();
    const backend = spawn(process.execPath, [SERVICE, 'backend', String(backendPort)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: 'backend' } });
    const frontend = spawn(process.execPath, [SERVICE, 'frontend', String(frontendPort), String(backendPort)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: 'frontend' } });
    let client: ChildProcess | undefined;
    try {
      await Promise.all([waitFor(backend, 'stdout', /ready/), waitFor(frontend, 'stdout', /ready/)]);
      // A keep-alive client, started once both listen: one request before the agent starts, two after, on the same socket.
      client = spawn(process.execPath, ['-e', `
        const http = require('http');
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const get = (n) => new Promise((r) => http.get({ port: ${frontendPort}, host: '127.0.0.1', path: '/factorial/' + n, agent }, (res) => { res.resume(); res.on('end', r); }));
        (async () => {
          await get(3);
          console.log('warm');
          process.stdin.once('data', async () => { await get(4); await get(5); console.log('done'); agent.destroy(); });
        })();`], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: 'client' } });
      await waitFor(client, 'stdout', /warm/);
      const dir = tempDir();
      const spansFile = path.join(dir, 'old.jsonl');
      const { agent } = startAgent(['run', '--port', String(frontendPort), '--port', String(backendPort), '--format', 'jsonl', '-o', spansFile]);
      await waitFor(agent, 'stderr', /attached/);
      client.stdin!.write('go\n');
      await waitFor(client, 'stdout', /done/);
      await new Promise((r) => setTimeout(r, 200));
      agent.kill('SIGINT');
      expect(await exited(agent)).toBe(0);
      const spans = fs.readFileSync(spansFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SpanLine);
      const servers = spans.filter((s) => s.service === 'frontend' && s.kind === 'server');
      expect(servers.map((s) => s.attributes['url.path']).sort()).toEqual(['/factorial/4', '/factorial/5']);
      for (const server of servers) {
        const parent = spans.find((s) => s.spanId === server.parentSpanId);
        expect(parent, 'the client span that sent it').toMatchObject({ service: 'client', kind: 'client' });
        expect(server.attributes['loupe.context']).toBe('connection-pair');
        expect(server.attributes['loupe.mid_stream']).toBe(true);
        const call = spans.find((s) => s.parentSpanId === server.spanId && s.kind === 'client')!;
        const back = spans.find((s) => s.parentSpanId === call.spanId)!;
        expect(back).toMatchObject({ service: 'backend', kind: 'server' });
      }
    } finally {
      for (const c of [client, frontend, backend]) c?.kill();
    }
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('openssl', ['version']).status !== 0)(
  `live HTTPS through OpenSSL uprobes${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
    it('reads curl\'s HTTPS plaintext from SSL_write/SSL_read and reports no ciphertext', async () => {
      const dir = tempDir();
      const key = path.join(dir, 'key.pem');
      const cert = path.join(dir, 'cert.pem');
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1']);
      expect(made.status, made.stderr?.toString()).toBe(0);
      const port = await freePort();
      const server = spawn(process.execPath, ['-e', `
        const fs = require('fs');
        require('https').createServer({ key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) },
          (req, res) => res.end('secure ' + req.url)).listen(${port}, '127.0.0.1', () => console.log('ready'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await waitFor(server, 'stdout', /ready/);
        const capture = path.join(dir, 'tls.loupe');
        const { agent, stderr } = startAgent(['record', '-o', capture, '--port', String(port), '--quiet']);
        await waitFor(agent, 'stderr', /attached/);
        expect(stderr()).toMatch(/TLS plaintext: \S*libssl/);
        const r = spawnSync('curl', ['-sSk', '-H', 'Authorization: Bearer tls-bearer-secret', `https://127.0.0.1:${port}/secret/path?token=tls-query-secret`], { encoding: 'utf8' });
        expect(r.stdout).toBe('secure /secret/path?token=tls-query-secret');
        agent.kill('SIGINT');
        expect(await exited(agent)).toBe(0);
        // Every masking rule holds for TLS plaintext as for a plain socket: the capture keeps neither secret.
        const bytes = fs.readFileSync(capture, 'latin1');
        expect(bytes).not.toContain('tls-bearer-secret');
        expect(bytes).not.toContain('/secret/path?token=tls-query-secret HTTP/1.1'); // the body echoes the URL: that is data, not a request
        const tree = spawnSync('node', [CLI, 'replay', capture, '--format', 'tree', '--quiet'], { encoding: 'utf8' }).stdout;
        expect(tree).toMatch(new RegExp(`curl CLIENT GET https://127\\.0\\.0\\.1:${port}/secret/path\\?token=REDACTED -> 200`));
        const parsed = spawnSync('node', [CLI, 'parse', capture, '--quiet'], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => JSON.parse(l));
        // The client side is read in plaintext; the Node server (its own OpenSSL) only as TLS.
        expect(parsed.filter((m) => m.protocol === 'http1').map((m) => `${m.kind} ${m.method ?? m.status}`)).toEqual(['request GET', 'response 200']);
      } finally {
        server.kill();
      }
    }, 60_000);
  });

describe.skipIf(Boolean(skipReason) || spawnSync('openssl', ['version']).status !== 0)(
  `live HTTPS through a libssl of a program's own${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
    it('finds an OpenSSL library a program loads from elsewhere, and reads its plaintext too', async () => {
      const dir = tempDir();
      const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
      expect(spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1']).status).toBe(0);
      // A copy of the system libssl in a folder of the program's own: another file, which the start-up probes do not cover.
      const system = spawnSync('sh', ['-c', 'ldd "$(command -v openssl)" | sed -n "s/.*libssl[^ ]* => \\([^ ]*\\).*/\\1/p"'], { encoding: 'utf8' }).stdout.trim();
      const own = path.join(dir, 'lib');
      fs.mkdirSync(own);
      fs.copyFileSync(system, path.join(own, path.basename(system)));
      const port = await freePort();
      const server = spawn(process.execPath, ['-e', `
        const fs = require('fs');
        require('https').createServer({ key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) },
          (req, res) => res.end('secure ' + req.url)).listen(${port}, '127.0.0.1', () => console.log('ready'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const capture = path.join(dir, 'own-ssl.loupe');
      const { agent, stderr } = startAgent(['record', '-o', capture, '--port', String(port)]);
      let client: ChildProcess | undefined;
      try {
        await waitFor(server, 'stdout', /ready/);
        await waitFor(agent, 'stderr', /attached/);
        // s_client handshakes at once, then sends what comes on stdin through SSL_write.
        client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-quiet'], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, LD_LIBRARY_PATH: own } });
        await waitFor(agent, 'stderr', new RegExp(`TLS plaintext also from ${own.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/libssl`));
        client.stdin!.write('GET /own/ssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        await waitFor(client, 'stdout', /secure \/own\/ssl/);
        client.stdin!.end();
        await new Promise((r) => setTimeout(r, 300));
        agent.kill('SIGINT');
        expect(await exited(agent)).toBe(0);
        const tree = spawnSync('node', [CLI, 'replay', capture, '--format', 'tree', '--quiet'], { encoding: 'utf8' }).stdout;
        expect(tree, stderr()).toMatch(new RegExp(`openssl CLIENT GET https://localhost(:\\d+)?/own/ssl -> 200`));
      } finally {
        client?.kill();
        server.kill();
        agent.kill();
      }
    }, 60_000);
  });

describe('live agent refusals', () => {
  it.skipIf(process.getuid?.() !== 0 || spawnSync('runuser', ['--help']).status !== 0)(
    'exits 3 naming the missing privilege when not root', () => {
      const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, 'run', '--duration', '1'], { encoding: 'utf8' });
      expect(r.stderr).toMatch(/cannot run here: live capture needs root/);
      expect(r.status).toBe(3);
    });

  it('rejects bad live options with exit 2', () => {
    for (const args of [['record'], ['run', '--port', '70000'], ['run', '--ring-mb', '3'], ['run', '--exe', '('], ['run', '--cpus', 'x'], ['run', '--cpus', '3-1']]) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
    }
    // Junk OTLP settings: refused before a program is attached, and the agent exits (it used to print and hang).
    for (const [name, value] of [['OTEL_TRACES_SAMPLER', 'junk'], ['OTEL_EXPORTER_OTLP_PROTOCOL', 'junk'], ['OTEL_EXPORTER_OTLP_ENDPOINT', 'localhost:4318'], ['OTEL_EXPORTER_OTLP_TIMEOUT', '5s']] as const) {
      for (const command of [['run', '--otlp', '--duration', '30'], ['record', '--otlp', '-o', path.join(tempDir(), 'x.loupe'), '--duration', '30'], ['replay', path.join(ROOT, 'captures/factorial.loupe'), '--otlp']]) {
        const r = spawnSync('node', [CLI, ...command], { encoding: 'utf8', env: { ...process.env, [name]: value }, timeout: 20_000 });
        expect({ status: r.status, signal: r.signal }, `${name}=${value} ${command[0]}: ${r.stderr}`).toEqual({ status: 2, signal: null });
        expect(r.stderr).toContain(name);
        expect(r.stderr).not.toMatch(/attached \d+ programs/);
      }
    }
    // A symbolic link planted at a recording's or output's name: refused before anything starts, what it names untouched.
    const dir = tempDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious\n');
    fs.chmodSync(victim, 0o644);
    fs.symlinkSync(victim, path.join(dir, 'link'));
    for (const args of [['record', '-o', path.join(dir, 'link'), '--duration', '1'], ['run', '--record', path.join(dir, 'link'), '--duration', '1'], ['run', '-o', path.join(dir, 'link'), '--duration', '1']]) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('is a symbolic link');
      expect(r.stderr).not.toMatch(/attached \d+ programs/);
    }
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.statSync(victim).mode & 0o777).toBe(0o644);
    // A value from the configuration is named by its key or variable, not by a flag nobody typed.
    const config = path.join(tempDir(), 'loupe.yaml');
    fs.writeFileSync(config, 'agent:\n  cpus: "4095"\n');
    const fromFile = spawnSync('node', [CLI, 'run', '--config', config], { encoding: 'utf8' });
    expect(fromFile.stderr).toContain(`agent.cpus in --config ${config} 4095: CPU 4095 is not online here`);
    const fromEnv = spawnSync('node', [CLI, 'run'], { encoding: 'utf8', env: { ...process.env, LOUPE_CPUS: '4095' } });
    expect(fromEnv.stderr).toContain('LOUPE_CPUS (agent.cpus) 4095: CPU 4095 is not online here');
    expect([fromFile.status, fromEnv.status]).toEqual([2, 2]);
    const offline = spawnSync('node', [CLI, 'run', '--cpus', '4095'], { encoding: 'utf8' });
    expect(offline.stderr).toMatch(/--cpus 4095: CPU 4095 is not online here \(online: [\d,-]+\)/);
    expect(offline.status).toBe(2);
  });
});
