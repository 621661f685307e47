/**
 * Which processes the live agent watches: the policy, apart from the
 * mechanism (/proc reads and the kernel's pid filter come in through
 * ProcessView and KernelFilter).
 *
 *  - `--pid`: those processes, their children and their children's, running
 *    at start or forked later;
 *  - `--exe`: programs whose executable matches, running at start or exec'd
 *    later (watched by the kernel from their exec as pending until decided
 *    here; what one not chosen did meanwhile is dropped, its sockets too);
 *  - `--open-port`: the processes listening on the port, found again as
 *    listeners appear;
 *  - `--container`: the processes of containers whose name, image or id
 *    matches, found again every 2 s (a container started later, a `podman
 *    exec` into one);
 *  - `--port` alone: the kernel passes only connections on those ports, and
 *    probes go only to programs seen on one of them — never to every program
 *    the host runs, since a probe on a program not watched is a change to it;
 *  - none: every process but the agent.
 */
import type { ProcessInfo } from '../events/capture';
import type { ContainerInfo } from './containers';

/** What /proc says, as the selection needs it. */
export interface ProcessView {
  allPids(): number[];
  childrenOf(pid: number): number[];
  processInfo(pid: number, seenAtNs?: bigint): ProcessInfo | undefined;
  /** Inodes of the sockets listening on these ports, and of every socket on them. */
  listeningInodes(ports: readonly number[]): Set<string>;
  portInodes(ports: readonly number[]): Set<string>;
  /** Processes holding one of these socket inodes, but `except`. */
  holdersOf(inodes: ReadonlySet<string>, except: number): number[];
  /** The container a process runs in, named by its runtime where one answers. */
  containerOf(pid: number): ContainerInfo | undefined;
}

/** The kernel side's pid filter. */
export interface KernelFilter {
  watchPid(pid: number): void;
  /** Leaves the filter; returns the kernel time it left. */
  unwatchPid(pid: number): bigint;
  /** Whether the kernel watched this pid as pending since its exec (and stops doing so). */
  takePending(pid: number): boolean;
  /** Whether a pending process exec'd again before this decision (and stops saying so). */
  takeReexec(pid: number): boolean;
  /** Watch it as pending again: the record of its later exec decides. */
  markPending(pid: number): void;
}

export interface SelectionCriteria {
  pids?: number[];
  exe?: RegExp;
  ports?: number[];
  openPorts?: number[];
  container?: RegExp;
}

/** Processes selected at start, children of --pid included, at most: a fork bomb's tree does not stall the start. */
const MAX_SELECTED_AT_START = 4096;
/** Sockets of dropped programs remembered, the oldest forgotten first. */
const MAX_DROPPED_SOCKETS = 65536;
/** A record stamped this long after its process left the filter may still have passed it (another CPU). */
const DROP_MARGIN_NS = 10_000_000n;

/** Why a process was chosen after the agent started, as said to the user. */
export type ChosenBy = 'exe' | 'exe-late' | 'forked-pending' | 'open-port' | 'container';

export class ProcessSelection {
  /** Told of each process chosen after the start (at the start, the "attached" line says what is watched). */
  onChosen?: (pid: number, by: ChosenBy) => void;
  /** A process filter is on (--pid, --exe, --open-port): only selected processes are watched. */
  readonly filtering: boolean;
  /** --port alone: probes only for programs seen on a watched port. */
  readonly portSelecting: boolean;
  /** The pids the kernel filter starts with (0 alone: the filter is on but nothing is chosen yet). */
  readonly kernelPids: number[];
  /** Processes running at start that get their probes now. */
  readonly initialPids: number[];
  private readonly selected = new Set<number>();
  /** Processes watched as pending from their exec that --exe did not choose: pid -> the kernel time they left the filter. */
  private readonly dropped = new Map<number, bigint>();
  /** Sockets (cookies) of programs --exe dropped, until their TCP state is CLOSE. */
  private readonly droppedSockets = new Set<bigint>();
  /** --open-port, or --port alone: the listening sockets (inodes) seen already. */
  private listening = new Set<string>();
  private lastTs = 0n;

  constructor(
    private readonly criteria: SelectionCriteria,
    private readonly proc: ProcessView,
    private readonly agentPid: number,
  ) {
    this.filtering = (criteria.pids?.length ?? 0) > 0 || criteria.exe !== undefined || (criteria.openPorts?.length ?? 0) > 0 || criteria.container !== undefined;
    this.portSelecting = !this.filtering && (criteria.ports?.length ?? 0) > 0;
    for (const pid of criteria.pids ?? []) this.selected.add(pid);
    const pids = [...(criteria.pids ?? [])];
    // Children already running (nginx's workers, a pre-forked pool) are selected too, as the ones forked later are.
    for (let i = 0; i < pids.length && pids.length < MAX_SELECTED_AT_START; i++) {
      for (const child of proc.childrenOf(pids[i]!)) {
        if (this.selected.has(child)) continue;
        this.selected.add(child);
        pids.push(child);
      }
    }
    if (criteria.exe) {
      for (const pid of proc.allPids()) {
        if (pid === agentPid) continue;
        const info = proc.processInfo(pid);
        if (info && criteria.exe.test(info.exe)) {
          pids.push(pid);
          this.selected.add(pid);
        }
      }
    }
    if (criteria.openPorts?.length) {
      this.listening = proc.listeningInodes(criteria.openPorts);
      for (const pid of proc.holdersOf(this.listening, agentPid)) {
        if (this.selected.has(pid)) continue;
        pids.push(pid);
        this.selected.add(pid);
      }
    }
    for (const pid of criteria.container ? this.containerProcesses() : []) {
      pids.push(pid);
      this.selected.add(pid);
    }
    // Nothing runs it yet: the filter is on but empty until an exec matches or a port opens.
    if (this.filtering && pids.length === 0) pids.push(0);
    this.kernelPids = pids;
    this.initialPids = this.filtering
      ? [...this.selected]
      : this.portSelecting
        ? proc.holdersOf(proc.portInodes(criteria.ports!), agentPid)
        : proc.allPids().filter((p) => p !== agentPid);
  }

  /** The ports whose new listeners are looked for every 2 s: --open-port's, or --port's when it selects alone. */
  get listenPorts(): number[] | undefined {
    if (this.criteria.openPorts?.length) return this.criteria.openPorts;
    return this.portSelecting ? this.criteria.ports : undefined;
  }

  /** The kernel's filter is set up: what listens now is not new (--port alone). */
  begin(): void {
    if (this.portSelecting) this.listening = this.proc.listeningInodes(this.criteria.ports!);
  }

  isSelected(pid: number): boolean {
    return this.selected.has(pid);
  }

  /**
   * Whether a process is watched in the program it now runs: chosen when it or its parent
   * is, or --exe matches the executable (`program` undefined: nothing tells, not chosen).
   * `pending`: the kernel side watched it since its exec, until this decision; not chosen,
   * it leaves the filter and what it did meanwhile is dropped — unless it exec'd again
   * meanwhile: then it stays pending for that exec's record to decide; chosen, the children it
   * forked meanwhile are added, since they did not inherit the filter.
   */
  decideExec(pid: number, program: { ppid?: number; exe: string } | undefined, pending: boolean, kernel: KernelFilter, late = false): boolean {
    const chosen =
      program !== undefined && (this.selected.has(pid) || (program.ppid !== undefined && this.selected.has(program.ppid)) || (this.criteria.exe?.test(program.exe) ?? false));
    // Exec'd again meanwhile (`ip netns exec curl`): a "no" to the first program is no answer for the next.
    // Decided late, from /proc, the program is the one it runs now: no later exec record is owed.
    const execdAgain = pending && kernel.takeReexec(pid) && !late;
    if (!chosen) {
      if (execdAgain) kernel.markPending(pid);
      else if (pending) this.dropped.set(pid, kernel.unwatchPid(pid));
      return false;
    }
    this.dropped.delete(pid);
    if (!this.selected.has(pid)) {
      this.selected.add(pid);
      // A pending process is in the kernel's filter already, or has exited and left it: its pid may be another's next.
      if (!pending) kernel.watchPid(pid);
      this.onChosen?.(pid, late ? 'exe-late' : 'exe');
    }
    if (pending) for (const child of this.proc.childrenOf(pid)) this.watch(child, kernel, 'forked-pending');
    return true;
  }

  /** An exec record: with --exe the kernel watched the process from its exec as pending, until this decision. */
  onExec(pid: number, program: { ppid?: number; exe: string }, kernel: KernelFilter): boolean {
    if (!this.filtering) return true;
    const pending = this.criteria.exe !== undefined && kernel.takePending(pid);
    return this.decideExec(pid, program, pending, kernel);
  }

  /**
   * The first record of a process still pending: its exec record was lost (a full ring
   * buffer), and with it --exe's decision, made now from /proc as of this record (gone,
   * or its pid another's by now: not chosen). True when it is chosen now.
   */
  decideLate(pid: number, ts: bigint, kernel: KernelFilter): boolean {
    return this.criteria.exe !== undefined && kernel.takePending(pid) && this.decideExec(pid, this.proc.processInfo(pid, ts), true, kernel, true);
  }

  /** Select a process and put it in the kernel's filter; false when it was selected already. */
  watch(pid: number, kernel: KernelFilter, by: ChosenBy): boolean {
    if (this.selected.has(pid)) return false;
    this.selected.add(pid);
    kernel.watchPid(pid);
    this.onChosen?.(pid, by);
    return true;
  }

  /** The kernel side stopped watching the pid too: a process that gets it next is not the one chosen. */
  onExit(pid: number): void {
    this.selected.delete(pid);
    this.dropped.delete(pid);
  }

  /**
   * A record of a process --exe did not choose, made while it was pending: not for the output.
   * Up to DROP_MARGIN_NS past the time it left the filter: a syscall on another CPU may have
   * passed the filter just before and stamped its record just after. A socket it opened is
   * remembered, so its TCP state changes are dropped too.
   */
  dropsRecord(pid: number, ts: bigint, openedSocket?: bigint): boolean {
    if (ts > this.lastTs) this.lastTs = ts;
    if (this.dropped.size === 0) return false;
    const until = this.dropped.get(pid);
    if (until === undefined) return false;
    if (ts > until + DROP_MARGIN_NS) {
      this.dropped.delete(pid); // made after it left the filter: another process has the pid now
      return false;
    }
    if (openedSocket !== undefined) {
      this.droppedSockets.add(openedSocket);
      if (this.droppedSockets.size > MAX_DROPPED_SOCKETS) this.droppedSockets.delete(this.droppedSockets.values().next().value!);
    }
    return true;
  }

  /** A chosen program opened this socket: a cookie repeats once the kernel reuses a closed socket's memory. */
  onSocketOpen(cookie: bigint): void {
    if (this.droppedSockets.size > 0) this.droppedSockets.delete(cookie);
  }

  /** A TCP state change of a dropped program's socket is not for the capture either (forgotten at CLOSE). */
  dropsSocketState(cookie: bigint, closed: boolean): boolean {
    if (this.droppedSockets.size === 0 || !this.droppedSockets.has(cookie)) return false;
    if (closed) this.droppedSockets.delete(cookie);
    return true;
  }

  /** Entries no record can need: records a second younger than their time have come through already. */
  sweep(): void {
    for (const [pid, until] of this.dropped) if (this.lastTs > until + 1_000_000_000n) this.dropped.delete(pid);
  }

  /**
   * Processes that started listening on a watched port since the last look: with
   * --open-port they are selected (those returned are new to the selection); with
   * --port alone, returned to get their probes before their first client comes.
   * Only a new listening socket makes this read every process's fds.
   */
  /** --container: processes not selected yet whose container matches. */
  private containerProcesses(): number[] {
    const pattern = this.criteria.container!;
    return this.proc.allPids().filter((pid) => {
      if (pid === this.agentPid || this.selected.has(pid)) return false;
      const c = this.proc.containerOf(pid);
      return c !== undefined && (pattern.test(c.name ?? '') || pattern.test(c.image ?? '') || pattern.test(c.id));
    });
  }

  /** --container: the processes of matching containers that appeared since the last look (every 2 s), now watched. */
  newContainerProcesses(kernel: KernelFilter): number[] {
    if (!this.criteria.container) return [];
    return this.containerProcesses().filter((pid) => this.watch(pid, kernel, 'container'));
  }

  newListeners(kernel: KernelFilter): number[] {
    const ports = this.listenPorts;
    if (!ports) return [];
    const now = this.proc.listeningInodes(ports);
    const fresh = new Set([...now].filter((inode) => !this.listening.has(inode)));
    this.listening = now;
    if (fresh.size === 0) return [];
    return this.proc.holdersOf(fresh, this.agentPid).filter((pid) => this.portSelecting || this.watch(pid, kernel, 'open-port'));
  }
}
