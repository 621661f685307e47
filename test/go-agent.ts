/**
 * A Go program (scenarios/services/gofactorial.go, `get` role) driven through
 * an in-process agent session with its Go probes, against a Node server that
 * logs the raw headers it read: shared by the Go live tests and the release
 * matrix (GOFACTORIAL_RELEASE picks the Go release it is built with).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { expect } from 'vitest';
import { LiveSession, type LiveSessionOptions } from '../src/pipeline/live';
import { freePort, ROOT, tempDir, type SpanLine } from './helpers';

/**
 * BPF links this process holds for Go probes: its fds whose fdinfo names a
 * program called go_* (a link's fd closes when the link is destroyed).
 */
export function heldGoLinks(): number {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  const goProgs = new Set((JSON.parse(r.stdout) as Array<{ id: number; name?: string }>).filter((p) => p.name?.startsWith('go_')).map((p) => String(p.id)));
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let info = '';
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const prog = /^prog_id:\s+(\d+)$/m.exec(info)?.[1];
    if (/^link_type:/m.test(info) && prog && goProgs.has(prog)) n++;
  }
  return n;
}

/**
 * The client's script builds the program first (on its first run) and then
 * execs it in the same process: wait until it is the Go program, and probe it.
 */
export async function probeWhenGo(session: LiveSession, pid: number) {
  const probed = () => session.goPrograms.find((g) => g.pid === pid);
  for (let i = 0; i < 600 && !probed(); i++) {
    session.considerGo(pid);
    await session.goSettled();
    if (!probed()) await new Promise((r) => setTimeout(r, 100));
  }
  return probed();
}

/** An agent session on these ports with the Go probes on, spans as JSON lines to `write`. */
export function goSession(ports: number[], write: (text: string) => void, goInject: boolean, extra: Partial<LiveSessionOptions> = {}): LiveSession {
  return new LiveSession({ ports, maxPayload: 4096, ringBytes: 16 << 20, tlsLibraries: [], redact: true, format: 'jsonl', write, goProbes: true, goInject, ...extra });
}

/** A process whose stdout lines are read one per request. */
export function lines(child: ChildProcess): () => Promise<string> {
  const queue: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve)));
}

/**
 * Run the Go client through an agent session: one request per [path, own
 * traceparent?]; `before` requests go first, before the agent starts, on the
 * keep-alive connection the later ones reuse. What the server read, and the spans.
 */
export async function throughAgent(
  goInject: boolean,
  requests: Array<[string, string?, number?, Record<string, string>?]>,
  before: string[] = [],
  buildmode = 'exe',
  sessionExtra: Partial<LiveSessionOptions> = {},
  env: Record<string, string> = {},
) {
  const port = await freePort();
  const server = spawn(
    'node',
    [
      '-e',
      `require('http').createServer((q, s) => { let n = 0; q.on('data', (c) => (n += c.length)); q.on('end', () => { console.log(JSON.stringify({ method: q.method, url: q.url, raw: q.rawHeaders, peer: q.socket.remotePort, body: n })); s.end('ok'); }); }).listen(${port}, '127.0.0.1', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const serverLine = lines(server);
  expect(await serverLine()).toBe('ready');
  const client = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['get'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, GOFACTORIAL_BUILDMODE: buildmode, ...env },
  });
  const clientLine = lines(client);
  const received: Array<{ method: string; url: string; raw: string[]; peer: number; body: number }> = [];
  /**
   * `extra` headers after `own` make the request's header map grow, `headers` are set as named (see fetchLines in
   * gofactorial.go); `p` may start with a method, which sends a body.
   */
  const fetch = async (p: string, own?: string, extra?: number, headers?: Record<string, string>) => {
    const [method, pathOnly] = p.includes(' ') ? (p.split(' ') as [string, string]) : ['', p];
    const named = Object.entries(headers ?? {}).map(([n, v]) => ` ${n}=${v.replaceAll(' ', '%20')}`);
    const tail = named.length ? ` ${own ?? '-'} ${extra ?? 0}${named.join('')}` : `${own || extra ? ` ${own ?? '-'}` : ''}${extra ? ` ${extra}` : ''}`;
    client.stdin!.write(`${method ? `${method} ` : ''}http://127.0.0.1:${port}${pathOnly}${tail}\n`);
    expect(await clientLine()).toBe('200 OK');
    received.push(JSON.parse(await serverLine()));
  };
  for (const p of before) await fetch(p);
  let spans = '';
  const capture = path.join(tempDir(), 'go.loupe');
  const session = goSession([port], (t) => (spans += t), goInject, { capturePath: capture, ...sessionExtra });
  const started = session.start();
  try {
    expect(await probeWhenGo(session, client.pid!)).toMatchObject({ goVersion: expect.stringMatching(/^go1\./) });
    for (const [p, own, extra, headers] of requests) await fetch(p, own, extra, headers);
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    client.stdin!.end();
  }
  const linksWhileRunning = heldGoLinks();
  await new Promise((r) => (client.exitCode !== null ? r(null) : client.once('exit', r)));
  // Its exit record comes through the ring buffer; then its probes go, each detach waiting out an RCU grace period.
  for (let i = 0; i < 300 && heldGoLinks() > 0; i++) await new Promise((r) => setTimeout(r, 100));
  const linksAfterExit = heldGoLinks();
  await session.stop();
  server.kill();
  const parsed = spans
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SpanLine);
  const go = session.goPrograms.find((g) => g.pid === client.pid);
  // Architecture rule 3 with Go records in the stream: the replay of the recording says the same, byte for byte.
  const replayed = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
  return {
    received,
    spans: parsed,
    liveText: spans,
    replayText: replayed.stdout,
    started,
    injected: session.injected,
    clientPid: client.pid!,
    serverPid: server.pid!,
    linksWhileRunning,
    linksAfterExit,
    go,
  };
}

/** Values of the traceparent headers in Node's rawHeaders (name, value, name, value, ...). */
export const traceparentsOf = (raw: string[]) => raw.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'traceparent' ? [raw[i + 1]!] : []));
