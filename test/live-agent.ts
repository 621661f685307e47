/**
 * What the live agent tests share: the CLI and demo service paths, why they
 * are skipped where they cannot run, and running an agent as a child.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { HostNetwork } from '../src/scenarios/hosts';
import { liveSupport } from '../src/sources/live/system';
import { ROOT, spanLines, until, waitFor, type SpanLine } from './helpers';

export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const SERVICE = path.join(ROOT, 'scenarios/services/factorial.js');

const support = liveSupport();
const curl = spawnSync('curl', ['--version']).status === 0;
export const skipReason = !support.ok ? support.reason : !curl ? 'curl is not installed' : '';
if (skipReason) console.warn(`live eBPF tests skipped: ${skipReason}`);

export function exited(child: ChildProcess, ms = 30_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('did not exit')), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export function startAgent(args: string[], prefix: string[] = []): { agent: ChildProcess; stderr: () => string } {
  const [cmd, ...rest] = [...prefix, 'node', CLI, ...args];
  const agent = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  agent.stderr!.on('data', (c) => (err += c));
  return { agent, stderr: () => err };
}

/**
 * `loupe run ARGS --format jsonl` as a child, its output kept: with `hostname`, in a UTS namespace
 * of its own under that name, as an agent on its own host runs (a merged replay names hosts by it).
 */
export function runAgent(args: string[], hostname?: string): { child: ChildProcess; spans: () => SpanLine[]; stderr: () => string } {
  const argv = [CLI, 'run', ...args, '--format', 'jsonl'];
  const child = hostname
    ? spawn('unshare', ['--uts', 'sh', '-c', `hostname ${hostname} && exec node "$0" "$@"`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('node', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (err += c));
  return { child, spans: () => spanLines(out), stderr: () => err };
}

/** Programs of ours still attached in the kernel (by their names in bpf/*.bpf.c). */
export function attachedLoupePrograms(): string[] {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const ours = new Set(['sys_exit_io', 'sock_set_state', 'process_exec', 'go_serve_http', 'go_newproc1', 'loupe_sockops', 'loupe_inject_tr']);
  return (JSON.parse(r.stdout) as Array<{ name?: string }>).map((p) => p.name ?? '').filter((n) => ours.has(n));
}

/** What a program on a namespace host must show before it is ready: a line, or a port taking connections. */
export type Ready = { stream: 'stdout' | 'stderr'; shows: RegExp } | { port: number };

/**
 * Programs and commands on network-namespace hosts (`ip netns exec`, which execs them: one pid
 * each). Each daemon goes into `children` (for the caller to kill) and its stderr into `logs`.
 */
export function onHosts<H extends string>(net: HostNetwork, children: ChildProcess[], logs: Record<H, string>, readyMs = 120_000) {
  /** A command on a host, to its end. */
  const run = (host: H, argv: string[]) => {
    const [ip, ...ipArgs] = net.exec(host);
    return spawnSync(ip!, [...ipArgs, ...argv], { encoding: 'utf8', timeout: 60_000 });
  };
  /** A program on a host, ready when `ready` shows or its port takes connections (asked from the host itself). */
  const daemon = async (host: H, argv: string[], ready: Ready): Promise<number> => {
    const [ip, ...ipArgs] = net.exec(host);
    const child = spawn(ip!, [...ipArgs, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.stderr!.on('data', (c: Buffer) => (logs[host] += c));
    if ('shows' in ready) await waitFor(child, ready.stream, ready.shows, readyMs);
    else {
      const connects = () => run(host, ['/usr/bin/python3', '-c', `import socket; socket.create_connection(("${net.addr(host)}", ${ready.port}), 1)`]).status === 0;
      await until(connects, `${argv.join(' ')} to listen on ${ready.port}`, readyMs);
    }
    return child.pid!;
  };
  return { run, daemon };
}
