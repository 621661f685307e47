/**
 * What /proc says about a process, for the capture's process table. Read at
 * the edge (never inside the core), and only for processes the agent watches.
 */
import * as fs from 'node:fs';
import { containerOfCgroup, type ContainerInfo } from '../../discovery/containers';
import { containerRuntimeInfo } from './container-runtime';
import type { ProcessInfo } from '../../events/capture';
import { loadAddon } from './system';

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

/** /proc's clock tick (USER_HZ), 100 on every Linux architecture Loupe runs on. */
const TICK_NS = 10_000_000n;

/** CLOCK_MONOTONIC minus CLOCK_BOOTTIME now (they differ by the time the host spent suspended). */
function monotonicFromBoottime(): bigint {
  const c = loadAddon().clocks();
  return c.monotonic - c.boottime;
}

/**
 * The process as /proc shows it now, or undefined when it is gone. With
 * `seenAtNs` (a kernel record's monotonic time): also undefined when the
 * process there now started after that record, so it is not the one the record
 * came from — that one exited and the kernel gave its pid to another.
 */
export function processInfo(pid: number, seenAtNs?: bigint): ProcessInfo | undefined {
  let exe: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
  const info: ProcessInfo = { pid, exe };
  const stat = read(`/proc/${pid}/stat`);
  // comm may hold spaces and parentheses: the fields after it start after the last ')'.
  const close = stat?.lastIndexOf(')') ?? -1;
  if (stat && close > 0) {
    info.comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ppid = Number(fields[1]);
    if (Number.isInteger(ppid)) info.ppid = ppid;
    // Field 22, starttime (the 20th after comm and state), on the boot-time clock in ticks, rounded down:
    // a process that made the record started before it, so its start never reads as later.
    if (seenAtNs !== undefined && /^\d+$/.test(fields[19] ?? '')) {
      const started = BigInt(fields[19]!) * TICK_NS + monotonicFromBoottime();
      if (started > seenAtNs) return undefined;
    }
  }
  const cmdline = read(`/proc/${pid}/cmdline`);
  if (cmdline) info.cmdline = cmdline.split('\0').filter((s, i, all) => s !== '' || i < all.length - 1);
  // An exec record names the path the program was started by (a symlink's own name, say);
  // argv[0] is that path when it leads to the same executable, so both ways name it alike.
  const argv0 = info.cmdline?.[0];
  if (argv0?.startsWith('/') && argv0 !== exe) {
    try {
      if (fs.realpathSync(argv0) === exe) info.exe = argv0;
    } catch {
      /* argv[0] is not a path to it */
    }
  }
  // OTEL_SERVICE_NAME in the program's environment names its service, as OTel SDKs and Beyla read it.
  const service = /(?:^|\0)OTEL_SERVICE_NAME=([^\0]+)/.exec(read(`/proc/${pid}/environ`) ?? '')?.[1];
  if (service) info.service = service;
  const container = containerOf(pid);
  if (container) info.container = container;
  return info;
}

/** The processes a process has forked and that still run (from any of its threads). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tasks) {
    for (const child of (read(`/proc/${pid}/task/${tid}/children`) ?? '').split(' ')) if (child) children.push(Number(child));
  }
  return children;
}

/**
 * The socket inodes listening on these TCP ports, in this network namespace
 * (/proc/net/tcp and tcp6, state 0A).
 */
export function listeningInodes(ports: readonly number[]): Set<string> {
  return tcpInodes(ports, true);
}

/**
 * The TCP socket inodes with one of these ports at either end, in any state
 * (listening, connected, closing), in this network namespace.
 */
export function portInodes(ports: readonly number[]): Set<string> {
  return tcpInodes(ports, false);
}

function tcpInodes(ports: readonly number[], listeningOnly: boolean): Set<string> {
  const inodes = new Set<string>();
  const portOf = (address: string) => parseInt(address.split(':')[1]!, 16);
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (read(file) ?? '').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[9] === '0') continue; // inode 0: a TIME_WAIT socket no process holds
      if (listeningOnly && cols[3] !== '0A') continue;
      if (ports.includes(portOf(cols[1]!)) || (!listeningOnly && ports.includes(portOf(cols[2]!)))) inodes.add(cols[9]!);
    }
  }
  return inodes;
}

/** A process's fds that are sockets, with each socket's inode; [] when it is gone. */
export function socketsOf(pid: number): Array<{ fd: number; inode: string }> {
  const sockets: Array<{ fd: number; inode: string }> = [];
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return sockets; // gone, or a kernel thread
  }
  for (const fd of fds) {
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (link.startsWith('socket:[')) sockets.push({ fd: Number(fd), inode: link.slice(8, -1) });
  }
  return sockets;
}

/** The processes that hold one of these socket inodes open (a pre-forked server's workers too). */
export function holdersOf(inodes: ReadonlySet<string>, except: number): number[] {
  if (inodes.size === 0) return [];
  return allPids().filter((pid) => pid !== except && socketsOf(pid).some((s) => inodes.has(s.inode)));
}

/** Every pid now running. */
export function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** The container a process runs in (its cgroup), named by the runtime where one answers; undefined for a host process. */
export function containerOf(pid: number): ContainerInfo | undefined {
  const found = containerOfCgroup(read(`/proc/${pid}/cgroup`) ?? '');
  return found && containerRuntimeInfo(found);
}
