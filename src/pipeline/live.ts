/**
 * A live run: kernel records from the live source, through the same pipeline
 * as replay, and — for `loupe record` or `loupe run --record` — into a capture
 * holding exactly the records the pipeline consumed, in the same order, with
 * the seed and process table the pipeline used. Replaying that capture gives
 * the live run's spans byte for byte (architecture rule 3).
 *
 * What happens here and not in the kernel:
 *  - exec records are held until the process touches a watched socket, so a
 *    capture names the programs it watched and not everything the host ran;
 *  - a process first seen mid-life is looked up in /proc once, and what /proc
 *    says goes into the stream as a process record ahead of its first record;
 *  - `--exe` selects processes by the exec'd path and adds them to the kernel filter;
 *  - payload secrets are masked before anything else sees the bytes, when a capture is written.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ChunkedOutput } from '../export/chunked';
import { CaptureWriter, type CaptureHeader, type ProcessInfo } from '../events/capture';
import { encodeEvent } from '../events/codec';
import { CONSTANTS, ENUMS, HEADER_AT, offsetOf } from '../events/layout';
import { cString } from '../events/codec';
import { formatAddr } from '../events/addr';
import { LiveSource, type GoInstrumented, type InjectCounts, type LiveOptions, type LiveStarted } from '../sources/live/live-source';
import { isGoBinary } from '../sources/live/go-probes';
import * as procfs from '../sources/live/procfs';
import { ProcessSelection, type ChosenBy } from '../discovery/selection';
import { RecordMasking } from './record-masking';
import { exeFilesMatching, exeSearchDirs } from '../discovery/exe-files';
import { OutputPipeline, type RunSummary, type SpanFormat } from './output';
import { validateExportEnv, type ExportOptions } from '../export/export-config';
import { propagatesByRules, type RecordedRules } from '../discovery/config';

export interface LiveSessionOptions extends LiveOptions {
  /** Watch processes whose executable path matches (existing ones and those exec'd later). */
  exe?: RegExp;
  /** Watch the processes listening on these TCP ports (Beyla's open-port discovery), found again every 2 s. */
  openPorts?: number[];
  /** Watch the processes of containers whose name, image or id matches, found again every 2 s. */
  container?: RegExp;
  /** Mask credential headers and query values in payloads (default on). */
  redact: boolean;
  /** Span output; `write` receives it (streamed for jsonl). */
  format: SpanFormat;
  write: (text: string) => void;
  /** Write a capture here (mode 0600). */
  capturePath?: string;
  /** OTLP and Prometheus export. */
  exports?: ExportOptions;
  /** Routes and service names from the configuration: kept in the capture header for replays. */
  rules?: RecordedRules;
  /** Put goroutine and net/http probes on Go programs (bpf/go.bpf.c). */
  goProbes: boolean;
  /** Told of each Go program instrumented, or why one could not be. */
  onGo?: (result: GoResult) => void;
  /** Told of each further OpenSSL library that got TLS probes (tlsDiscover), or could not. */
  onTls?: (lib: string, pid: number, error?: string) => void;
  /** Told of each process --exe, --open-port or --container chose after the start. */
  onChosen?: (pid: number, by: ChosenBy, exe: string | undefined) => void;
}

export type GoResult = GoInstrumented | { pid: number; exe: string; error: string };

export interface LiveProgress {
  records: number;
  lost: number;
  spans: number;
}

const T = ENUMS.loupe_event_type;
const PPID_AT = offsetOf('loupe_proc_exec_event', 'ppid');
const FORK_CHILD_AT = offsetOf('loupe_proc_fork_event', 'child_pid');
const FILENAME_AT = offsetOf('loupe_proc_exec_event', 'filename');
const OPEN = {
  role: offsetOf('loupe_sock_open_event', 'role'),
  family: offsetOf('loupe_sock_open_event', 'family'),
  localAddr: offsetOf('loupe_sock_open_event', 'local_addr'),
  localPort: offsetOf('loupe_sock_open_event', 'local_port'),
  remoteAddr: offsetOf('loupe_sock_open_event', 'remote_addr'),
  remotePort: offsetOf('loupe_sock_open_event', 'remote_port'),
};
const OPEN_COOKIE_AT = offsetOf('loupe_sock_open_event', 'sock_cookie');
const STATE_COOKIE_AT = offsetOf('loupe_tcp_state_event', 'sock_cookie');
const NEW_STATE_AT = offsetOf('loupe_tcp_state_event', 'new_state');
/** The kernel's TCP_CLOSE state: a socket's last. */
const TCP_CLOSE = 7;
/** A live run's tree output prints a trace once no span of it has ended for this long. */
const TREE_QUIET_NS = 2_000_000_000n;
/** Exec records held for processes not yet seen on a socket; the oldest go first past this. */
const MAX_HELD_EXECS = 4096;
/** Fork records held for children not yet seen on a socket, by child; the oldest go first past this. */
const MAX_HELD_FORKS = 4096;

export class LiveSession {
  readonly header: CaptureHeader;
  /** Made in start(), once the clocks give the boot time that sinks add to kernel times. */
  private replay!: OutputPipeline;
  private readonly source: LiveSource;
  private readonly heldExecs = new Map<number, Buffer>();
  private readonly heldForks = new Map<number, Buffer>();
  /** Parents described in the stream for a child's sake, without being seen themselves (so not probed for it). */
  private readonly described = new Set<number>();
  /**
   * Payload masking, for a recording only: what is written to the capture is masked, and the
   * pipeline reads the same bytes so the replay is identical. Without a recording the spans are
   * the same masked or not (span attributes are masked on their own; spansRawAndMasked in
   * test/helpers.ts compares), so its cost (a tenth to a sixth of the agent's CPU per request,
   * BENCHMARKS.md) is not paid. A run that skipped it once split traces across hosts
   * (test/inject-hosts.test.ts): the faster agent left the services more CPU, which exposed a
   * kernel race (a traceparent in a head's second read), not a masking dependence.
   */
  private readonly masking: RecordMasking | undefined;
  /** Processes whose records reach the pipeline. */
  private readonly known = new Set<number>();
  /**
   * What /proc said at start of the processes chosen then (--pid and their children, --exe, --open-port,
   * --container), until their first record: one that ran and exited between two of the agent's batches
   * (kafkajs told to send, under a busy CI) is gone from /proc by then, and was named pid-N.
   */
  private readonly atStart = new Map<number, ProcessInfo>();
  /** Which processes are watched (src/discovery/selection.ts). */
  private readonly selection: ProcessSelection;
  /** The capture being recorded: header first, each batch's records as the batch ends. */
  private capture: CaptureWriter | undefined;
  private failure: Error | undefined;
  private outputTimer: NodeJS.Timeout | undefined;
  private openPortTimer: NodeJS.Timeout | undefined;
  private batchesSinceTick = 0;
  private output!: ChunkedOutput;
  readonly progress: LiveProgress = { records: 0, lost: 0, spans: 0 };
  /** Go programs instrumented (or refused), in the order they were found. */
  readonly goPrograms: GoResult[] = [];
  /** Go processes probed, with the executable (dev:inode) they were probed for. */
  private readonly goPids = new Map<number, string>();
  private readonly goPending = new Set<Promise<void>>();
  /** Executables (dev:inode) that could not be instrumented, reported already. */
  private readonly goRefused = new Set<string>();
  /** Headers the kernel inserted into outgoing requests, read at stop. */
  injected: InjectCounts = { inserted: 0n, refused: 0n, kept: 0n };

  constructor(private readonly options: LiveSessionOptions) {
    this.selection = new ProcessSelection(options, procfs, process.pid);
    const onChosen = options.onChosen;
    if (onChosen) this.selection.onChosen = (pid, by) => onChosen(pid, by, procfs.processInfo(pid)?.exe);
    this.masking = options.redact && options.capturePath ? new RecordMasking() : undefined;
    for (const pid of this.selection.kernelPids) {
      const info = pid > 0 ? procfs.processInfo(pid) : undefined;
      if (info) this.atStart.set(pid, info);
    }
    this.header = {
      eventsVersion: CONSTANTS.LOUPE_EVENTS_VERSION,
      seed: randomBytes(8).toString('hex'),
      host: { hostname: os.hostname(), kernel: os.release(), arch: os.arch() === 'x64' ? 'x86_64' : os.arch() },
      bootTimeNs: '0',
      processes: [],
      config: {
        pids: options.pids ?? [],
        ports: options.ports ?? [],
        exe: options.exe?.source ?? null,
        ...(options.container ? { container: options.container.source } : {}),
        ...(options.openPorts?.length ? { openPorts: options.openPorts } : {}),
        maxPayload: options.maxPayload,
        redact: options.redact,
        ...(options.rules ? { routes: options.rules.routes, services: options.rules.services } : {}),
      },
      createdBy: 'loupe live',
    };
    this.source = new LiveSource(
      {
        ...options,
        pids: this.selection.kernelPids,
        selectByExec: options.exe !== undefined,
        exeFiles: options.exe && exeFilesMatching(options.exe, exeSearchDirs()),
        tcpOptionsOptIn: this.someDoNotPropagate,
      },
      (records) => this.onRecords(records),
    );
  }

  start(): LiveStarted {
    // Checked before a program is attached: an agent that attached and then failed was left running.
    if (this.options.exports) validateExportEnv(this.options.exports);
    const started = this.source.start();
    try {
      return this.begin(started);
    } catch (e) {
      this.source.stopNow();
      clearInterval(this.openPortTimer);
      clearInterval(this.outputTimer);
      throw e;
    }
  }

  private begin(started: LiveStarted): LiveStarted {
    this.header.bootTimeNs = (started.clocks.realtime - started.clocks.monotonic).toString();
    this.header.config.lockdown = started.lockdown;
    // Everything the header says is known now: it goes first, and records follow as they come.
    if (this.options.capturePath) this.capture = new CaptureWriter(this.options.capturePath, this.header, 'stream');
    // Batches arrive through the event loop, so none can come before this returns.
    this.output = new ChunkedOutput(this.options.write);
    this.replay = new OutputPipeline(
      this.header,
      this.options.format,
      this.output.push,
      this.options.exports ? { ...this.options.exports, flushIntervalMs: 1000 } : undefined,
      TREE_QUIET_NS,
    );
    this.selection.begin();
    if (this.selection.listenPorts || this.options.container) {
      this.openPortTimer = setInterval(() => this.findListeners(), 2000);
      this.openPortTimer.unref();
    }
    // Counted as records are taken; progress.lost and .spans at each batch's end.
    this.replay.exporters?.observeAgent(() => ({ records: this.progress.records, lost: this.progress.lost, spans: this.progress.spans }));
    if (this.options.format === 'tree' || this.options.format === 'otlp-json') {
      // Each second: OTLP JSON a request line of what ended; trees gone quiet by kernel time (the
      // records' clock) when no batch came meanwhile, so a host quiet after one request still shows
      // its trace. While batches come, each one's end judges by the records' own time: an agent
      // behind on its records would otherwise cut traces whose spans are still waiting.
      this.outputTimer = setInterval(() => {
        if (this.failure) return;
        if (this.batchesSinceTick === 0) this.replay.flushQuiet(this.source.kernelNow());
        this.batchesSinceTick = 0;
        this.replay.flushOtlpJson();
        this.output.flush();
      }, 1000);
      this.outputTimer.unref();
    }
    for (const pid of this.selection.initialPids) {
      this.considerGo(pid);
      this.considerTls(pid);
    }
    return started;
  }

  /**
   * With tlsDiscover: the OpenSSL libraries this process has mapped that have
   * no TLS probes yet get them (through /proc/PID/root, so a library in
   * another mount namespace is the right file). Checked at start, at each
   * exec, and when a process first touches a socket (its libraries are
   * loaded by then).
   */
  private considerTls(pid: number): void {
    if (!this.options.tlsDiscover) return;
    let maps: string;
    try {
      maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      return;
    }
    for (const lib of new Set([...maps.matchAll(/ (\/\S*\/libssl\.so[.\d]*)$/gm)].map((m) => m[1]!))) {
      const file = `/proc/${pid}/root${lib}`;
      try {
        if (this.source.attachTls(file)) this.options.onTls?.(lib, pid);
      } catch (e) {
        this.options.onTls?.(lib, pid, (e as Error).message);
      }
    }
  }

  /**
   * If this process runs a Go program with net/http, probe it (once per
   * program it runs). Called for each exec of a watched process (with --port
   * alone, once a process is seen on a watched port), and by whoever starts
   * a service and must not let load reach it before its probes.
   */
  considerGo(pid: number): void {
    if (!this.options.goProbes) return;
    let program: string;
    try {
      const st = fs.statSync(`/proc/${pid}/exe`);
      program = `${st.dev}:${st.ino}`;
    } catch {
      return; // gone, or a kernel thread
    }
    const before = this.goPids.get(pid);
    if (before === program) return;
    if (before !== undefined) {
      // It exec'd another program: the probes on the old one go.
      this.goPids.delete(pid);
      this.source.forgetGo(pid);
    }
    if (!isGoBinary(`/proc/${pid}/exe`)) return;
    this.goPids.set(pid, program);
    const done: Promise<void> = this.source
      .instrumentGo(pid, this.propagates(pid))
      .then(
        (r) => {
          if (!r) return;
          this.goPrograms.push(r);
          this.options.onGo?.(r);
        },
        (e: Error) => {
          let exe = '';
          try {
            exe = fs.readlinkSync(`/proc/${pid}/exe`);
          } catch {
            return; // it ended before it could be read: nothing to report
          }
          // Said once per program: a stripped tool run a hundred times is one fact.
          if (this.goRefused.has(program)) return;
          this.goRefused.add(program);
          const result = { pid, exe, error: e.message.replace(/\/proc\/\d+\/exe/g, exe) };
          this.goPrograms.push(result);
          this.options.onGo?.(result);
        },
      )
      .finally(() => this.goPending.delete(done));
    this.goPending.add(done);
  }

  /** Resolves once every Go program found so far has its probes (or was refused). */
  async goSettled(): Promise<void> {
    while (this.goPending.size > 0) await Promise.all([...this.goPending]);
  }

  private onRecords(records: Buffer[]): void {
    if (this.failure) return;
    try {
      // Record by record, through to the output: what a batch holds until its end outlives
      // young-generation collections (see OutputPipeline.pushBuffer).
      const out: Buffer[] = [];
      const where = (i: number) => `live record ${i}`;
      for (const record of records) {
        this.admit(record, out);
        for (let i = 0; i < out.length; i++) {
          this.capture?.write(out[i]!);
          this.replay.pushBuffer(out[i]!, where, this.progress.records++, 'live');
        }
        out.length = 0;
      }
      this.selection.sweep();
      this.replay.flushQuiet();
      this.batchesSinceTick++;
      this.progress.spans = this.replay.pipeline.correlator.stats.spans;
      this.progress.lost = this.replay.pipeline.stats.lostRecords;
      this.output.flush(); // what a batch made is seen now, not a chunk later
      this.capture?.flush(); // a recording killed now keeps every record taken so far
    } catch (e) {
      this.failure = e as Error; // reported by stop(); the source keeps draining into nothing
    }
  }

  /** Decide whether a record goes on, and what must go before it. */
  private admit(record: Buffer, out: Buffer[]): void {
    const type = record.readUInt32LE(HEADER_AT.type);
    const pid = record.readUInt32LE(HEADER_AT.pid);
    switch (type) {
      case T.LOUPE_EV_PROC_EXEC: {
        if (this.selection.filtering) {
          const program = { ppid: record.readUInt32LE(PPID_AT), exe: cString(record, FILENAME_AT, CONSTANTS.LOUPE_FILENAME_LEN) };
          if (!this.selection.onExec(pid, program, this.source)) return;
        }
        // --port alone: a program is probed once it is seen on a watched port, not for running; one
        // probed already is looked at again (this record may be older than its probes: considerGo
        // goes by the program it runs now).
        if (!this.selection.portSelecting || this.known.has(pid) || this.goPids.has(pid)) {
          this.considerGo(pid);
          this.considerTls(pid);
        }
        // A process that exec's again: its new program counts from now.
        if (this.known.has(pid)) out.push(record);
        else this.hold(pid, record);
        return;
      }
      case T.LOUPE_EV_PROC_FORK: {
        // Needed only if the child is gone before /proc tells of it (firstSight): held until then.
        const child = record.readUInt32LE(FORK_CHILD_AT);
        this.heldForks.delete(child);
        this.heldForks.set(child, Buffer.from(record));
        if (this.heldForks.size > MAX_HELD_FORKS) this.heldForks.delete(this.heldForks.keys().next().value!);
        return;
      }
      case T.LOUPE_EV_PROC_EXIT:
        // The kernel side stopped watching the pid too: a process that gets it next is not the one chosen.
        this.selection.onExit(pid);
        this.heldExecs.delete(pid);
        this.heldForks.delete(pid);
        this.described.delete(pid);
        if (this.goPids.delete(pid)) this.source.forgetGo(pid);
        this.masking?.exited(pid);
        if (!this.known.delete(pid)) return; // never seen on a socket: nothing to say
        out.push(record);
        return;
      case T.LOUPE_EV_TCP_STATE: // runs in softirq context: its pid is whoever was on the CPU
        // The socket of a program --exe did not choose: its state changes are not for the capture either.
        if (this.selection.dropsSocketState(record.readBigUInt64LE(STATE_COOKIE_AT), record[NEW_STATE_AT] === TCP_CLOSE)) return;
        out.push(record);
        return;
      case T.LOUPE_EV_LOSS:
        out.push(record);
        return;
      default: {
        const ts = record.readBigUInt64LE(HEADER_AT.ts);
        // Still pending at its first record: its exec record was lost, and with it --exe's decision, made now.
        if (!this.known.has(pid) && this.selection.decideLate(pid, ts, this.source)) this.considerGo(pid);
        const opened = type === T.LOUPE_EV_SOCK_OPEN ? record.readBigUInt64LE(OPEN_COOKIE_AT) : undefined;
        if (this.selection.dropsRecord(pid, ts, opened)) return;
        if (opened !== undefined) this.selection.onSocketOpen(opened);
        if (!this.known.has(pid)) this.firstSight(pid, out, ts);
        if (this.masking) {
          if (type === T.LOUPE_EV_DATA) this.masking.maskData(record);
          else if (type === T.LOUPE_EV_SOCK_CLOSE) this.masking.closed(record);
        }
        if (opened !== undefined) this.natBefore(record, out);
        out.push(record);
      }
    }
  }

  /**
   * A connection that NAT rewrote on this host (DNAT: a published port, a Service): a `nat` record
   * ahead of its sock_open, from the host's connection tracking, so its two ends pair. A server asks
   * which tuple its client used; a client which tuple the server sees (a Service's DNAT happens on the
   * client's host, so only the client's agent can say it).
   */
  private natBefore(open: Buffer, out: Buffer[]): void {
    const role = open[OPEN.role] === ENUMS.loupe_role.LOUPE_ROLE_SERVER ? 'server' : open[OPEN.role] === ENUMS.loupe_role.LOUPE_ROLE_CLIENT ? 'client' : undefined;
    if (!role) return;
    const family = open.readUInt16LE(OPEN.family) === 10 ? 6 : 4;
    const local = open.subarray(OPEN.localAddr, OPEN.localAddr + 16);
    const remote = open.subarray(OPEN.remoteAddr, OPEN.remoteAddr + 16);
    const localPort = open.readUInt16LE(OPEN.localPort);
    const remotePort = open.readUInt16LE(OPEN.remotePort);
    const other = this.source.natPeerView(role, family, local, localPort, remote, remotePort);
    if (!other) return;
    const own = { local: { addr: formatAddr(local, family), port: localPort }, remote: { addr: formatAddr(remote, family), port: remotePort } };
    const peer = { local: { addr: formatAddr(other.src, other.family), port: other.sport }, remote: { addr: formatAddr(other.dst, other.family), port: other.dport } };
    const [client, server] = role === 'server' ? [peer, own] : [own, peer];
    out.push(
      encodeEvent({
        type: 'nat',
        ts: open.readBigUInt64LE(HEADER_AT.ts),
        pid: open.readUInt32LE(HEADER_AT.pid),
        tid: open.readUInt32LE(HEADER_AT.tid),
        cpu: open.readUInt32LE(HEADER_AT.cpu),
        clientLocal: client.local,
        clientRemote: client.remote,
        serverLocal: server.local,
        serverRemote: server.remote,
      }),
    );
  }

  /** Processes that started listening on a watched port since the last look get their probes (and, with --open-port, are watched). */
  private findListeners(): void {
    if (this.failure) return;
    for (const pid of [...this.selection.newListeners(this.source), ...this.selection.newContainerProcesses(this.source)]) {
      this.considerGo(pid);
      this.considerTls(pid);
    }
  }

  private hold(pid: number, record: Buffer): void {
    this.heldExecs.delete(pid);
    this.heldExecs.set(pid, Buffer.from(record)); // copy: the batch buffer is not ours to keep
    if (this.heldExecs.size > MAX_HELD_EXECS) this.heldExecs.delete(this.heldExecs.keys().next().value!);
  }

  /**
   * The first record of a process (made at `seenAtNs`): its exec record if we
   * hold one, and what /proc says of it — unless the process /proc shows
   * started after the record (the pid was reused before we got here).
   */
  private firstSight(pid: number, out: Buffer[], seenAtNs: bigint): void {
    this.known.add(pid);
    // Its calls may carry the TCP option and a header from now on, unless its service says no (until now none did).
    if (this.someDoNotPropagate && this.propagates(pid)) this.source.allowPropagation(pid);
    this.considerTls(pid);
    // Its first record: with --port alone, its first connection on a watched port.
    if (this.selection.portSelecting) this.considerGo(pid);
    const exec = this.heldExecs.get(pid);
    this.heldExecs.delete(pid);
    // A pid the table already knows (an exec record, or a reused pid) keeps what the table says,
    // in the live run and in the replay alike.
    const fork = this.heldForks.get(pid);
    this.heldForks.delete(pid);
    const tableKnows = this.replay.pipeline.processes.get(pid) !== undefined || this.described.has(pid);
    this.described.delete(pid);
    const startInfo = this.atStart.get(pid);
    this.atStart.delete(pid);
    // Gone already: what /proc said at start, unless a fork record says the pid is a child's now.
    const info: ProcessInfo | undefined = tableKnows ? undefined : (procfs.processInfo(pid, seenAtNs) ?? (fork ? undefined : startInfo));
    if (info) {
      // The exec record names the program; /proc adds what it cannot say (the configured service name).
      if (exec) info.exe = cString(exec, FILENAME_AT, CONSTANTS.LOUPE_FILENAME_LEN);
      this.describe(info, out, seenAtNs);
    } else if (!tableKnows && fork) {
      // Gone already (a fork-per-connection server's child): it ran its parent's program, as the fork record says.
      const parent = fork.readUInt32LE(HEADER_AT.pid);
      if (!this.known.has(parent) && !this.described.has(parent) && !this.replay.pipeline.processes.get(parent)) {
        const parentInfo = procfs.processInfo(parent, seenAtNs);
        if (parentInfo) {
          this.describe(parentInfo, out, seenAtNs);
          this.described.add(parent);
        }
      }
      out.push(fork);
    }
    if (exec) out.push(exec);
  }

  /** A service rule turns propagation off for some processes: each is asked (propagates) before its calls carry context. */
  private get someDoNotPropagate(): boolean {
    return this.options.rules?.services.some((r) => r.propagate === false) ?? false;
  }

  /** May this process's calls carry trace context on the wire (its service rule's `propagate`)? */
  private propagates(pid: number): boolean {
    if (!this.someDoNotPropagate) return true;
    const info = procfs.processInfo(pid);
    return info ? propagatesByRules(info, this.options.rules!.services) : false;
  }

  /** What /proc said of a process, into the stream ahead of its records: the live pipeline learns it from there, as a replay will. */
  private describe(info: ProcessInfo, out: Buffer[], seenAtNs: bigint): void {
    // Arguments carry secrets as often as headers do (curl -H 'Authorization: ...', passwords, tokens in URLs).
    if (this.options.redact && info.cmdline) info.cmdline = info.cmdline.slice(0, 1);
    out.push(encodeEvent({ type: 'proc_info', ts: seenAtNs, pid: info.pid, tid: 0, cpu: 0, info }));
  }

  /**
   * Detach, take every record still in the ring buffer, end the pipeline and
   * close the capture (written all along: header first, then the records, the
   * processes the run learnt among them).
   */
  async stop(): Promise<RunSummary> {
    clearInterval(this.outputTimer);
    clearInterval(this.openPortTimer);
    await this.goSettled();
    this.injected = this.source.injectCounts();
    await this.source.stop();
    const summary = this.replay.finish();
    this.output.flush();
    await summary.exporters?.shutdown();
    this.capture?.close();
    if (this.failure) throw this.failure;
    return summary;
  }
}
