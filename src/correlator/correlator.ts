/**
 * Turns parsed messages into spans and decides which trace each belongs to.
 *
 * Where a span's parent comes from, strongest first:
 *  - server span: the request's `traceparent`; else the client span whose
 *    connection is this one seen from the other end on the same host
 *    (connection-pair matching); else a new trace.
 *  - client span: a `traceparent` already on the outgoing request (an SDK or
 *    our injection put it there); else, in a Go program, the server request
 *    its goroutine (or the goroutine's ancestors) serves; else, elsewhere, the
 *    server request the same thread serves — only when it serves exactly one,
 *    since a wrong parent is worse than none; else a new trace.
 * The attribute `loupe.context` says which rule applied.
 *
 * Goroutines inherit context when they are created, as Go's context.Context
 * does: a child goroutine started while its parent serves a request carries
 * that request, at any depth, even after the parent exits. Goroutine ids may be
 * reused: an exit forgets the id, a create starts it afresh.
 *
 * State is bounded on the events' own clock: requests that get no answer end
 * as incomplete after `responseTimeoutNs`; goroutine entries are capped.
 */
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import type { Endpoint, GoRequestEvent, GoroutineEvent } from '../events/types';
import type { ProcessTable } from '../discovery/processes';
import { threadIo, type CloseReason, type Connection } from '../streams/connections';
import type { MessageBase } from '../parsers/types';
import type { ConnectionView, MessageRole, PairingRules, ProtocolModule, RedactionOptions, SpanStart } from '../parsers/module';
import { moduleOf } from '../parsers/protocols';
import { Router } from '../routes/routes';
import { ATTR_HTTP_ROUTE } from '@opentelemetry/semantic-conventions';
import type { IdGenerator } from './ids';
import type { Span } from './span';
import { parseTraceparent } from './traceparent';
import { LOUPE_ATTR } from '../parsers/spans';

export interface CorrelatorOptions {
  redaction: RedactionOptions;
  /** http.route of server spans: configured patterns, ignored paths, the heuristic. */
  routes: Router;
  /** A request with no response after this long (event time) ends as incomplete. */
  responseTimeoutNs: bigint;
  /** Goroutine entries kept per host; the least recently used go first. */
  maxGoroutines: number;
}

export const DEFAULT_CORRELATOR_OPTIONS: CorrelatorOptions = {
  redaction: { queryValues: true },
  routes: new Router(),
  responseTimeoutNs: 60_000_000_000n,
  maxGoroutines: 100_000,
};

interface SpanContext {
  traceId: string;
  spanId: string;
  traceState: string;
  remoteSampled?: boolean;
}

interface InFlight {
  span: Span;
  conn: Connection;
  /** The request as sent: both ends of one connection must see the same one. */
  fingerprint: string;
  /** A server span already took this client span as its parent. */
  claimed: boolean;
  /** A server request that found no client to pair with when it was parsed: a later one may still claim it. */
  awaitingClient?: boolean;
  /** Holds a place in the answer order for a request that makes no span (database start-up, ...). */
  silent?: boolean;
  /** The other end of the connection pair that joined this span, and whether this span has ended. */
  pairedWith?: InFlight;
  ended?: boolean;
  /** HTTP/2: the stream whose response ends this span. */
  streamId?: number;
  threadKey?: string;
  /** Go: the goroutine serving this server request, and when its handler started. */
  goid?: bigint;
  handlerStartNs?: bigint;
  handlerEndNs?: bigint;
}

interface Goroutine {
  /** The server request this goroutine serves right now. */
  serving?: InFlight;
  /** The request context it inherited from the goroutine that created it. */
  inherited?: SpanContext;
}

interface PendingGoCall {
  goid: bigint;
  ts: bigint;
  /** What the kernel side reported for the call (client: method and URL path). */
  method?: string;
  path?: string;
  host?: string;
  /** The ids the kernel side chose for this span, and put on the wire when it could. */
  ids?: { traceId: string; spanId: string };
  /** Client calls: when the call returned, if it did before its request's bytes came. */
  endedNs?: bigint;
}

/**
 * How long a Go client call that returned stays matchable to its request's
 * bytes. A write's record is made at the syscall's exit: a writer preempted
 * there (2 busy cores, CI) lets the peer answer, another thread read the
 * answer and roundTrip return first — the call's end then comes before the
 * request it made.
 */
const ENDED_CALL_GRACE_NS = 1_000_000_000n;

/** Trace ids the kernel side chose that the correlator knows by another id; the oldest go first past this. */
const MAX_TRACE_ALIASES = 65536;

export interface CorrelatorStats {
  spans: number;
  /** Responses with no request before them (capture began mid-exchange). */
  orphanResponses: number;
  /** Requests that ended without a response (closed, timed out, or the capture ended). */
  incomplete: number;
  parseErrors: number;
  /** Go request events that matched no connection or message. */
  unmatchedGoRequests: number;
  /** Goroutine entries dropped to stay under maxGoroutines. */
  evictedGoroutines: number;
}

/** How long a server request that ended awaiting its client's stays claimable (see endedAwaiting). */
const AWAIT_CLIENT_AFTER_END_NS = 1_000_000_000n;

/** How long before a server sees a request the NATed client may have sent it. */
const NAT_WINDOW_NS = 1_000_000_000n;

const tupleKey = (local: Endpoint, remote: Endpoint) => `${local.addr}|${local.port}|${remote.addr}|${remote.port}`;

/** A connection's 4-tuple key as it sees it (local first), made once per pair of endpoints: asked on every request. */
const ownKeys = new WeakMap<Endpoint, { remote: Endpoint; own: string; reversed: string }>();
function connKey(local: Endpoint, remote: Endpoint, reversed: boolean): string {
  let k = ownKeys.get(local);
  if (k?.remote !== remote) ownKeys.set(local, (k = { remote, own: tupleKey(local, remote), reversed: tupleKey(remote, local) }));
  return reversed ? k.reversed : k.own;
}
const ctxOf = (span: Span): SpanContext => ({ traceId: span.traceId, spanId: span.spanId, traceState: span.traceState, remoteSampled: span.remoteSampled });
/** The span becomes a child of this context: its trace, parent, state and sampled flag. */
function parentTo(span: Span, ctx: SpanContext): void {
  span.traceId = ctx.traceId;
  span.parentSpanId = ctx.spanId;
  span.traceState = ctx.traceState;
  span.remoteSampled = ctx.remoteSampled;
}
/** W3C trace-flags: bit 0 says the caller sampled the trace. */
const sampledFlag = (flags: number) => (flags & 1) === 1;

export class Correlator {
  readonly stats: CorrelatorStats = { spans: 0, orphanResponses: 0, incomplete: 0, parseErrors: 0, unmatchedGoRequests: 0, evictedGoroutines: 0 };
  private readonly inFlight = new Map<number, InFlight[]>();
  /** Open client connections by their 4-tuple, for connection-pair matching. */
  private readonly clientsByTuple = new Map<string, Connection>();
  /** Open server connections by their 4-tuple seen from the client: tuples visible from both ends. */
  private readonly serversByClientTuple = new Map<string, Connection>();
  /** Unclaimed client requests by their bytes, for pairing across NAT. */
  private readonly clientsByFingerprint = new Map<string, InFlight[]>();
  /** Server requests in flight per thread (pid:tid). */
  private readonly serving = new Map<string, InFlight[]>();
  /** Open connections by pid:fd, to find the one a Go event names. */
  private readonly connsByFd = new Map<string, Connection>();
  /** Goroutines by pid:goid, least recently used first. */
  private readonly goroutines = new Map<string, Goroutine>();
  /** Processes that sent Go runtime events: threads say nothing about their requests. */
  private readonly goPids = new Set<number>();
  /** Go handler starts whose request message has not completed yet (Go reads bodies inside the handler). */
  private readonly goServerStarts = new Map<string, PendingGoCall[]>();
  /** Go client calls not yet seen on the wire: by pid:fd when the fd is known, by pid otherwise. */
  private readonly goClientCalls = new Map<string, PendingGoCall[]>();
  /** Kernel-chosen trace id -> the trace the correlator put that request in (see adoptKernelIds). */
  private readonly traceAliases = new Map<string, string>();
  /**
   * Server spans begun in a trace of their own while their client's request may
   * still come (see claimWaitingServer), by that trace: spans of their subtree
   * that end meanwhile are held here, so none goes out in a trace its root
   * then leaves.
   */
  private readonly awaitingTraces = new Map<string, { server: InFlight; held: Span[]; endedNs?: bigint }>();
  /**
   * Server requests that ended still awaiting their client's, by server connection id: a TLS
   * client's SSL_write record comes when SSL_write returns, and a writer preempted there (2 busy
   * cores) lets the server read, answer and finish first. They stay claimable for
   * AWAIT_CLIENT_AFTER_END_NS of the records' time, their subtree held.
   */
  private readonly endedAwaiting = new Map<number, InFlight[]>();
  /**
   * Event loops (nginx, HAProxy, Node): the server request each thread (pid:tid)
   * finished reading last, and the one a client connection was opened right
   * after. A proxy opens its upstream connection, or writes to a kept-alive
   * one, in the same turn of its loop as it reads the request that calls for
   * it, before it reads from any other socket.
   */
  private readonly lastRead = new Map<string, InFlight>();
  private readonly openedFor = new WeakMap<Connection, InFlight>();
  /** Client connections whose first request was made (later ones follow lastRead). */
  private readonly usedOnce = new WeakSet<Connection>();
  /** Per connection: responses still owed to requests that timed out; they must not pair with later requests. */
  private readonly lateResponses = new Map<number, number>();
  private nextSweep = 0n;

  constructor(
    private readonly ids: IdGenerator,
    private readonly processes: ProcessTable,
    private readonly emit: (span: Span) => void,
    private readonly options: CorrelatorOptions = DEFAULT_CORRELATOR_OPTIONS,
  ) {}

  /** Entries held, for tests that check memory stays flat. */
  stateSize(): Record<string, number> {
    const sum = (m: Map<string | number, unknown[]>) => [...m.values()].reduce((n, l) => n + l.length, 0);
    return {
      inFlight: sum(this.inFlight), clientsByTuple: this.clientsByTuple.size, serving: sum(this.serving),
      serversByClientTuple: this.serversByClientTuple.size, clientsByFingerprint: sum(this.clientsByFingerprint),
      connsByFd: this.connsByFd.size, goroutines: this.goroutines.size, goServerStarts: sum(this.goServerStarts),
      goClientCalls: sum(this.goClientCalls),
    };
  }

  onOpen(conn: Connection): void {
    this.connsByFd.set(`${conn.pid}:${conn.fd}`, conn);
    this.indexTuple(conn);
    if (conn.role === 'client' && conn.openedTid !== undefined) {
      const last = this.lastRead.get(`${conn.pid}:${conn.openedTid}`);
      if (last) this.openedFor.set(conn, last);
    }
  }

  /** Connections already indexed by their 4-tuple (weak: it ends with the connection). */
  private readonly indexed = new WeakSet<Connection>();

  /**
   * Index a connection by its 4-tuple once, when its role is known: at its
   * open, or — met mid-life — at its first message. Once only: a late message
   * on an old connection must not take a reused tuple back from a newer one.
   */
  private indexTuple(conn: Connection): void {
    if (!conn.local || !conn.remote || conn.role === 'unknown' || this.indexed.has(conn)) return;
    this.indexed.add(conn);
    if (conn.role === 'client') this.clientsByTuple.set(connKey(conn.local, conn.remote, false), conn);
    else this.serversByClientTuple.set(connKey(conn.local, conn.remote, true), conn);
  }

  onMessage(conn: Connection, message: MessageBase): void {
    if (message.error !== undefined) this.stats.parseErrors++;
    this.indexTuple(conn);
    const module = moduleOf(message.protocol);
    if (!module?.role || !module.pairing) return;
    const role = module.role(message, viewOf(conn), this.options.redaction);
    switch (role.is) {
      case 'none':
        return;
      case 'placeholder':
        push(this.inFlight, conn.id, { span: placeholderSpan(message, conn.pid), conn, claimed: false, fingerprint: '', silent: true });
        return;
      case 'request':
        this.start(conn, message, role.span, module.pairing, role.key);
        return;
      default:
        this.answer(conn, message, module, role);
    }
  }

  /** An answer: it ends the request it answers (in order, or by key), or that request goes on under a key. */
  private answer(conn: Connection, message: MessageBase, module: ProtocolModule, role: Extract<MessageRole, { is: 'response' | 'continues' }>): void {
    const queue = this.inFlight.get(conn.id);
    let pending: InFlight | undefined;
    if (module.pairing!.answers === 'by-key' && role.is === 'response') {
      const i = queue?.findIndex((p) => p.streamId === role.key) ?? -1;
      if (i < 0) {
        this.stats.orphanResponses++;
        return;
      }
      pending = queue!.splice(i, 1)[0]!;
      if (queue!.length === 0) this.inFlight.delete(conn.id);
    } else {
      if (this.lateAnswer(conn)) return;
      pending = queue?.shift();
      if (!pending) {
        this.stats.orphanResponses++;
        return;
      }
      if (role.is === 'continues') {
        pending.streamId = role.key;
        queue!.unshift(pending);
        return;
      }
      if (pending.silent) return;
    }
    module.respond!(pending.span, message);
    this.finishSpan(pending, message.tsEnd);
  }

  /**
   * An answer to a request already ended as timed out? In-order protocols
   * (HTTP/1, the databases) answer in order: it must not pair with a later request.
   */
  private lateAnswer(conn: Connection): boolean {
    const late = this.lateResponses.get(conn.id);
    if (!late) return false;
    if (late === 1) this.lateResponses.delete(conn.id);
    else this.lateResponses.set(conn.id, late - 1);
    this.stats.orphanResponses++;
    return true;
  }

  onClose(conn: Connection, ts: bigint, reason: CloseReason): void {
    const fdKey = `${conn.pid}:${conn.fd}`;
    if (this.connsByFd.get(fdKey) === conn) this.connsByFd.delete(fdKey);
    if (conn.local && conn.remote) {
      const key = connKey(conn.local, conn.remote, false);
      if (this.clientsByTuple.get(key) === conn) this.clientsByTuple.delete(key);
      const reversed = connKey(conn.local, conn.remote, true);
      if (this.serversByClientTuple.get(reversed) === conn) this.serversByClientTuple.delete(reversed);
    }
    this.goServerStarts.delete(fdKey);
    this.goClientCalls.delete(fdKey);
    const queue = this.inFlight.get(conn.id);
    this.inFlight.delete(conn.id);
    this.lateResponses.delete(conn.id);
    const why = {
      closed: ['connection closed before the response', 'connection_closed'],
      captureEnd: ['capture ended before the response', 'incomplete'],
      idle: ['connection idle, no response', 'timeout'],
    }[reason];
    for (const pending of queue ?? []) this.incomplete(pending, why[0]!, why[1]!, conn.lastTs > pending.span.startNs ? conn.lastTs : ts);
  }

  /** Ring-buffer loss: whatever was in flight may be missing events, so say so on it. */
  onLoss(lost: bigint): void {
    for (const queue of this.inFlight.values()) {
      for (const pending of queue) {
        const before = Number(pending.span.attributes[LOUPE_ATTR.RECORDS_LOST] ?? 0);
        pending.span.attributes[LOUPE_ATTR.RECORDS_LOST] = before + Number(lost);
      }
    }
  }

  /** The events' clock moved: time out requests nobody answers. Called for every event; sweeps once per second of event time. */
  tick(now: bigint): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 1_000_000_000n;
    if (this.endedAwaiting.size > 0) this.releaseAwaiting(now);
    const deadline = now - this.options.responseTimeoutNs;
    const seconds = Number(this.options.responseTimeoutNs / 1_000_000_000n);
    for (const [id, queue] of this.inFlight) {
      while (queue.length > 0 && queue[0]!.span.startNs < deadline) {
        const pending = queue.shift()!;
        this.lateResponses.set(id, (this.lateResponses.get(id) ?? 0) + 1);
        this.incomplete(pending, `no response within ${seconds} s`, 'timeout', pending.span.startNs + this.options.responseTimeoutNs);
      }
      if (queue.length === 0) this.inFlight.delete(id);
    }
    const graceEnd = now - ENDED_CALL_GRACE_NS;
    for (const pendingMap of [this.goServerStarts, this.goClientCalls]) {
      for (const [key, list] of pendingMap) {
        const kept = list.filter((p) => p.ts >= deadline && (p.endedNs === undefined || p.endedNs >= graceEnd));
        this.stats.unmatchedGoRequests += list.length - kept.length;
        if (kept.length === 0) pendingMap.delete(key);
        else pendingMap.set(key, kept);
      }
    }
  }

  onGoroutine(ev: GoroutineEvent): void {
    this.goPids.add(ev.pid);
    const key = `${ev.pid}:${ev.goid}`;
    this.goroutines.delete(key); // a reused id starts afresh either way
    if (ev.type === 'go_goroutine_exit') return;
    const parent = this.goroutine(ev.pid, ev.parentGoid, false);
    const inherited = parent?.serving ? ctxOf(parent.serving.span) : parent?.inherited;
    this.remember(key, inherited ? { inherited } : {});
  }

  onGoRequest(ev: GoRequestEvent): void {
    this.goPids.add(ev.pid);
    const fdKey = `${ev.pid}:${ev.fd}`;
    switch (ev.kind) {
      case 'http_server':
      case 'grpc_server': {
        if (ev.type === 'go_request_start') {
          const started = { goid: ev.goid, ts: ev.ts, ...kernelIds(ev.traceparent) };
          const pending = this.unboundServerRequest(fdKey);
          if (pending) this.bindHandler(pending, started);
          else if (ev.fd >= 0) push(this.goServerStarts, fdKey, started);
          else this.stats.unmatchedGoRequests++;
        } else {
          const g = this.goroutine(ev.pid, ev.goid, false);
          if (g?.serving) {
            g.serving.handlerEndNs = ev.ts;
            g.serving = undefined;
          }
        }
        break;
      }
      case 'http_client':
      case 'grpc_client': {
        const key = ev.fd >= 0 ? fdKey : `${ev.pid}`;
        if (ev.type === 'go_request_start') {
          // A second start on the goroutine before the first's bytes were claimed (the transport tried the call
          // again): the kernel injects the latest ids, so the later start is the call the bytes will carry.
          const calls = this.goClientCalls.get(key);
          const stale = calls?.findIndex((c) => c.goid === ev.goid && c.endedNs === undefined) ?? -1;
          if (stale >= 0) calls!.splice(stale, 1);
          push(this.goClientCalls, key, { goid: ev.goid, ts: ev.ts, method: ev.method, path: ev.path, host: ev.host, ...kernelIds(ev.traceparent) });
        } else {
          // The call returned before its bytes were seen: they may still come (ENDED_CALL_GRACE_NS).
          const call = this.goClientCalls.get(key)?.find((c) => c.goid === ev.goid && c.endedNs === undefined);
          if (call) call.endedNs = ev.ts;
        }
        break;
      }
    }
  }

  private goroutine(pid: number, goid: bigint, create: boolean): Goroutine | undefined {
    const key = `${pid}:${goid}`;
    let g = this.goroutines.get(key);
    if (g) {
      this.goroutines.delete(key); // keep least-recently-used order
      this.goroutines.set(key, g);
    } else if (create) {
      g = {};
      this.remember(key, g);
    }
    return g;
  }

  private remember(key: string, g: Goroutine): void {
    this.goroutines.set(key, g);
    while (this.goroutines.size > this.options.maxGoroutines) {
      this.goroutines.delete(this.goroutines.keys().next().value!);
      this.stats.evictedGoroutines++;
    }
  }

  private unboundServerRequest(fdKey: string): InFlight | undefined {
    const conn = this.connsByFd.get(fdKey);
    if (!conn || conn.role !== 'server') return undefined;
    return this.inFlight.get(conn.id)?.find((p) => p.goid === undefined);
  }

  private bindHandler(pending: InFlight, started: PendingGoCall): void {
    pending.goid = started.goid;
    pending.handlerStartNs = started.ts > pending.span.startNs ? started.ts : pending.span.startNs;
    const g = this.goroutine(pending.conn.pid, started.goid, true)!;
    g.serving = pending;
    if (started.ids) {
      // Calls this handler makes carry the kernel's ids on the wire: the span takes its span id,
      // and a trace the correlator knows by another id (a connection pair, say) is aliased.
      pending.span.spanId = started.ids.spanId;
      this.alias(started.ids.traceId, pending.span.traceId);
    }
  }

  private alias(kernelTrace: string, trace: string): void {
    if (kernelTrace === trace) return;
    this.traceAliases.set(kernelTrace, trace);
    if (this.traceAliases.size > MAX_TRACE_ALIASES) this.traceAliases.delete(this.traceAliases.keys().next().value!);
  }

  /** The trace a traceparent's trace id stands for here. */
  private resolveTrace(traceId: string): string {
    return this.traceAliases.get(traceId) ?? traceId;
  }

  /**
   * The Go client call this outgoing request belongs to: by fd; else, among
   * the process's calls with the request's method and path, the first whose
   * host is the request's Host header, or the first; else the only call.
   */
  private goClientCall(conn: Connection, req?: SpanStart['goCall']): PendingGoCall | undefined {
    const byFd = this.goClientCalls.get(`${conn.pid}:${conn.fd}`);
    if (byFd?.length) {
      const call = byFd.shift()!;
      if (byFd.length === 0) this.goClientCalls.delete(`${conn.pid}:${conn.fd}`);
      return call;
    }
    const key = `${conn.pid}`;
    const any = this.goClientCalls.get(key);
    if (!any?.length) return undefined;
    const same = (c: PendingGoCall) => c.method === req!.method && c.path === req!.path;
    let i = req ? any.findIndex((c) => same(c) && c.host === req.host) : -1;
    if (i < 0 && req) i = any.findIndex(same);
    // The one call in flight, when it names nothing to compare: a call that returned must be named.
    const open = any.filter((c) => c.endedNs === undefined);
    if (i < 0 && open.length === 1 && any.length === 1) i = 0;
    if (i < 0) return undefined;
    const call = any.splice(i, 1)[0]!;
    if (any.length === 0) this.goClientCalls.delete(key);
    return call;
  }

  /** A request's span: where it belongs (see the top of this file), and its place among the connection's requests. */
  private start(conn: Connection, m: MessageBase, start: SpanStart, pairing: PairingRules, key: number | undefined): void {
    const side = conn.role === 'server' ? 'server' : 'client';
    const span: Span = {
      traceId: '',
      spanId: this.ids.spanId(),
      parentSpanId: '',
      parentIsRemote: false,
      traceState: '',
      name: start.name,
      kind: start.kind ?? side,
      startNs: m.tsStart,
      endNs: m.tsEnd,
      service: this.processes.serviceOf(conn.pid),
      pid: conn.pid,
      attributes: start.attributes,
      status: { code: 'unset' },
      family: start.family,
    };
    if (side === 'server' && start.route) {
      // A route names the request in spans and metrics ("GET /users/{id}"); an ignored path gets none.
      const route = this.options.routes.route(start.route.path);
      if (route !== undefined) {
        span.attributes[ATTR_HTTP_ROUTE] = route;
        span.name = start.route.name(route);
      } else span.attributes[LOUPE_ATTR.ROUTE_IGNORED] = true;
    }
    const pending: InFlight = { span, conn, claimed: false, fingerprint: start.fingerprint };
    if (key !== undefined) pending.streamId = key;
    const header = parseTraceparent(start.traceparent);
    const traceState = start.tracestate ?? '';
    let context: string;
    if (side === 'server') {
      const paired = header ? undefined : pairing.acrossConnection === 'same-bytes' ? this.pairedClient(conn, pending.fingerprint, m.tsStart) : this.pairedByPlace(conn);
      if (header) {
        parentTo(span, { traceId: this.resolveTrace(header.traceId), spanId: header.parentId, traceState, remoteSampled: sampledFlag(header.flags) });
        span.parentIsRemote = true;
        context = 'traceparent';
      } else if (paired) {
        paired.client.claimed = true;
        this.unindex(paired.client);
        parentTo(span, ctxOf(paired.client.span));
        this.pair(paired.client, pending);
        context = paired.how;
      } else {
        span.traceId = this.ids.traceId();
        context = 'new';
        this.awaitClient(pending);
      }
      if (pairing.servesCalls) {
        pending.threadKey = `${conn.pid}:${m.tid}`;
        push(this.serving, pending.threadKey, pending);
        this.lastRead.set(pending.threadKey, pending);
      }
    } else {
      context = this.clientParent(conn, m.tid, span, header ? { ...header, traceState } : undefined, pairing.goClientCalls, start.goCall);
      if (!this.claimWaitingServer(conn, pending) && pairing.acrossConnection === 'same-bytes') push(this.clientsByFingerprint, pending.fingerprint, pending);
    }
    span.attributes[LOUPE_ATTR.CONTEXT] = context;
    if (m.error !== undefined) span.attributes[LOUPE_ATTR.PARSE_ERROR] = m.error;
    if (m.parseErrorCode !== undefined) span.attributes[LOUPE_ATTR.PARSE_ERROR_CODE] = m.parseErrorCode;
    if (m.lostBytes) span.attributes[LOUPE_ATTR.LOST_BYTES] = m.lostBytes;
    if (conn.midStream) span.attributes[LOUPE_ATTR.MID_STREAM] = true;
    push(this.inFlight, conn.id, pending);
    if (side === 'server' && pairing.servesCalls) {
      // The handler may have started before the request's body finished arriving.
      const fdKey = `${conn.pid}:${conn.fd}`;
      const started = this.goServerStarts.get(fdKey)?.shift();
      if (started) {
        if (this.goServerStarts.get(fdKey)!.length === 0) this.goServerStarts.delete(fdKey);
        this.bindHandler(pending, started);
      }
    }
    start.decorate?.(span);
  }

  /**
   * Where a client span belongs: a traceparent it carries, else (Go) the request
   * its goroutine serves — `goCalls` when Go client-call events describe this
   * protocol —, else the one request its thread serves, else a new trace.
   * Sets the span's trace, parent and state; returns the rule that applied.
   */
  private clientParent(conn: Connection, tid: number, span: Span, header: { traceId: string; parentId: string; traceState: string; flags: number } | undefined, goCalls: boolean, req?: SpanStart['goCall']): string {
    const isGo = this.goPids.has(conn.pid);
    const call = isGo && goCalls ? this.goClientCall(conn, req) : undefined;
    const g = call ? this.goroutine(conn.pid, call.goid, false) : undefined;
    const goParent = g?.serving ? ctxOf(g.serving.span) : g?.inherited;
    // Go goroutines hop between threads: a thread says nothing about a Go request.
    const onThread = isGo ? [] : (this.serving.get(`${conn.pid}:${tid}`) ?? []);
    const threadParent = onThread.length === 1 ? ctxOf(onThread[0]!.span) : undefined;
    const local = goParent ?? threadParent;
    const setParent = (ctx: SpanContext) => parentTo(span, ctx);
    if (call) span.attributes[LOUPE_ATTR.GOROUTINE] = call.goid.toString();
    if (call?.ids && !header) {
      // The kernel put this call's traceparent on the wire (or would have): the peer knows the span by it.
      span.spanId = call.ids.spanId;
      if (goParent ?? threadParent) this.alias(call.ids.traceId, (goParent ?? threadParent)!.traceId);
      else {
        span.traceId = this.resolveTrace(call.ids.traceId);
        return 'new';
      }
    }
    if (header) {
      span.traceId = this.resolveTrace(header.traceId);
      span.traceState = header.traceState;
      span.remoteSampled = sampledFlag(header.flags);
      if (local && local.traceId === header.traceId) span.parentSpanId = local.spanId;
      else {
        span.parentSpanId = header.parentId;
        span.parentIsRemote = true;
      }
      return 'traceparent';
    }
    if (goParent) {
      setParent(goParent);
      return 'goroutine';
    }
    if (threadParent) {
      setParent(threadParent);
      return 'thread';
    }
    const cause = onThread.length > 1 ? this.eventLoopCause(conn, tid, onThread) : undefined;
    if (cause) {
      setParent(ctxOf(cause.span));
      return 'event-loop';
    }
    span.traceId = this.ids.traceId();
    return onThread.length > 1 ? 'ambiguous-thread' : 'new';
  }

  /**
   * The client span this server request answers: the oldest unclaimed one on
   * the connection that is this one seen from the other end — if it sent this
   * very request (a reused 4-tuple whose close and open were lost must not
   * pair). Failing that, NAT on this host may have rewritten the tuple: then
   * the one client request in flight with exactly these bytes, if only one.
   */
  private pairedClient(conn: Connection, fp: string, arrivedNs: bigint): { client: InFlight; how: string } | undefined {
    if (!conn.local || !conn.remote) return undefined;
    const byTuple = this.clientsByTuple.get(connKey(conn.local, conn.remote, true));
    if (byTuple) {
      // HTTP/2 streams run at once: the candidate is the oldest unclaimed one that sent these bytes.
      const candidate = this.inFlight.get(byTuple.id)?.find((p) => !p.claimed && (p.streamId === undefined || p.fingerprint === fp));
      if (candidate && candidate.fingerprint === fp) return { client: candidate, how: 'connection-pair' };
      if (candidate) return undefined; // the tuple is known but the bytes disagree: no guess
    }
    // NAT: the client's own tuple must not be visible reversed here (then it went elsewhere),
    // and it must have been sent shortly before this request arrived.
    const alike = (this.clientsByFingerprint.get(fp) ?? []).filter((p) =>
      p.conn.pid !== conn.pid && p.conn.local && p.conn.remote
      && !this.serversByClientTuple.has(connKey(p.conn.local, p.conn.remote, false))
      && p.span.startNs <= arrivedNs && arrivedNs - p.span.startNs < NAT_WINDOW_NS);
    const found = alike.length === 1 ? alike[0] : undefined; // two alike: the data cannot tell which
    return found ? { client: found, how: 'connection-pair-nat' } : undefined;
  }

  /**
   * Which of the requests a thread serves at once this call is for, where the
   * thread's own order says so: the request it finished reading right before
   * it opened this connection (its first request), or right before it wrote
   * this request (a connection kept alive) — with no other socket's bytes in
   * between, as an event loop proxies in one turn. Only a request still being
   * served. Anything else stays ambiguous: a handler that calls out in a later
   * turn (after awaiting something) looks the same as any other request's.
   */
  private eventLoopCause(conn: Connection, tid: number, onThread: InFlight[]): InFlight | undefined {
    const first = !this.usedOnce.has(conn);
    this.usedOnce.add(conn);
    const opened = first ? this.openedFor.get(conn) : undefined;
    const cause = opened ?? this.lastRead.get(`${conn.pid}:${tid}`);
    const before = opened ? conn.openedAfter : conn.previousOnThread;
    if (!cause || before !== threadIo(cause.conn.id, true)) return undefined;
    return onThread.includes(cause) ? cause : undefined;
  }

  /**
   * A server request paired by its place (a database statement): the oldest
   * client request not yet claimed on the same connection seen from the
   * other end (requests answer in order there).
   */
  private pairedByPlace(conn: Connection): { client: InFlight; how: string } | undefined {
    if (!conn.local || !conn.remote) return undefined;
    const byTuple = this.clientsByTuple.get(connKey(conn.local, conn.remote, true));
    const client = byTuple && this.inFlight.get(byTuple.id)?.find((p) => !p.claimed && !p.silent);
    return client ? { client, how: 'connection-pair' } : undefined;
  }

  /**
   * The reader's record can reach the ring buffer before the writer's (the
   * writer's syscall has not returned yet when the reader's does): a server
   * request parsed first, with no client to pair, is claimed by the client
   * request that then arrives on the same connection seen from the other end,
   * if it sent these very bytes and the server span is still open. Trace ids
   * already handed out under the server span are aliased to the client's.
   */
  private claimWaitingServer(conn: Connection, client: InFlight): boolean {
    if (!conn.local || !conn.remote) return false;
    const server = this.serversByClientTuple.get(connKey(conn.local, conn.remote, false));
    if (!server) return false;
    const same = (p: InFlight) => p.awaitingClient === true && p.fingerprint === client.fingerprint;
    let waiting = this.inFlight.get(server.id)?.find(same);
    if (!waiting) {
      const ended = this.endedAwaiting.get(server.id);
      const i = ended?.findIndex(same) ?? -1;
      if (i < 0) return false;
      waiting = ended!.splice(i, 1)[0]!;
      if (ended!.length === 0) this.endedAwaiting.delete(server.id);
    }
    waiting.awaitingClient = false;
    client.claimed = true;
    const span = waiting.span;
    // The whole subtree moves: what ended meanwhile was held, what still runs resolves the alias as it ends.
    const held = this.awaitingTraces.get(span.traceId);
    this.awaitingTraces.delete(span.traceId);
    this.alias(span.traceId, client.span.traceId);
    // Parented before anything held goes out: the server span itself is among them when it ended first.
    parentTo(span, ctxOf(client.span));
    span.attributes[LOUPE_ATTR.CONTEXT] = 'connection-pair';
    span.attributes[LOUPE_ATTR.PAIRED_LATE] = true;
    this.pair(client, waiting);
    for (const h of held?.held ?? []) {
      h.traceId = client.span.traceId;
      this.emit(h);
    }
    return true;
  }

  private incomplete(pending: InFlight, why: string, errorType: string, endNs: bigint): void {
    if (pending.silent) return;
    this.stats.incomplete++;
    pending.span.attributes[LOUPE_ATTR.INCOMPLETE] = why;
    pending.span.attributes[ATTR_ERROR_TYPE] = errorType;
    pending.span.status = { code: 'error', message: why };
    this.finishSpan(pending, endNs);
  }

  private unindex(client: InFlight): void {
    const list = this.clientsByFingerprint.get(client.fingerprint);
    const i = list?.indexOf(client) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.clientsByFingerprint.delete(client.fingerprint);
  }

  /**
   * A client span and the server span it caused, one connection seen from its
   * two ends. Each end is stamped when its syscall returned, and on loopback a
   * reader can return before the writer of the same bytes does (by 0.3 µs
   * through nginx to Flask): the server span is kept within its client's, its
   * start no earlier, its end no later, so the trace shows cause before effect.
   */
  private pair(client: InFlight, server: InFlight): void {
    client.pairedWith = server;
    server.pairedWith = client;
    if (server.span.startNs < client.span.startNs) server.span.startNs = client.span.startNs;
  }

  private awaitClient(pending: InFlight): void {
    pending.awaitingClient = true;
    this.awaitingTraces.set(pending.span.traceId, { server: pending, held: [] });
  }

  private finishSpan(pending: InFlight, endNs: bigint): void {
    const span = pending.span;
    if (span.kind === 'client') this.unindex(pending);
    span.endNs = endNs;
    // Begun under a server span that a late pairing moved into its client's trace: it moves too.
    span.traceId = this.resolveTrace(span.traceId);
    pending.ended = true;
    const other = pending.pairedWith;
    if (other?.ended && span.attributes[LOUPE_ATTR.INCOMPLETE] === undefined && other.span.attributes[LOUPE_ATTR.INCOMPLETE] === undefined) {
      // See pair(): whichever ends second keeps the server's end within the client's (ends that were seen, not timed out).
      if (span.kind === 'server' && span.endNs > other.span.endNs) span.endNs = other.span.endNs;
      if (span.kind === 'client' && span.endNs < other.span.endNs) span.endNs = other.span.endNs;
    }
    if (pending.threadKey) {
      if (this.lastRead.get(pending.threadKey) === pending) this.lastRead.delete(pending.threadKey);
      const list = this.serving.get(pending.threadKey);
      if (list) {
        const i = list.indexOf(pending);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.serving.delete(pending.threadKey);
      }
    }
    if (pending.goid !== undefined) {
      const g = this.goroutines.get(`${span.pid}:${pending.goid}`);
      if (g?.serving === pending) g.serving = undefined;
    }
    const done = pending.handlerStartNs !== undefined ? [span, ...this.phasesOf(pending)] : [span];
    this.stats.spans += done.length;
    const awaiting = this.awaitingTraces.get(span.traceId);
    if (awaiting && awaiting.server !== pending) {
      awaiting.held.push(...done);
      return;
    }
    if (awaiting) {
      // Its client has not come while it ran: it may yet (see endedAwaiting), so the subtree waits.
      awaiting.endedNs = endNs;
      awaiting.held.push(...done);
      push(this.endedAwaiting, pending.conn.id, pending);
      return;
    }
    for (const d of done) this.emit(d);
  }

  /** Server requests whose client did not come within the grace (all of them at the end of input): their subtrees go out in their own traces. */
  private releaseAwaiting(now: bigint | undefined): void {
    for (const [traceId, awaiting] of this.awaitingTraces) {
      if (awaiting.endedNs === undefined || (now !== undefined && awaiting.endedNs + AWAIT_CLIENT_AFTER_END_NS >= now)) continue;
      this.awaitingTraces.delete(traceId);
      const server = awaiting.server;
      server.awaitingClient = false;
      const list = this.endedAwaiting.get(server.conn.id);
      const i = list?.indexOf(server) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      if (list?.length === 0) this.endedAwaiting.delete(server.conn.id);
      for (const h of awaiting.held) this.emit(h);
    }
  }

  /** End of input: nothing more can come for what still waits. */
  finish(): void {
    this.releaseAwaiting(undefined);
  }

  /**
   * Server spans whose handler start we know get two children: the time the
   * request waited after it arrived, and the time the handler worked on it.
   */
  private phasesOf(pending: InFlight): Span[] {
    const span = pending.span;
    const handlerStart = pending.handlerStartNs!;
    const handlerEnd = pending.handlerEndNs !== undefined && pending.handlerEndNs < span.endNs ? pending.handlerEndNs : span.endNs;
    const child = (name: string, startNs: bigint, endNs: bigint): Span => ({
      traceId: span.traceId, spanId: this.ids.spanId(), parentSpanId: span.spanId, parentIsRemote: false, traceState: span.traceState,
      remoteSampled: span.remoteSampled, name, kind: 'internal', startNs, endNs: endNs > startNs ? endNs : startNs, service: span.service, pid: span.pid,
      attributes: { [LOUPE_ATTR.PHASE]: name === 'in queue' ? 'queue' : 'processing', [LOUPE_ATTR.GOROUTINE]: pending.goid!.toString() },
      status: { code: 'unset' },
    });
    return [child('in queue', span.startNs, handlerStart), child('processing', handlerStart, handlerEnd)];
  }
}

/** The ids in a kernel-made traceparent ("00-<trace>-<span>-01"), when there is one. */
function kernelIds(traceparent: string): { ids?: { traceId: string; spanId: string } } {
  const tp = traceparent ? parseTraceparent(traceparent) : undefined;
  return tp ? { ids: { traceId: tp.traceId, spanId: tp.parentId } } : {};
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** What a protocol module is told of a connection. */
function viewOf(conn: Connection): ConnectionView {
  return { role: conn.role === 'server' ? 'server' : 'client', local: conn.local, remote: conn.remote, tls: conn.tls };
}

/** The span of a silent place-holder: never emitted, only timed out or closed with its connection. */
function placeholderSpan(m: MessageBase, pid: number): Span {
  return {
    traceId: '', spanId: '', parentSpanId: '', parentIsRemote: false, traceState: '', name: m.protocol, kind: 'client',
    startNs: m.tsStart, endNs: m.tsEnd, service: '', pid, attributes: {}, status: { code: 'unset' },
  };
}
