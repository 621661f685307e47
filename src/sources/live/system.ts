/**
 * What the live agent needs from the machine, checked before anything is
 * loaded so a failure names the missing privilege or kernel feature.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCpuList } from '../../discovery/cpu-list';

/** The repository root: dist/sources/live and src/sources/live are both three levels down. */
export const ROOT = path.resolve(__dirname, '../../..');
export const ADDON_PATH = path.join(ROOT, 'native/build/Release/loupe_bpf.node');
export const BPF_OBJECTS = ['net', 'proc', 'tls', 'go'].map((name) => path.join(ROOT, `build/bpf/${name}.bpf.o`));
/** Programs the agent can run without (other program types, maybe missing from a kernel): loaded one by one. */
export const INJECT_OBJECT = path.join(ROOT, 'build/bpf/inject.bpf.o');
export const TCPOPT_OBJECT = path.join(ROOT, 'build/bpf/tcpopt.bpf.o');

export interface NativeAgent {
  load(objects: string[], ringBytes: number): void;
  attach(): void;
  /** Returns the link's id, for detachLinks. */
  attachUprobe(program: string, binary: string, where: string | number, pid: number): number;
  /** Detach these links in the background. */
  detachLinks(ids: number[]): void;
  /** "" when loaded, else why not. */
  loadOptional(object: string, ringBytes: number): string;
  attachCgroup(program: string, cgroupDir: string): void;
  attachSkMsg(program: string, sockhash: string): void;
  mapLookup(map: string, key: Buffer): Buffer | null;
  /** Put a process's established TCP sockets (these fds of it) into a sockhash; how many went in. */
  adoptSockets(sockhash: string, pid: number, fds: number[]): number;
  mapUpdate(map: string, key: Buffer, value: Buffer): void;
  /** Set or clear a pid's bit in the kernel side's pid filter (atomically: the kernel side changes it too). */
  selectPid(pid: number, on: boolean): void;
  /** Clear a pid's bit in the pending bitmap (--exe: watched from exec until decided); whether it was set. */
  takePending(pid: number): boolean;
  /** Clear a pid's bit in the re-exec bitmap (a pending process exec'd again before the decision); whether it was set. */
  takeReexec(pid: number): boolean;
  /** Set a pid's pending bit again: its later exec's record decides. */
  markPending(pid: number): void;
  mapDelete(map: string, key: Buffer): boolean;
  start(onBatch: (batch: Buffer | null) => void): void;
  close(): void;
  stop(): void;
  programs(): string[];
}

/** The CPUs online now, and the kernel's list as it wrote it ("0-1"); undefined when it does not say. */
export function onlineCpus(): { cpus: number[]; text: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  } catch {
    return undefined;
  }
  const cpus = parseCpuList(text);
  return cpus && { cpus, text };
}

export interface Addon {
  Agent: new () => NativeAgent;
  clocks(): { realtime: bigint; boottime: bigint; monotonic: bigint };
  /** Keep every thread of this process on these CPUs (threads made later inherit it); how many threads. */
  pinThreads(cpus: number[]): number;
  /** A loopback pair's reader with one end in a sockhash of its own: see sockhashSafety in live-source.ts. */
  sockhashCheck(): SockhashCheck;
  /**
   * The host's connection tracking entry whose reply direction (or, `byOriginal`, original direction) is
   * src:sport -> dst:dport (TCP; addresses of 16 bytes, IPv4 in the first 4): its other direction, null
   * when there is none.
   */
  conntrackOther(family: 4 | 6, src: Uint8Array, sport: number, dst: Uint8Array, dport: number, byOriginal: boolean): ConntrackTuple | { error: string } | null;
  /** Which program types this kernel loads (kprobe is also what uprobes are). */
  programTypes(): Record<'tracepoint' | 'raw_tracepoint' | 'kprobe' | 'sock_ops' | 'sk_msg', boolean>;
}

export interface ConntrackTuple {
  family: 4 | 6;
  src: Buffer;
  sport: number;
  dst: Buffer;
  dport: number;
}

export interface SockhashCheck {
  /** FIONREAD's answer with `expected` bytes waiting, -1 when it failed. */
  fionread: number;
  /** An edge-triggered epoll woke for them. */
  readable: boolean;
  /** What a non-blocking read then got. */
  received: number;
  expected: number;
  error?: string;
}

export function loadAddon(): Addon {
  if (!fs.existsSync(ADDON_PATH)) {
    throw new Error(`the native addon is not built (${path.relative(ROOT, ADDON_PATH)}); run 'make build'`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon loads through require only
  return require(ADDON_PATH) as Addon;
}

export type Lockdown = 'none' | 'integrity' | 'confidentiality' | 'unknown';

/** Kernel lockdown mode: integrity refuses bpf_probe_write_user; confidentiality also refuses reading kernel memory. */
export function lockdownMode(): Lockdown {
  const file = '/sys/kernel/security/lockdown';
  try {
    if (!fs.existsSync(file)) tryMount('securityfs', '/sys/kernel/security');
    const text = fs.readFileSync(file, 'utf8');
    return (/\[(\w+)\]/.exec(text)?.[1] as Lockdown | undefined) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The cgroup v2 hierarchy's root (sock_ops programs attach there), or undefined. */
export function cgroup2Root(): string | undefined {
  try {
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, where, type] = line.split(' ');
      if (type === 'cgroup2' && where) return where;
    }
  } catch {
    /* no /proc: no cgroup either */
  }
  return undefined;
}

function tryMount(type: string, where: string): void {
  try {
    execFileSync('mount', ['-t', type, type, where], { stdio: 'ignore' });
  } catch {
    /* reported by the check that needed it */
  }
}

export type Support = { ok: true; lockdown: Lockdown } | { ok: false; reason: string };

/**
 * Can this process run the live agent? Mounts tracefs and bpffs when absent
 * (tracepoints are attached by their tracefs ids). Does not load anything.
 */
export function liveSupport(): Support {
  if (process.platform !== 'linux') return { ok: false, reason: `live capture needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'live capture needs root (CAP_BPF, CAP_PERFMON and tracefs access)' };
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return { ok: false, reason: 'the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load' };
  if (!fs.existsSync('/sys/kernel/tracing/events')) tryMount('tracefs', '/sys/kernel/tracing');
  if (!fs.existsSync('/sys/kernel/tracing/events/syscalls')) {
    return { ok: false, reason: 'syscall tracepoints are not available (no /sys/kernel/tracing/events/syscalls; tracefs could not be mounted or CONFIG_FTRACE_SYSCALLS is off)' };
  }
  if (!fs.existsSync(ADDON_PATH)) return { ok: false, reason: `the native addon is not built (${path.relative(ROOT, ADDON_PATH)}); ${buildAdvice()}` };
  for (const obj of BPF_OBJECTS) {
    if (!fs.existsSync(obj)) return { ok: false, reason: `BPF object ${path.relative(ROOT, obj)} is not built; ${buildAdvice()}` };
  }
  return { ok: true, lockdown: lockdownMode() };
}

/** What to run to build the live agent: the set-up that installs the build tools first where they are missing. */
export function buildAdvice(): string {
  const tools = ['clang', 'bpftool'].filter((t) => !onPath(t));
  if (!fs.existsSync('/usr/include/bpf/libbpf.h')) tools.push('libbpf-dev');
  return tools.length
    ? `the BPF build tools are missing (${tools.join(', ')}): run 'make system-deps build' as root (it installs them from Debian, then builds)`
    : "run 'make build'";
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, tool)));
}

/** The OpenSSL libraries programs here load, resolved and without duplicates (uprobes attach per file). */
export function systemLibssl(): string[] {
  const candidates = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'].flatMap((dir) =>
    ['libssl.so.3', 'libssl.so.1.1'].map((f) => path.join(dir, f)),
  );
  const found = new Set<string>();
  for (const c of candidates) {
    try {
      found.add(fs.realpathSync(c));
    } catch {
      /* not here */
    }
  }
  return [...found];
}
