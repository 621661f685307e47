/**
 * The live source: Loupe's BPF objects loaded through the addon, configured
 * from the options, and drained in batches of raw records. It hands records
 * on exactly as the kernel wrote them; deciding what they mean is the core's.
 */
import { LoupeError } from '../../errors';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { layoutOf, offsetOf } from '../../events/layout';
import { encodeGoOffsets, itabIn, planGoProbes, type GoPlan } from './go-probes';
import { socketsOf } from './procfs';
import {
  BPF_OBJECTS,
  cgroup2Root,
  INJECT_OBJECT,
  TCPOPT_OBJECT,
  liveSupport,
  loadAddon,
  type Addon,
  type ConntrackTuple,
  type Lockdown,
  type NativeAgent,
  type SockhashCheck,
} from './system';

export interface LiveOptions {
  /** Watch only these processes (and children they fork). */
  pids?: number[];
  /** Watch only connections with one of these ports at either end. */
  ports?: number[];
  /** Payload bytes copied per data record (at most LOUPE_MAX_PAYLOAD). */
  maxPayload: number;
  /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
  ringBytes: number;
  /** OpenSSL libraries whose SSL_read/SSL_write give HTTPS plaintext; [] for none. */
  tlsLibraries: string[];
  /** Also put them on other libssl files watched programs load (their own copies, other versions). */
  tlsDiscover?: boolean;
  /** Put traceparent on Go programs' outgoing HTTP/1 requests (sk_msg); off keeps every byte as the program wrote it. */
  goInject: boolean;
  /** Read Go programs' own TLS (crypto/tls) in plaintext; false with --no-tls. Default on. */
  goTls?: boolean;
  /** Go programs get probes (the kernel then looks for incoming traceparents for them). Default on. */
  goProbes?: boolean;
  /** Trace context in a TCP header option on each call's first segment (bpf/tcpopt.bpf.c); off keeps every header as the kernel made it. */
  tcpOptions?: boolean;
  /**
   * Put traceparent on other programs' outgoing HTTP/1 requests too (sk_msg, bpf/inject.bpf.c's
   * plain_request): the trace the sending thread serves, else a new one. Off keeps their bytes.
   */
  httpInject?: boolean;
  /**
   * Only processes allowed one by one (allowPropagation) get the option or a header from the
   * kernel's per-thread context: a service rule turns propagation off for some.
   */
  tcpOptionsOptIn?: boolean;
  /** Inject even where the kernel misreports FIONREAD for sockets in a sockhash (see sockhashSafety). */
  goInjectDespiteFionread?: boolean;
  /** Tests only: another build of inject.bpf.o (one whose header insertion fails on purpose). */
  injectObject?: string;
  /**
   * Processes are picked by their exec (--exe): the kernel side watches each exec'd program as
   * pending until the agent decides (takePending), and its exec record reaches the agent at once.
   */
  selectByExec?: boolean;
  /** With selectByExec: the files it matches (src/discovery/exe-files.ts), whose pending processes may have bytes changed. */
  exeFiles?: ReadonlyArray<{ dev: bigint; ino: bigint }>;
  /**
   * Keep the agent's threads on these CPUs. On a small host this keeps its
   * bursts of work off the CPU a watched service is on (bench/live: steady-rate
   * p99 +1.1 to +1.4 ms unpinned, none pinned).
   */
  cpus?: number[];
}

/** How trace context crosses from one process to the next in this run. */
export interface Propagation {
  /** traceparent inserted into Go programs' outgoing HTTP/1 requests by sk_msg. */
  inject: boolean;
  /** Why not, when not; when on, what limits it ('' for nothing). */
  reason: string;
  /** Only into Go programs that call no C code of their own (GoPlan.cCallers): the kernel breaks FIONREAD on sockhash sockets. */
  pureGoOnly?: boolean;
  /** traceparent inserted into other programs' HTTP/1 requests, from the context of the thread sending; why not, when off. */
  http: { on: boolean; reason: string };
  /** Trace context in TCP header options (any protocol, both ends running Loupe); why not, when off. */
  tcpOptions: { on: boolean; reason: string };
}

export interface InjectCounts {
  inserted: bigint;
  refused: bigint;
  kept: bigint;
}

export interface GoInstrumented {
  pid: number;
  exe: string;
  goVersion: string;
  functions: string[];
  probes: number;
  offsetsFrom: GoPlan['offsetsFrom'];
  /** Probes left off, and why ('' when none). */
  skipped: string;
  /** Connections it had open already that now get traceparent too. */
  adoptedSockets: number;
  /** Its outgoing HTTP/1 requests get a traceparent; how its header map (searched for one of its own) is laid out. */
  injects: boolean;
  headerMap: 'buckets' | 'swiss table';
}

/** The TLS probes of bpf/tls.bpf.c, by the library function each goes on. */
const TLS_PROBES: Array<[string, string]> = [
  ['ssl_write', 'SSL_write'],
  ['ssl_write_ret', 'SSL_write'],
  ['ssl_read', 'SSL_read'],
  ['ssl_read_ret', 'SSL_read'],
  ['ssl_write_ex', 'SSL_write_ex'],
  ['ssl_write_ex_ret', 'SSL_write_ex'],
  ['ssl_read_ex', 'SSL_read_ex'],
  ['ssl_read_ex_ret', 'SSL_read_ex'],
];

export interface LiveStarted {
  programs: string[];
  lockdown: Lockdown;
  propagation: Propagation;
  /** Whether connections watched processes open or accept are looked up in the host's connection tracking (off: why). */
  conntrack: { on: boolean; reason: string };
  /** Kernel monotonic and wall-clock time read together, in ns. */
  clocks: { realtime: bigint; monotonic: bigint };
}

export class LiveError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_LIVE', message);
  }
}

function encodeConfig(fields: Record<string, number | bigint>): Buffer {
  const buf = Buffer.alloc(layoutOf('loupe_config').size);
  for (const [name, value] of Object.entries(fields)) {
    const at = offsetOf('loupe_config', name);
    const size = layoutOf('loupe_config').members[name]!.size;
    if (size === 8) buf.writeBigUInt64LE(BigInt(value), at);
    else if (size === 4) buf.writeUInt32LE(Number(value), at);
    else buf.writeUInt16LE(Number(value), at);
  }
  return buf;
}

/** loupe_exe_files' size (bpf/common.bpf.h): past it, a pending process of a file --exe matches gets no byte changed until the agent decides. */
const MAX_EXE_FILES = 4096;

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

/** Split an addon batch (u32 length + bytes, repeated) into records; views, no copies. */
export function splitBatch(batch: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let at = 0;
  while (at + 4 <= batch.length) {
    const len = batch.readUInt32LE(at);
    if (at + 4 + len > batch.length) throw new LiveError(`ring-buffer batch cut inside a record at byte ${at}`);
    records.push(batch.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return records;
}

export class LiveSource {
  private agent: NativeAgent | undefined;
  private ended: Promise<void> | undefined;
  private propagation: Propagation = {
    inject: false,
    reason: 'not started',
    http: { on: false, reason: 'not started' },
    tcpOptions: { on: false, reason: 'not started' },
  };
  private conntrack = { on: false, reason: 'not started' };
  /** The addon, once started: asked once per connection opened (a lookup through require each time costs a stat). */
  private addon: Addon | undefined;
  /** OpenSSL libraries with TLS probes, by dev:inode. */
  private readonly tlsAttached = new Set<string>();
  /** The uprobe links each Go process got, to detach when it ends. */
  private readonly goLinks = new Map<number, number[]>();
  /** Probe plans by executable (dev:inode): a binary is read and disassembled once. */
  private readonly goPlans = new Map<string, Promise<GoPlan>>();

  constructor(
    private readonly options: LiveOptions,
    private readonly onRecords: (records: Buffer[]) => void,
  ) {}

  /** Load, configure, attach and start draining. Throws a LiveError that names what is missing. */
  start(): LiveStarted {
    const support = liveSupport();
    if (!support.ok) throw new LiveError(support.reason);
    const addon = loadAddon();
    if (this.options.cpus?.length) {
      try {
        addon.pinThreads(this.options.cpus);
      } catch (e) {
        throw new LiveError((e as Error).message);
      }
    }
    const agent = new addon.Agent();
    this.agent = agent;
    try {
      agent.load(BPF_OBJECTS, this.options.ringBytes);
      const types = addon.programTypes();
      const missingTypes = (['sock_ops', 'sk_msg'] as const).filter((t) => !types[t]);
      const injectLoad =
        !this.options.goInject && !this.options.httpInject
          ? 'turned off by configuration'
          : missingTypes.length
            ? `this kernel cannot load ${missingTypes.join(' or ')} programs`
            : agent.loadOptional(this.options.injectObject ?? INJECT_OBJECT, this.options.ringBytes);
      const tcpOptionsLoad =
        this.options.tcpOptions === false
          ? 'turned off by configuration'
          : !types.sock_ops
            ? 'this kernel cannot load sock_ops programs'
            : agent.loadOptional(TCPOPT_OBJECT, this.options.ringBytes);
      const filterPids = (this.options.pids?.length ?? 0) > 0;
      const filterPorts = (this.options.ports?.length ?? 0) > 0;
      for (const pid of this.options.pids ?? []) this.watchPid(pid);
      for (const port of this.options.ports ?? []) agent.mapUpdate('loupe_ports', u16(port), Buffer.from([1]));
      for (const file of (this.options.exeFiles ?? []).slice(0, MAX_EXE_FILES)) {
        const key = Buffer.alloc(16);
        key.writeBigUInt64LE(file.dev, 0);
        key.writeBigUInt64LE(file.ino, 8);
        agent.mapUpdate('loupe_exe_files', key, Buffer.from([1]));
      }
      const config = {
        agent_pid: process.pid,
        max_payload: this.options.maxPayload,
        filter_pids: filterPids ? 1 : 0,
        filter_ports: filterPorts ? 1 : 0,
        // Secret per run: cookies stay stable within a capture and say nothing about kernel addresses.
        cookie_key: randomBytes(8).readBigUInt64LE(),
        tls_probes: this.options.tlsLibraries.length > 0 || this.options.tlsDiscover ? 1 : 0,
        go_probes: this.options.goProbes === false ? 0 : 1,
        exec_select: this.options.selectByExec ? 1 : 0,
        tcp_options: 0,
        inject_http: 0,
      };
      agent.mapUpdate('loupe_config', u32(0), encodeConfig(config));
      let resolveEnd!: () => void;
      this.ended = new Promise((resolve) => (resolveEnd = resolve));
      agent.start((batch) => {
        if (batch === null) {
          resolveEnd();
          return;
        }
        this.onRecords(splitBatch(batch));
      });
      agent.attach();
      for (const lib of this.options.tlsLibraries) this.attachTls(lib);
      this.propagation = { ...this.startInjection(agent, injectLoad), tcpOptions: this.startTcpOptions(agent, tcpOptionsLoad) };
      const oneByOne = this.options.tcpOptionsOptIn ? 2 : 1;
      const { tcpOptions, http } = this.propagation;
      if (tcpOptions.on || http.on) {
        agent.mapUpdate('loupe_config', u32(0), encodeConfig({ ...config, tcp_options: tcpOptions.on ? oneByOne : 0, inject_http: http.on ? oneByOne : 0 }));
      }
    } catch (e) {
      this.agent = undefined;
      agent.stop();
      agent.close();
      throw e instanceof LiveError ? e : new LiveError((e as Error).message);
    }
    this.conntrack = conntrackUsable(addon);
    this.addon = addon;
    return { programs: agent.programs(), lockdown: support.lockdown, propagation: this.propagation, conntrack: this.conntrack, clocks: addon.clocks() };
  }

  /**
   * TLS probes on an OpenSSL library file, for every process that maps it;
   * false when it has them already (the same file by another path too).
   */
  attachTls(lib: string): boolean {
    const agent = this.agent;
    if (!agent) return false;
    const st = fs.statSync(lib);
    const key = `${st.dev}:${st.ino}`;
    if (this.tlsAttached.has(key)) return false;
    this.tlsAttached.add(key);
    for (const [program, fn] of TLS_PROBES) agent.attachUprobe(program, lib, fn, -1);
    return true;
  }

  /**
   * The other end's view of a connection when the host's connection tracking says NAT rewrote it: for
   * a server's accepted connection, the tuple its client used (conntrack's original direction); for a
   * client's, the tuple the server sees (the reply direction), as src -> dst. Undefined when there is
   * no entry or it is this connection's own tuple reversed. `local`/`remote` as the socket says (the
   * kernel side reports a v4-mapped pair as IPv4).
   */
  natPeerView(role: 'client' | 'server', family: 4 | 6, local: Buffer, localPort: number, remote: Buffer, remotePort: number): ConntrackTuple | undefined {
    // About 2 µs a lookup (a miss, measured), once per connection a watched process opens or accepts. No cheap
    // sign says a host has no NAT: nf_nat is built into this machine's kernel, absent from /sys/module.
    if (!this.addon || !this.conntrack.on) return undefined;
    const found = this.addon.conntrackOther(family, local, localPort, remote, remotePort, role === 'client');
    if (!found || 'error' in found) return undefined;
    const width = family === 4 ? 4 : 16;
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a.subarray(0, width), b.subarray(0, width)) === 0;
    if (found.sport === remotePort && found.dport === localPort && same(found.src, remote) && same(found.dst, local)) return undefined;
    return found;
  }

  /** sock_ops on the cgroup v2 root writes and reads the option; the socket programs say which trace each server read begins. */
  private startTcpOptions(agent: NativeAgent, loaded: string): { on: boolean; reason: string } {
    if (loaded) return { on: false, reason: loaded };
    const cgroup = cgroup2Root();
    if (!cgroup) return { on: false, reason: 'no cgroup v2 hierarchy is mounted (sock_ops attaches to one)' };
    try {
      agent.attachCgroup('loupe_tcp_options', cgroup);
    } catch (e) {
      return { on: false, reason: (e as Error).message };
    }
    return { on: true, reason: '' };
  }

  /** sock_ops on the cgroup v2 root picks the sockets, sk_msg on their sockhash writes the header. */
  private startInjection(agent: NativeAgent, loaded: string): Omit<Propagation, 'tcpOptions'> {
    const off = (reason: string) => ({ inject: false, reason, http: { on: false, reason } });
    if (loaded) return off(loaded);
    const safety = sockhashSafety(loadAddon().sockhashCheck());
    if (safety.verdict === 'unsafe') return off(safety.reason);
    const cgroup = cgroup2Root();
    if (!cgroup) return off('no cgroup v2 hierarchy is mounted (sock_ops attaches to one)');
    try {
      agent.attachCgroup('loupe_sockops', cgroup);
      agent.attachSkMsg('loupe_inject_traceparent', 'loupe_inject_socks');
    } catch (e) {
      return off((e as Error).message);
    }
    const despite = this.options.goInjectDespiteFionread === true;
    const http = !this.options.httpInject
      ? { on: false, reason: 'turned off by configuration' }
      : safety.verdict === 'safe'
        ? { on: true, reason: '' }
        : despite
          ? { on: true, reason: `--inject-despite-fionread, although ${safety.reason}` }
          : { on: false, reason: safety.reason };
    if (!this.options.goInject) return { inject: false, reason: 'turned off by configuration', http };
    if (safety.verdict === 'safe') return { inject: true, reason: '', http };
    if (despite) return { inject: true, reason: `into every Go program (--inject-despite-fionread), although ${safety.reason}`, http };
    return { inject: true, pureGoOnly: true, reason: `only into Go programs that call no C code of their own, because ${safety.reason}`, http };
  }

  /** Does this Go program's requests get the header (see Propagation.pureGoOnly)? */
  private injectsInto(plan: GoPlan): boolean {
    return this.propagation.inject && plan.canInject && !(this.propagation.pureGoOnly && plan.cCallers.length > 0);
  }

  /** With tcpOptionsOptIn: this process's calls may carry the option, and its HTTP/1 requests a header, from now on. */
  allowPropagation(pid: number): void {
    if (this.propagation.tcpOptions.on) this.agent?.mapUpdate('loupe_tcpopt_pids', u32(pid), Buffer.from([1]));
    if (this.propagation.http.on) this.agent?.mapUpdate('loupe_inject_pids', u32(pid), Buffer.from([1]));
  }

  /**
   * Put the Go probes on a running Go program (bpf/go.bpf.c). Throws an
   * ElfError or LiveError that says why a program cannot be instrumented.
   * `propagate` false: its requests get no header (a service rule says so).
   */
  async instrumentGo(pid: number, propagate = true): Promise<GoInstrumented | undefined> {
    const exe = `/proc/${pid}/exe`;
    const st = fs.statSync(exe);
    const key = `${st.dev}:${st.ino}`;
    let planned = this.goPlans.get(key);
    if (!planned) {
      planned = planGoProbes(exe);
      this.goPlans.set(key, planned);
    }
    const plan = await planned;
    // The runtime alone (a compiler, a tool): no request of any kind to follow.
    if (!plan.functions.some((f) => f.startsWith('net/http.'))) return undefined;
    const agent = this.agent;
    if (!agent) throw new LiveError('the agent has stopped');
    this.forgetGo(pid); // a pid probed before ran another program
    const links: number[] = [];
    this.goLinks.set(pid, links);
    const tls = this.options.goTls !== false;
    for (const [program, offset] of plan.probes) {
      if (!tls && program.startsWith('go_tls_')) continue;
      links.push(agent.attachUprobe(program, exe, offset, pid));
    }
    const injects = propagate && this.injectsInto(plan);
    agent.mapUpdate('loupe_go_procs', u32(pid), encodeGoOffsets(plan, injects, tls, itabIn(plan, pid)));
    // Connections it opened before the agent never met sock_ops: without this its pooled keep-alive
    // connections would carry no header for as long as they live.
    const adoptedSockets = injects
      ? agent.adoptSockets(
          'loupe_inject_socks',
          pid,
          socketsOf(pid).map((s) => s.fd),
        )
      : 0;
    return {
      pid,
      exe: fs.readlinkSync(exe),
      goVersion: plan.goVersion,
      functions: plan.functions,
      probes: plan.probes.length,
      offsetsFrom: plan.offsetsFrom,
      skipped: [
        plan.skipped,
        this.propagation.pureGoOnly && plan.cCallers.length > 0
          ? `traceparent injection off for it: ${plan.cCallers.join(', ')} call${plan.cCallers.length > 1 ? '' : 's'} C code, which may read its sockets by FIONREAD`
          : '',
      ]
        .filter(Boolean)
        .join('; '),
      adoptedSockets,
      injects,
      headerMap: plan.swissMap ? 'swiss table' : 'buckets',
    };
  }

  /** A Go process ended (or exec'd): its probes go, and its pid may come back as another program. */
  forgetGo(pid: number): void {
    this.agent?.mapDelete('loupe_go_procs', u32(pid));
    const links = this.goLinks.get(pid);
    this.goLinks.delete(pid);
    if (links?.length) this.agent?.detachLinks(links);
  }

  /** Headers sk_msg inserted, requests it found no place for, and requests kept as written (their own traceparent, a signature). */
  injectCounts(): InjectCounts {
    const read = (i: number) => this.agent?.mapLookup('loupe_inject_counts', u32(i))?.readBigUInt64LE(0) ?? 0n;
    return this.propagation.inject || this.propagation.http.on ? { inserted: read(0), refused: read(1), kept: read(2) } : { inserted: 0n, refused: 0n, kept: 0n };
  }

  /** Add a process to the kernel's filter (used when --exe matches an exec). */
  watchPid(pid: number): void {
    this.agent?.selectPid(pid, true);
  }

  /** Take a process out of the kernel's filter (an exec --exe does not match); the kernel's monotonic time just after. */
  unwatchPid(pid: number): bigint {
    this.agent?.selectPid(pid, false);
    return this.kernelNow();
  }

  /** The clock of the records' times (CLOCK_MONOTONIC) now. */
  kernelNow(): bigint {
    return loadAddon().clocks().monotonic;
  }

  /**
   * Whether the kernel side watched this process as pending since its exec
   * (selectByExec), waiting for the agent's decision; the mark is cleared.
   */
  takePending(pid: number): boolean {
    return this.agent?.takePending(pid) ?? false;
  }

  /** Whether a pending process exec'd again before this decision (the mark is cleared). */
  takeReexec(pid: number): boolean {
    return this.agent?.takeReexec(pid) ?? false;
  }

  /** Watched as pending again, until the record of its later exec. */
  markPending(pid: number): void {
    this.agent?.markPending(pid);
  }

  /** Detach and let go at once, dropping what the ring buffer still holds: a start that failed after attaching. */
  stopNow(): void {
    const agent = this.agent;
    if (!agent) return;
    this.agent = undefined;
    agent.stop();
    agent.close();
  }

  /** Detach at once, then deliver every record still in the ring buffer before resolving. */
  async stop(): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    this.agent = undefined;
    agent.stop();
    await this.ended;
    agent.close();
  }
}

/**
 * What putting a socket in a sockhash does to its reader on this kernel, from a loopback pair of
 * the agent's own (Addon.sockhashCheck). Kernels with commit 929e30f93125 (6.6.128+, 6.12.75+,
 * 6.18.14+, 6.19+) answer FIONREAD from the psock's queue: 0 for a socket with only an sk_msg
 * program, and nginx, Java NIO and .NET, which size their reads by it, stall. The two known
 * compensations do not hold here: OBI rewrites the ioctl's result with bpf_probe_write_user, which
 * kernel lockdown refuses; a pass-through sk_skb verdict on the sockhash makes FIONREAD right, but
 * measured on 6.18.44 the socket then read nothing more, not even new data, once the agent's map
 * was gone, so an agent killed with SIGKILL would leave its connections dead. What holds instead:
 * only a Go program's own sockets enter the sockhash, and Go's runtime never asks FIONREAD (it
 * reads until EAGAIN; readiness is checked here too), so injection stays on for Go programs whose
 * only C calls are libc's resolvers (GoPlan.cCallers). --inject-despite-fionread widens it to every
 * Go program and to other programs' HTTP/1 requests (Propagation.http), for hosts whose programs
 * never ask FIONREAD (curl, CPython, Rust's std, Node and nginx 1.22 with epoll did not here).
 */
/** Does this host answer connection-tracking lookups (a question for a tuple no connection has)? */
function conntrackUsable(addon: Addon): { on: boolean; reason: string } {
  const none = new Uint8Array(16);
  const answer = addon.conntrackOther(4, none, 0, none, 0, false);
  if (answer && 'error' in answer) return { on: false, reason: answer.error };
  return { on: true, reason: '' };
}

export function sockhashSafety(check: SockhashCheck): { verdict: 'safe' | 'fionread' | 'unsafe'; reason: string } {
  if (check.error !== undefined) return { verdict: 'unsafe', reason: `the sockhash check on a loopback pair failed (${check.error})` };
  if (!check.readable || check.received !== check.expected) {
    return { verdict: 'unsafe', reason: `a socket in a sockhash did not wake or read for ${check.expected} bytes arriving (checked at start-up: ${check.received} read)` };
  }
  if (check.fionread !== check.expected) {
    return {
      verdict: 'fionread',
      reason:
        `this kernel misreports FIONREAD for sockets in a sockhash (${check.fionread} of ${check.expected} bytes, checked at start-up; kernel commit 929e30f93125), ` +
        'which stalls readers that size reads by it (nginx, Java NIO); --inject-despite-fionread for programs that never ask it',
    };
  }
  return { verdict: 'safe', reason: '' };
}
