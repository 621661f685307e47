/**
 * Per-connection state: who is on which side, the 4-tuple, and which parser
 * gets the bytes. Keyed by the process and the socket: its cookie when the
 * source gives one (the live kernel side does), so a socket reached through
 * several fds (dup, try_clone: read on one, written on another) is one
 * connection, closed when its last fd closes; else by pid+fd. A new open under
 * the same key replaces the old connection, as fd reuse does in the kernel.
 */
import type { DataEvent, Endpoint, Event, Role, SockOpenEvent } from '../events/types';
import { CONSTANTS } from '../events/layout';
import { createParser } from '../parsers/protocols';
import type { ParserOptions } from '../parsers/module';
import type { MessageBase, ProtocolParser, Side } from '../parsers/types';
import { detectProtocol, framesAs, GIVE_UP_BYTES, MAX_DETECT_BYTES, NEED_MORE } from '../parsers/detect';
import type { Protocol } from '../parsers/protocols';

export interface Connection {
  /** Sequence number in order of first sight; stable across replays. */
  id: number;
  pid: number;
  /** The fd it was first seen on. */
  fd: number;
  /** Every fd of the process that names this socket. */
  fds: Set<number>;
  role: Role;
  local?: Endpoint;
  remote?: Endpoint;
  cookie: bigint;
  openedTs: bigint;
  /** The thread that opened it (connect or accept), when the capture saw it open. */
  openedTid?: number;
  /**
   * The socket that thread last moved bytes on before it opened this one, and
   * the one it moved bytes on before its latest data record here: an event
   * loop's proxying shows as a read of the request right before the upstream
   * connect or write.
   */
  openedAfter?: number;
  previousOnThread?: number;
  lastTs: bigint;
  /** True when the capture began after the connection was opened. */
  midStream: boolean;
  /** Its bytes come from a TLS library's plaintext (SSL_read/SSL_write), not the socket. */
  tls: boolean;
  /** Set once detection decided: a protocol name, or 'unknown' when nothing matched. */
  protocol?: string;
  parser?: ProtocolParser;
  /** Data held back while the protocol is still undecided. */
  undetected: DataEvent[];
  /**
   * Records of each direction that did not start a message the detector
   * knows, kept (within GIVE_UP_BYTES) in case the other direction names the
   * protocol: a PostgreSQL client's Parse/Bind/Execute is no evidence alone,
   * but once the server's ReadyForQuery names the protocol it is the request.
   */
  passedOver?: DataEvent[];
  /** Bytes moved and bytes lost (cut copies) per direction of the process. */
  bytes: { egress: number; ingress: number };
  lostBytes: { egress: number; ingress: number };
  /** The socket's write sequence after the last write recorded (records with LOUPE_DATA_F_SEQ). */
  writtenSeq?: number;
  /** Reads ahead of every write recorded: they wait for the write that was still at its syscall's exit. */
  heldReads?: DataEvent[];
  /** Its process writes where records do not see (sendfile, splice, io_uring): a read ahead says nothing. */
  unseenWrites?: boolean;
  /** Its parser threw (see ParserFault): what it said. */
  fault?: string;
}

/** A data record's socket and direction in one number (no allocation per record): connection id * 2, + 1 for a read. */
export const threadIo = (connId: number, ingress: boolean): number => connId * 2 + (ingress ? 1 : 0);

export interface ConnectionListener {
  onOpen?(conn: Connection): void;
  onMessage(conn: Connection, message: MessageBase): void;
  onClose(conn: Connection, ts: bigint, reason: CloseReason): void;
  /** Its parser threw: the connection is parsed no further (its bytes are still counted). */
  onFault?(conn: Connection, fault: ParserFault): void;
}

/** A parser's exception, caught: it costs its connection only. */
export interface ParserFault {
  ts: bigint;
  /** The side whose bytes it was reading, and how far into that side's stream they reach. */
  side: Side;
  streamOffset: number;
  message: string;
}

/**
 * closed: the process closed it (or exited); captureEnd: the input ended with
 * it still open; idle: nothing moved on it for longer than the idle timeout.
 */
export type CloseReason = 'closed' | 'captureEnd' | 'idle';

export function sideOf(role: Role, direction: 'egress' | 'ingress'): Side {
  if (role === 'server') return direction === 'ingress' ? 'client' : 'server';
  return direction === 'egress' ? 'client' : 'server';
}

export interface TrackerOptions {
  /** Protocol by port (either end), instead of detection: `--port 8443=http1`. */
  portProtocols?: ReadonlyMap<number, Protocol>;
  parserOptions?: ParserOptions;
}

/** Threads whose last socket is remembered; the first seen forgotten past this. */
const MAX_THREADS = 65536;

/**
 * How long a read waits, on the records' clock, for the write it is ahead of.
 * The wait is a preempted thread's, between its bytes leaving and its syscall's
 * exit: a time slice or a few of a busy scheduler; a second is far past that.
 */
const HOLD_READ_NS = 1_000_000_000n;
/** Reads one connection may hold back before they go as they came. */
const MAX_HELD_READS = 64;

/** Sequence a is past b (TCP sequence arithmetic, mod 2^32). */
const seqAfter = (a: number, b: number): boolean => {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x8000_0000;
};

/** Sockets closed unused remembered for a forked child to take over (see closedUnused); the oldest go first. */
const MAX_CLOSED_UNUSED = 1024;

/** Two lists of one connection's records, each in the order they came, as one (by time; the first list first on a tie). */
function mergeByTime(a: DataEvent[], b: DataEvent[]): DataEvent[] {
  const out: DataEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.ts <= b[j]!.ts)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

export class ConnectionTracker {
  /**
   * Open connections by pid, then by socket: its cookie, or -1 - fd without one. Two levels, not a
   * string key: a key string made from a BigInt cookie cost 150 ns per record. Each inner map is in
   * id order (a connection goes in when made), which is the order closes are said in.
   */
  private readonly byPid = new Map<number, Map<bigint | number, Connection>>();
  /** The open connection each socket cookie was last opened as: for a socket handed to another process. */
  private readonly byCookie = new Map<bigint, Connection>();
  /**
   * Sockets a process opened and closed its fd of before moving a byte: the
   * process it forked may use the socket next (PostgreSQL's postmaster closes
   * its copy right after forking the backend, before the backend's first read).
   */
  private readonly closedUnused = new Map<bigint, Connection>();
  /** Per thread (by tid, unique on a host): the socket it last moved bytes on, as threadIo() says it. */
  private readonly lastOnThread = new Map<number, number>();
  private count = 0;
  private nextId = 1;
  /** Connections with reads held back (see heldReads). */
  private readonly holding = new Set<Connection>();
  /** State the parsers of one protocol share across this run's connections (ParserOptions.shared). */
  private readonly sharedByParsers = new Map<string, unknown>();

  constructor(
    private readonly listener: ConnectionListener,
    private readonly options: TrackerOptions = {},
  ) {}

  private static socketOf(ev: { fd: number; cookie: bigint }): bigint | number {
    return ev.cookie !== 0n ? ev.cookie : -1 - ev.fd;
  }

  private lookup(ev: { pid: number; fd: number; cookie: bigint }): Connection | undefined {
    return this.byPid.get(ev.pid)?.get(ConnectionTracker.socketOf(ev));
  }

  /** The open connection of a process's socket, by its cookie. */
  connectionOf(pid: number, cookie: bigint): Connection | undefined {
    return this.byPid.get(pid)?.get(cookie);
  }

  private insert(conn: Connection): void {
    let ofPid = this.byPid.get(conn.pid);
    if (!ofPid) this.byPid.set(conn.pid, (ofPid = new Map()));
    ofPid.set(ConnectionTracker.socketOf(conn), conn);
    if (conn.cookie !== 0n) this.byCookie.set(conn.cookie, conn);
    this.count++;
  }

  private remove(conn: Connection): void {
    const ofPid = this.byPid.get(conn.pid);
    if (!ofPid?.delete(ConnectionTracker.socketOf(conn))) return;
    if (this.byCookie.get(conn.cookie) === conn) this.byCookie.delete(conn.cookie);
    this.count--;
    if (ofPid.size === 0) this.byPid.delete(conn.pid);
  }

  /** Every open connection, in id order. */
  private all(): Connection[] {
    const all: Connection[] = [];
    for (const ofPid of this.byPid.values()) for (const conn of ofPid.values()) all.push(conn);
    return all.sort((a, b) => a.id - b.id);
  }

  get open(): number {
    return this.count;
  }

  handle(ev: Event): void {
    if (this.holding.size > 0) this.releaseOverdue(ev.ts);
    switch (ev.type) {
      case 'sock_open':
        this.onOpen(ev);
        break;
      case 'data':
        this.inOrder(ev);
        break;
      case 'sock_close': {
        const conn = this.lookup(ev);
        if (!conn) break;
        conn.fds.delete(ev.fd);
        if (conn.fds.size === 0) this.close(conn, ev.ts);
        break;
      }
      case 'proc_exit':
        for (const conn of [...(this.byPid.get(ev.pid)?.values() ?? [])]) this.close(conn, ev.ts);
        break;
      default:
        break;
    }
  }

  /**
   * Puts a connection's records in the order its bytes moved. A record is
   * made at its syscall's exit: a client whose writing thread is preempted
   * there lets the server answer and another thread (Go's readLoop) read the
   * answer first. Such a read is ahead of every write recorded (its `seq`),
   * and waits for the write — which then goes first, stamped no later than
   * the read it overtook. A connection whose reads run ahead for another
   * reason (writes records do not see) stops being held at its first.
   */
  private inOrder(ev: DataEvent): void {
    const conn = this.lookup(ev);
    if (!conn || ev.seq === undefined || conn.unseenWrites) {
      if (conn?.heldReads) this.release(conn, undefined);
      this.onData(ev, conn);
      return;
    }
    if (ev.direction === 'ingress') {
      if (conn.heldReads || (conn.writtenSeq !== undefined && seqAfter(ev.seq, conn.writtenSeq))) {
        (conn.heldReads ??= []).push(ev);
        this.holding.add(conn);
        if (conn.heldReads.length > MAX_HELD_READS) this.giveUpHolding(conn);
        return;
      }
      this.onData(ev, conn);
      return;
    }
    if (conn.heldReads) {
      // Reads that returned before this write queued a byte came first: unseen writes put them ahead.
      const before = (ev.seq - ev.bytes) >>> 0;
      if (!seqAfter(conn.heldReads[0]!.seq!, before)) {
        this.giveUpHolding(conn);
        this.onData(ev, conn);
        conn.writtenSeq = ev.seq;
        return;
      }
      const overtaken = conn.heldReads[0]!.ts;
      this.onData(overtaken < ev.ts ? { ...ev, ts: overtaken } : ev, conn);
      conn.writtenSeq = ev.seq;
      this.release(conn, ev.seq);
      return;
    }
    this.onData(ev, conn);
    conn.writtenSeq = ev.seq;
  }

  /** Held reads up to `seq` (all without one) go on, in their order. */
  private release(conn: Connection, seq: number | undefined): void {
    const held = conn.heldReads!;
    let n = 0;
    while (n < held.length && (seq === undefined || !seqAfter(held[n]!.seq!, seq))) n++;
    const go = held.splice(0, n);
    if (held.length === 0) {
      conn.heldReads = undefined;
      this.holding.delete(conn);
    }
    for (const r of go) this.onData(r, conn);
  }

  /** The write its reads wait for is not coming: they go as they came, and this connection is no longer held. */
  private giveUpHolding(conn: Connection): void {
    conn.unseenWrites = true;
    this.release(conn, undefined);
  }

  private releaseOverdue(now: bigint): void {
    for (const conn of [...this.holding]) if (conn.heldReads![0]!.ts + HOLD_READ_NS < now) this.giveUpHolding(conn);
  }

  private onOpen(ev: SockOpenEvent): void {
    const old = this.lookup(ev);
    if (old) this.close(old, ev.ts);
    // Role unknown: the kernel side met this socket mid-life — opened before the capture began, or by the process that handed it over.
    const handed = ev.role === 'unknown' ? this.handedOver(ev) : undefined;
    if (handed) {
      this.adopt(handed, ev);
      return;
    }
    const conn = this.create(ev.pid, ev.fd, ev.ts, ev.cookie, ev.role === 'unknown');
    conn.role = ev.role;
    if (ev.role !== 'unknown') {
      conn.openedTid = ev.tid;
      conn.openedAfter = this.lastOnThread.get(ev.tid);
    }
    conn.local = ev.local;
    conn.remote = ev.remote;
    conn.writtenSeq = ev.seq;
    this.register(conn);
  }

  /**
   * The connection another process opened this socket as, before any byte moved on it: a
   * fork-per-connection server (PostgreSQL's postmaster accepts, forks a backend and closes its
   * copy) or a socket passed over a Unix socket.
   */
  private handedOver(ev: { pid: number; cookie: bigint }): Connection | undefined {
    if (ev.cookie === 0n) return undefined;
    const handed = this.byCookie.get(ev.cookie) ?? this.closedUnused.get(ev.cookie);
    if (!handed || handed.pid === ev.pid || handed.role === 'unknown' || handed.bytes.egress !== 0 || handed.bytes.ingress !== 0) return undefined;
    this.closedUnused.delete(ev.cookie);
    return handed;
  }

  /** The process's own connection on a handed-over socket: whole (its open was seen), not joined mid-stream. */
  private adopt(handed: Connection, ev: { pid: number; fd: number; cookie: bigint }): Connection {
    const conn = this.create(ev.pid, ev.fd, handed.openedTs, ev.cookie, false);
    conn.role = handed.role;
    conn.local = handed.local;
    conn.remote = handed.remote;
    conn.writtenSeq = handed.writtenSeq;
    this.register(conn);
    return conn;
  }

  /** A new connection, known where it is known: the protocol its port is configured to, tracked, announced. */
  private register(conn: Connection): void {
    const configured = this.configuredProtocol(conn);
    if (configured) this.attach(conn, configured);
    this.insert(conn);
    this.listener.onOpen?.(conn);
  }

  private create(pid: number, fd: number, ts: bigint, cookie: bigint, midStream: boolean): Connection {
    return {
      id: this.nextId++,
      pid,
      fd,
      fds: new Set([fd]),
      role: 'unknown',
      cookie,
      openedTs: ts,
      lastTs: ts,
      midStream,
      tls: false,
      undetected: [],
      bytes: { egress: 0, ingress: 0 },
      lostBytes: { egress: 0, ingress: 0 },
    };
  }

  /** `known`: the record's connection when the caller looked it up already (one lookup a record). */
  private onData(ev: DataEvent, known?: Connection): void {
    let conn = known ?? this.lookup(ev);
    if (!conn) {
      const handed = this.handedOver(ev);
      if (handed) conn = this.adopt(handed, ev);
      else {
        // The capture began after this connection opened: learn what we can from the bytes.
        conn = this.create(ev.pid, ev.fd, ev.ts, ev.cookie, true);
        this.insert(conn);
        this.listener.onOpen?.(conn);
      }
    }
    conn.fds.add(ev.fd);
    const plaintext = (ev.flags & CONSTANTS.LOUPE_DATA_F_TLS) !== 0;
    if (plaintext && !conn.tls) {
      // From here the TLS library hands us the plaintext: what came before was the
      // handshake's ciphertext, so detection starts again on the plaintext.
      conn.tls = true;
      conn.protocol = undefined;
      conn.parser = undefined;
      conn.undetected = [];
      const configured = this.configuredProtocol(conn);
      if (configured) this.attach(conn, configured);
    } else if (!plaintext && conn.tls) {
      return; // ciphertext of a connection we read in plaintext
    }
    conn.lastTs = ev.ts;
    conn.previousOnThread = this.lastOnThread.get(ev.tid);
    this.lastOnThread.set(ev.tid, threadIo(conn.id, ev.direction === 'ingress'));
    if (this.lastOnThread.size > MAX_THREADS) this.lastOnThread.delete(this.lastOnThread.keys().next().value!);
    // Named properties, not [ev.direction]: this runs per record.
    if (ev.direction === 'egress') {
      conn.bytes.egress += ev.bytes;
      conn.lostBytes.egress += ev.bytes - ev.data.length;
    } else {
      conn.bytes.ingress += ev.bytes;
      conn.lostBytes.ingress += ev.bytes - ev.data.length;
    }
    if (conn.parser) this.deliver(conn, ev);
    else if (conn.protocol === undefined) this.detect(conn, ev);
    // else: a protocol with no parser yet, or none recognised: counted, not parsed
  }

  private deliver(conn: Connection, ev: DataEvent): void {
    const side = sideOf(conn.role, ev.direction);
    const parser = conn.parser;
    if (!parser) return; // it threw on an earlier record
    try {
      if (ev.data.length > 0) parser.feed(side, { data: ev.data, ts: ev.ts, tid: ev.tid });
      const lost = ev.bytes - ev.data.length;
      if (lost > 0) parser.gap(side, lost, ev.ts);
    } catch (e) {
      this.parserThrew(conn, side, ev.ts, e);
    }
  }

  /**
   * A parser must never throw (fuzz targets check it); if one does, the bytes
   * of any client of a watched port must not stop the pipeline: the fault
   * costs this connection its parsing, and is said.
   */
  private parserThrew(conn: Connection, side: Side, ts: bigint, e: unknown): void {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    conn.parser = undefined;
    conn.fault = message;
    const streamOffset = sideOf(conn.role, 'egress') === side ? conn.bytes.egress : conn.bytes.ingress;
    this.listener.onFault?.(conn, { ts, side, streamOffset, message });
  }

  private endParser(conn: Connection, ts: bigint): void {
    try {
      conn.parser?.end(ts);
    } catch (e) {
      this.parserThrew(conn, 'client', ts, e);
    }
  }

  /**
   * Hold data until its direction's prefix names a protocol, then replay what
   * was held into the parser, so detection does not depend on how the first
   * bytes were cut into records.
   */
  private detect(conn: Connection, ev: DataEvent): void {
    if (ev.data.length === 0 && ev.bytes === 0) return;
    if (ev.bytes > ev.data.length) {
      // A cut copy before we know the protocol: what we hold is no longer a clean prefix.
      conn.undetected = [];
      if (ev.data.length === 0) return;
    }
    conn.undetected.push(ev);
    const sameDirection = conn.undetected.filter((e) => e.direction === ev.direction);
    const prefix = Buffer.concat(sameDirection.map((e) => e.data));
    const detected = detectProtocol(prefix);
    if (detected === NEED_MORE && prefix.length < MAX_DETECT_BYTES) return;
    if (detected === NEED_MORE || detected === undefined) {
      // Not a message start. A capture that joined mid-connection sees the tail
      // of a message first, so try again from the next record in this direction,
      // up to a bound.
      (conn.passedOver ??= []).push(...sameDirection);
      conn.undetected = conn.undetected.filter((e) => e.direction !== ev.direction);
      if (conn.bytes.egress + conn.bytes.ingress > GIVE_UP_BYTES) {
        conn.protocol = 'unknown';
        conn.undetected = [];
        conn.passedOver = undefined;
      }
      return;
    }
    if (conn.role === 'unknown' && detected.sender) {
      // A request we wrote makes us the client; a request we read makes us the server.
      const weSent = ev.direction === 'egress';
      conn.role = (detected.sender === 'client') === weSent ? 'client' : 'server';
    }
    const held = conn.undetected;
    conn.undetected = [];
    const passed = conn.passedOver ?? [];
    conn.passedOver = undefined;
    this.attach(conn, detected.protocol);
    if (!conn.parser) return;
    // Replay the detected direction's held bytes, and what the other side sent after them.
    const firstDetected = held.findIndex((e) => e.direction === ev.direction);
    const replay = held.slice(firstDetected);
    // The other direction's records the detector passed over, from the first that is whole messages of this
    // protocol: the exchange the protocol was named in is not lost (they came before, in record order).
    const other = passed.filter((e) => e.direction !== ev.direction);
    const from = other.findIndex((e) => framesAs(detected.protocol, e.data));
    const earlier = from < 0 ? [] : other.slice(from);
    for (const e of mergeByTime(earlier, replay)) this.deliver(conn, e);
  }

  private attach(conn: Connection, protocol: string, upgraded = false): void {
    conn.protocol = protocol;
    const parser = createParser(protocol, { ...this.options.parserOptions, upgraded, shared: this.sharedByParsers });
    if (!parser) return;
    parser.onMessage = (message) => this.listener.onMessage(conn, message);
    conn.parser = parser;
    // A connection that switches protocols (HTTP/1.1 Upgrade: h2c) gets the new protocol's parser, stream 1
    // answering the upgraded request; one switched to what Loupe does not read is left to the old parser's silence.
    parser.onSwitch = (next, side, leftover, chunk) => {
      if (next === undefined) return;
      this.attach(conn, next, true);
      if (leftover.length) conn.parser!.feed(side, { data: leftover, ts: chunk.ts, tid: chunk.tid }); // inside deliver's guard
    };
  }

  /** A protocol named for the connection's port, if any. */
  private configuredProtocol(conn: Connection): Protocol | undefined {
    const ports = this.options.portProtocols;
    if (!ports || ports.size === 0) return undefined;
    return (conn.local && ports.get(conn.local.port)) || (conn.remote && ports.get(conn.remote.port)) || undefined;
  }

  private close(conn: Connection, ts: bigint): void {
    if (conn.heldReads) this.release(conn, undefined);
    this.remove(conn);
    if (conn.cookie !== 0n && conn.role !== 'unknown' && conn.bytes.egress === 0 && conn.bytes.ingress === 0) {
      this.closedUnused.set(conn.cookie, conn);
      if (this.closedUnused.size > MAX_CLOSED_UNUSED) this.closedUnused.delete(this.closedUnused.keys().next().value!);
    }
    conn.lastTs = ts;
    this.endParser(conn, ts);
    this.listener.onClose(conn, ts, 'closed');
  }

  /** Forget connections nothing moved on since `before` (their close was never seen). */
  expireIdle(before: bigint, now: bigint): void {
    for (const conn of this.all()) {
      if (conn.lastTs >= before) continue;
      if (conn.heldReads) this.release(conn, undefined);
      this.remove(conn);
      this.endParser(conn, now);
      this.listener.onClose(conn, now, 'idle');
    }
  }

  /** End of input: close everything still open, in id order so output does not depend on map history. */
  finish(ts: bigint): void {
    for (const conn of this.all()) if (conn.heldReads) this.release(conn, undefined);
    for (const conn of this.all()) {
      this.remove(conn);
      this.listener.onClose(conn, ts, 'captureEnd');
    }
  }
}
