/**
 * Turns parsed messages into spans and decides which trace each belongs to.
 * Each message's protocol module says what it is (a request and the span it
 * starts, an answer, a place-holder) and how requests pair; the correlator
 * holds no protocol's name. Its parts: connection-pair matching
 * (connection-pairs.ts), the goroutine tree (goroutines.ts), what each thread
 * serves (threads.ts), the client parent rules (parents.ts), the two ends of
 * a message (messages.ts) and the one span factory (span-factory.ts).
 *
 * Where a span's parent comes from, strongest first:
 *  - server span: the request's `traceparent`; else the client span whose
 *    connection is this one seen from the other end on the same host
 *    (connection-pair matching); else a new trace — which a client request
 *    parsed later on that connection may still claim (claimWaitingServer).
 *  - client span: see parents.ts.
 * The attribute `loupe.context` says which rule applied.
 *
 * State is bounded on the events' own clock: requests that get no answer end
 * as incomplete after `responseTimeoutNs`; goroutine entries are capped.
 */
import { ATTR_ERROR_TYPE, ATTR_HTTP_ROUTE } from '@opentelemetry/semantic-conventions';
import type { GoRequestEvent, GoroutineEvent, NatEvent, TraceContextEvent } from '../events/types';
import type { ProcessTable } from '../discovery/processes';
import type { CloseReason, Connection } from '../streams/connections';
import type { MessageBase } from '../parsers/types';
import type { ConnectionView, MessageRole, PairingRules, ProtocolModule, RedactionOptions, SpanStart } from '../parsers/module';
import { moduleOf } from '../parsers/protocols';
import { LOUPE_ATTR } from '../parsers/spans';
import { Router } from '../routes/routes';
import { ConnectionPairs } from './connection-pairs';
import { ctxOf, parentTo, push, sampledFlag, TraceAliases, type InFlight } from './context';
import { GoRuntime } from './goroutines';
import { MessageJoins } from './messages';
import type { IdGenerator } from './ids';
import { ClientParents } from './parents';
import type { Span } from './span';
import { SpanFactory } from './span-factory';
import { ThreadServing } from './threads';
import { parseTraceparent } from './traceparent';

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

/** Kernel trace contexts kept per connection for requests not parsed yet; the oldest go first past this. */
const MAX_KERNEL_CONTEXTS = 16;

/** How long a server request that ended awaiting its client's stays claimable (see endedAwaiting). */
const AWAIT_CLIENT_AFTER_END_NS = 1_000_000_000n;

export class Correlator {
  readonly stats: CorrelatorStats = { spans: 0, orphanResponses: 0, incomplete: 0, parseErrors: 0, unmatchedGoRequests: 0, evictedGoroutines: 0 };
  /** Requests in flight per connection, oldest first. */
  private readonly inFlight = new Map<number, InFlight[]>();
  /** Open connections by pid:fd, to find the one a Go event names. */
  private readonly connsByFd = new Map<string, Connection>();
  private readonly aliases = new TraceAliases();
  private readonly pairs = new ConnectionPairs((id) => this.inFlight.get(id));
  private readonly threads = new ThreadServing();
  private readonly go: GoRuntime;
  private readonly parents: ClientParents;
  private readonly spans: SpanFactory;
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
  /** Server connections met mid-life whose first request waited for a client end not seen yet (see clientMayBeUnseen). */
  private readonly waitedMidStream = new WeakSet<Connection>();
  private readonly messages = new MessageJoins((spans) => this.emitOrHold(spans));
  /** Per connection: responses still owed to requests that timed out; they must not pair with later requests. */
  private readonly lateResponses = new Map<number, number>();
  /** Trace contexts the kernel chose or a TCP option brought, per connection, until the request each names is parsed. */
  private readonly kernelContexts = new Map<number, TraceContextEvent[]>();
  private nextSweep = 0n;

  constructor(
    private readonly ids: IdGenerator,
    processes: ProcessTable,
    private readonly emit: (span: Span) => void,
    private readonly options: CorrelatorOptions = DEFAULT_CORRELATOR_OPTIONS,
  ) {
    this.go = new GoRuntime(options.maxGoroutines, this.aliases, this.stats, (fdKey) => this.unboundServerRequest(fdKey));
    this.parents = new ClientParents(this.go, this.threads, this.aliases, ids);
    this.spans = new SpanFactory(ids, processes);
  }

  /** Entries held, for tests that check memory stays flat. */
  stateSize(): Record<string, number> {
    return {
      inFlight: [...this.inFlight.values()].reduce((n, l) => n + l.length, 0),
      connsByFd: this.connsByFd.size,
      ...this.pairs.sizes(),
      ...this.threads.sizes(),
      ...this.go.sizes(),
      ...this.messages.sizes(),
      kernelContexts: this.kernelContexts.size,
    };
  }

  onOpen(conn: Connection): void {
    this.connsByFd.set(`${conn.pid}:${conn.fd}`, conn);
    this.pairs.index(conn);
    this.threads.onOpen(conn);
  }

  onMessage(conn: Connection, message: MessageBase): void {
    if (message.error !== undefined) this.stats.parseErrors++;
    this.pairs.index(conn);
    const module = moduleOf(message.protocol);
    if (!module?.role || !module.pairing) return;
    const role = module.role(message, viewOf(conn), this.options.redaction);
    switch (role.is) {
      case 'none':
        return;
      case 'placeholder':
        push(this.inFlight, conn.id, { span: this.spans.placeholder(message, conn.pid), conn, claimed: false, fingerprint: '', silent: true });
        return;
      case 'request':
        this.start(conn, message, role.span, module.pairing, role.key);
        return;
      case 'one-way':
        this.start(conn, message, role.span, module.pairing, undefined, true);
        return;
      default:
        this.answer(conn, message, module, role);
    }
  }

  onClose(conn: Connection, ts: bigint, reason: CloseReason): void {
    const fdKey = `${conn.pid}:${conn.fd}`;
    if (this.connsByFd.get(fdKey) === conn) this.connsByFd.delete(fdKey);
    this.pairs.onClose(conn);
    this.go.onClose(conn);
    const queue = this.inFlight.get(conn.id);
    this.inFlight.delete(conn.id);
    this.lateResponses.delete(conn.id);
    this.kernelContexts.delete(conn.id);
    const why = {
      closed: ['connection closed before the response', 'connection_closed'],
      captureEnd: ['capture ended before the response', 'incomplete'],
      idle: ['connection idle, no response', 'timeout'],
    }[reason];
    for (const pending of queue ?? []) this.incomplete(pending, why[0]!, why[1]!, conn.lastTs > pending.span.startNs ? conn.lastTs : ts);
  }

  /** Connection tracking named the tuple a server connection's client used (a published port, a Service). */
  onNat(ev: NatEvent): void {
    this.pairs.onNat(ev);
  }

  /** The kernel chose or carried the trace context of a request about to be parsed on this connection (TCP-option propagation). */
  onTraceContext(conn: Connection, ev: TraceContextEvent): void {
    const list = this.kernelContexts.get(conn.id);
    if (!list) this.kernelContexts.set(conn.id, [ev]);
    else if (list.push(ev) > MAX_KERNEL_CONTEXTS) list.shift();
  }

  /**
   * The kernel's context for the request whose first byte is at `offset` of the client's stream:
   * the latest one that begins at or before it. Its segment need not hold the request's first
   * byte: an HTTP/2 client's first segment after an answer may be a SETTINGS or WINDOW_UPDATE frame,
   * and the request follows in the next. Both ends apply this rule to the same bytes, so they agree
   * on which request a tag names. Contexts before the one taken named requests that made no span.
   */
  private kernelContext(conn: Connection, offset: number): TraceContextEvent | undefined {
    const list = this.kernelContexts.get(conn.id);
    if (!list) return undefined;
    let taken = 0;
    // Stream offsets wrap as TCP sequence numbers do: half the space behind a request is "before" it.
    while (taken < list.length && (offset - list[taken]!.offset) >>> 0 < 0x8000_0000) taken++;
    if (taken === 0) return undefined;
    const found = list[taken - 1];
    if (taken === list.length) this.kernelContexts.delete(conn.id);
    else list.splice(0, taken);
    return found;
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
    this.messages.sweep(now);
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
    this.go.sweep(now, deadline);
    this.threads.sweep(now);
  }

  onGoroutine(ev: GoroutineEvent): void {
    this.go.onGoroutine(ev);
  }

  onGoRequest(ev: GoRequestEvent): void {
    this.go.onGoRequest(ev);
  }

  /** End of input: nothing more can come for what still waits. */
  finish(): void {
    this.messages.sweep(undefined);
    this.releaseAwaiting(undefined);
  }

  private unboundServerRequest(fdKey: string): InFlight | undefined {
    const conn = this.connsByFd.get(fdKey);
    if (!conn || conn.role !== 'server') return undefined;
    return this.inFlight.get(conn.id)?.find((p) => p.goid === undefined);
  }

  /** A request's span: where it belongs (see the top of this file), and its place among the connection's requests. */
  /**
   * `oneWay`: a message no answer follows (a `noreply` store, a quiet binary command): its span
   * ends with it, holds no place among the connection's requests, and pairs across a connection
   * only by a traceparent it carries (no answer order or in-flight request to pair it by).
   */
  private start(conn: Connection, m: MessageBase, start: SpanStart, pairing: PairingRules, key: number | undefined, oneWay = false): void {
    const side = conn.role === 'server' ? 'server' : 'client';
    const span = this.spans.request(conn, m, start, side);
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
    // Offsets of the TCP stream: a TLS connection's messages are counted in plaintext, which they do not name.
    const kernel = this.kernelContexts.size > 0 && !conn.midStream && !conn.tls ? this.kernelContext(conn, m.offset) : undefined;
    let context: string;
    if (side === 'server') {
      let paired = oneWay ? undefined : pairing.acrossConnection === 'same-bytes' ? this.pairs.bySameBytes(conn, pending.fingerprint, m.tsStart) : this.pairs.bySamePlace(conn);
      // A traceparent the watched client sent as it was given (curl -H, a proxy passing it on) names the
      // client span's parent, not the client span: the server span is the client span's child, in that
      // trace. A header that names something else (an SDK's own client span, a Go request the kernel
      // injected into) wins over the pair.
      if (header && paired && !(paired.client.span.parentSpanId === header.parentId && paired.client.span.traceId === this.aliases.resolve(header.traceId))) paired = undefined;
      if (header && !paired) {
        parentTo(span, { traceId: this.aliases.resolve(header.traceId), spanId: header.parentId, traceState, remoteSampled: sampledFlag(header.flags) });
        span.parentIsRemote = true;
        context = 'traceparent';
      } else if (paired) {
        paired.client.claimed = true;
        this.pairs.removeUnclaimed(paired.client);
        parentTo(span, ctxOf(paired.client.span));
        this.pair(paired.client, pending);
        context = paired.how;
      } else if (kernel?.origin === 'tcp_option') {
        // The caller's Loupe named its span in a TCP option on the request's first segment.
        parentTo(span, { traceId: this.aliases.resolve(kernel.traceId), spanId: kernel.spanId, traceState: '' });
        // A client watched on this host sent it (its record has not come yet: a writer preempted at its
        // syscall's exit): the two ends of one connection, joined as a pair is, whichever record comes first.
        const local = this.pairs.hasClientEnd(conn);
        span.parentIsRemote = !local;
        context = local ? this.pairs.howJoined(conn) : 'tcp-option';
        if (local) span.attributes[LOUPE_ATTR.PAIRED_LATE] = true;
      } else {
        // The kernel chose this trace and tags the calls the serving thread makes with it.
        span.traceId = kernel ? kernel.traceId : this.ids.traceId();
        context = 'new';
        // Only a client end watched here can still send this request's record; a server watched
        // alone (`--pid` on it, a remote client) held every span a second for nothing.
        if (!oneWay && (this.pairs.hasClientEnd(conn) || this.clientMayBeUnseen(conn))) this.awaitClient(pending);
      }
      if (pairing.servesCalls) this.threads.begin(pending, m.tid);
    } else {
      const tagged = kernel?.kind === 'client_call' ? { traceId: kernel.traceId, spanId: kernel.spanId, fresh: kernel.origin === 'new' } : undefined;
      context = this.parents.choose(conn, m.tid, span, header ? { ...header, traceState } : undefined, pairing.goClientCalls, start.goCall, tagged);
      if (header || start.messages) context = this.messages.join(pending, header && `${header.traceId}|${header.parentId}|${start.fingerprint}`, start.messages, context);
      if (!oneWay && !this.claimWaitingServer(conn, pending) && pairing.acrossConnection === 'same-bytes') this.pairs.addUnclaimed(pending);
    }
    span.attributes[LOUPE_ATTR.CONTEXT] = context;
    if (m.error !== undefined) span.attributes[LOUPE_ATTR.PARSE_ERROR] = m.error;
    if (m.parseErrorCode !== undefined) span.attributes[LOUPE_ATTR.PARSE_ERROR_CODE] = m.parseErrorCode;
    if (m.lostBytes) span.attributes[LOUPE_ATTR.LOST_BYTES] = m.lostBytes;
    if (conn.midStream) span.attributes[LOUPE_ATTR.MID_STREAM] = true;
    if (!oneWay) push(this.inFlight, conn.id, pending);
    if (side === 'server' && pairing.servesCalls && !oneWay) this.go.onServerRequest(pending);
    start.decorate?.(span);
    if (oneWay) this.finishSpan(pending, m.tsEnd);
    if (oneWay && span.kind === 'consumer' && side === 'client') this.threads.delivered(pending, m.tid, m.tsEnd);
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
   * An answer to a request already ended as timed out? Requests answered in
   * order (HTTP/1, the databases): it must not pair with a later request.
   */
  private lateAnswer(conn: Connection): boolean {
    const late = this.lateResponses.get(conn.id);
    if (!late) return false;
    if (late === 1) this.lateResponses.delete(conn.id);
    else this.lateResponses.set(conn.id, late - 1);
    this.stats.orphanResponses++;
    return true;
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
    const server = this.pairs.serverOf(conn);
    if (!server) return false;
    // Parented already by the TCP option this very client span sent: the two ends of one connection, as a pair is.
    const tagged = this.inFlight.get(server.id)?.find((p) => p.span.parentSpanId === client.span.spanId && p.pairedWith === undefined);
    if (tagged) {
      client.claimed = true;
      this.pair(client, tagged);
      return true;
    }
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
    this.aliases.alias(span.traceId, client.span.traceId);
    // Parented before anything held goes out: the server span itself is among them when it ended first.
    parentTo(span, ctxOf(client.span));
    span.attributes[LOUPE_ATTR.CONTEXT] = this.pairs.howJoined(server);
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

  /**
   * A connection met mid-life has no open record: its client end, if watched here, becomes known
   * with its first record, which a writer preempted at its syscall's exit sends after the server
   * read its request (CI, 2 busy cores: the first request after the agent started went unpaired).
   * So the first request on one whose peer is on this host waits as if its client were known; once
   * that client's record came, it is known for the next.
   */
  private clientMayBeUnseen(conn: Connection): boolean {
    if (!conn.midStream || this.waitedMidStream.has(conn) || !this.pairs.peerOnHost(conn)) return false;
    this.waitedMidStream.add(conn);
    return true;
  }

  private awaitClient(pending: InFlight): void {
    pending.awaitingClient = true;
    this.awaitingTraces.set(pending.span.traceId, { server: pending, held: [] });
  }

  private finishSpan(pending: InFlight, endNs: bigint): void {
    const span = pending.span;
    const server = pending.conn.role === 'server';
    if (!server) this.pairs.removeUnclaimed(pending);
    span.endNs = endNs;
    // Begun under a server span that a late pairing moved into its client's trace: it moves too.
    span.traceId = this.aliases.resolve(span.traceId);
    pending.ended = true;
    const other = pending.pairedWith;
    if (other?.ended && span.attributes[LOUPE_ATTR.INCOMPLETE] === undefined && other.span.attributes[LOUPE_ATTR.INCOMPLETE] === undefined) {
      // See pair(): whichever ends second keeps the server's end within the client's (ends that were seen, not timed out).
      if (server && span.endNs > other.span.endNs) span.endNs = other.span.endNs;
      if (!server && span.endNs < other.span.endNs) span.endNs = other.span.endNs;
    }
    this.threads.end(pending);
    this.go.onServerEnd(pending);
    const done = pending.handlerStartNs !== undefined ? [span, ...this.spans.phases(pending)] : [span];
    this.stats.spans += done.length;
    if (this.messages.hold(pending, done, endNs)) return;
    const awaiting = this.awaitingTraces.get(span.traceId);
    if (awaiting?.server === pending) {
      // Its client has not come while it ran: it may yet (see endedAwaiting), so the subtree waits.
      awaiting.endedNs = endNs;
      awaiting.held.push(...done);
      push(this.endedAwaiting, pending.conn.id, pending);
      return;
    }
    this.emitOrHold(done);
  }

  /** Ended spans: held while their trace waits for its server request's client, else out. */
  private emitOrHold(spans: Span[]): void {
    const awaiting = this.awaitingTraces.get(spans[0]!.traceId);
    if (awaiting) awaiting.held.push(...spans);
    else for (const s of spans) this.emit(s);
  }

  /** Server requests whose client did not come within the grace (all of them at the end of input): their subtrees go out in their own traces. */
  private releaseAwaiting(now: bigint | undefined): void {
    const touched = new Set<number>();
    for (const [traceId, awaiting] of this.awaitingTraces) {
      if (awaiting.endedNs === undefined || (now !== undefined && awaiting.endedNs + AWAIT_CLIENT_AFTER_END_NS >= now)) continue;
      this.awaitingTraces.delete(traceId);
      awaiting.server.awaitingClient = false;
      touched.add(awaiting.server.conn.id);
      for (const h of awaiting.held) this.emit(h);
    }
    // One pass per connection: a splice per released request made a second of 14,000 requests/s on 8 connections cost 0.5 s.
    for (const id of touched) {
      const left = this.endedAwaiting.get(id)!.filter((p) => p.awaitingClient === true);
      if (left.length > 0) this.endedAwaiting.set(id, left);
      else this.endedAwaiting.delete(id);
    }
  }
}

/** What a protocol module is told of a connection. */
function viewOf(conn: Connection): ConnectionView {
  return { role: conn.role === 'server' ? 'server' : 'client', local: conn.local, remote: conn.remote, tls: conn.tls };
}
