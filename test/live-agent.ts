/**
 * What the live agent tests share: the CLI and demo service paths, why they
 * are skipped where they cannot run, and running an agent as a child.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { liveSupport } from '../src/sources/live/system';
import { ROOT, spanLines, type SpanLine } from './helpers';

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
