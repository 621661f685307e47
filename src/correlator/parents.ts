/**
 * Where a client span belongs, strongest rule first: a `traceparent` already
 * on the outgoing request (an SDK or our injection put it there); else, in a
 * Go program, the server request its goroutine (or the goroutine's
 * ancestors) serves; else, elsewhere, the server request the same thread
 * serves — only when it serves exactly one, since a wrong parent is worse
 * than none —, or, on an event loop, the request whose turn made the call;
 * else, on a thread that serves no request, the delivery it received just
 * before (a consumer handling a message), or in a process that serves none,
 * the delivery the process received just before (a Kafka client's network
 * thread reads what the application's thread handles); else a new trace.
 */
import type { SpanStart } from '../parsers/module';
import { LOUPE_ATTR } from '../parsers/spans';
import type { Connection } from '../streams/connections';
import { ctxOf, parentTo, sampledFlag, type SpanContext, type TraceAliases } from './context';
import type { GoRuntime } from './goroutines';
import type { IdGenerator } from './ids';
import type { Span } from './span';
import type { ThreadServing } from './threads';

export interface CarriedContext {
  traceId: string;
  parentId: string;
  traceState: string;
  flags: number;
}

/** Ids the kernel put on the wire for a call in a TCP option: the peer knows the span by them. */
export interface TaggedCall {
  traceId: string;
  spanId: string;
  /**
   * The kernel began a trace for it (no thread serving one request for certain): nothing else is
   * in that trace, so here it may stand for the trace the call is placed in. Otherwise the trace is
   * the one the kernel saw the thread serve, which, if it is not the one the call is placed in
   * here, is another request's: aliasing it would merge two traces.
   */
  fresh: boolean;
}

/** What choose() found of a client span's surroundings, for the rules that place it. */
interface Placing {
  conn: Connection;
  tid: number;
  span: Span;
  header: CarriedContext | undefined;
  /** The Go request or the one thread's request the call is made for, when there is one. */
  local: SpanContext | undefined;
  goParent: SpanContext | undefined;
  threadParent: SpanContext | undefined;
  onThread: ReturnType<ThreadServing['onThread']>;
  isGo: boolean;
}

export class ClientParents {
  constructor(
    private readonly go: GoRuntime,
    private readonly threads: ThreadServing,
    private readonly aliases: TraceAliases,
    private readonly ids: IdGenerator,
  ) {}

  /**
   * Sets the span's trace, parent and state; returns the rule that applied
   * (`loupe.context`). `goCalls`: Go client-call events describe this
   * protocol, `req` what they report of this request.
   */
  choose(conn: Connection, tid: number, span: Span, header: CarriedContext | undefined, goCalls: boolean, req?: SpanStart['goCall'], tagged?: TaggedCall): string {
    const isGo = this.go.isGo(conn.pid);
    const call = isGo && goCalls ? this.go.clientCall(conn, req) : undefined;
    const goParent = call ? this.go.contextOf(conn.pid, call.goid) : undefined;
    // Go goroutines hop between threads: a thread says nothing about a Go request.
    const onThread = isGo ? [] : this.threads.onThread(conn.pid, tid);
    const threadParent = onThread.length === 1 ? ctxOf(onThread[0]!.span) : undefined;
    const local = goParent ?? threadParent;
    if (call) span.attributes[LOUPE_ATTR.GOROUTINE] = call.goid.toString();
    // A Go HTTP/1 call's ids went on the wire in its header; a gRPC call's nowhere, and a TCP option's tag names it instead.
    const goIds = call?.ids && (call.inHeader || !tagged) ? call.ids : undefined;
    if (goIds && !header) {
      // The kernel put this call's traceparent on the wire (or would have): the peer knows the span by it.
      span.spanId = goIds.spanId;
      if (local) this.aliases.alias(goIds.traceId, local.traceId);
      else {
        span.traceId = this.aliases.resolve(goIds.traceId);
        return 'new';
      }
    }
    const placing: Placing = { conn, tid, span, header, local, goParent, threadParent, onThread, isGo };
    const tag = !goIds && !header ? tagged : undefined;
    if (!tag) return this.byRules(placing);
    if (!tag.fresh && onThread.length > 1) {
      // The kernel followed the event loop's order (bpf/propagation.bpf.h, call_trace) and sent the trace of
      // one request the thread has open: that request is the parent the peer was told of.
      const named = onThread.find((s) => this.aliases.resolve(s.span.traceId) === this.aliases.resolve(tag.traceId));
      if (named) {
        span.spanId = tag.spanId;
        parentTo(span, ctxOf(named.span));
        return 'event-loop';
      }
    }
    // The kernel put this span's id in a TCP option: the peer knows the span by it.
    span.spanId = tag.spanId;
    const context = this.byRules(placing);
    // A root here is the root the peer saw; a trace the kernel began for this call alone may stand for the one it is placed in.
    if (context === 'new' || context === 'ambiguous-thread') span.traceId = this.aliases.resolve(tag.traceId);
    else if (tag.fresh) this.aliases.alias(tag.traceId, span.traceId);
    return context;
  }

  /** The rules after a Go call's kernel ids: a header, the goroutine, the thread, a delivery, the event loop, else a new trace. */
  private byRules({ conn, tid, span, header, local, goParent, threadParent, onThread, isGo }: Placing): string {
    const setParent = (ctx: SpanContext) => parentTo(span, ctx);
    if (header) {
      span.traceId = this.aliases.resolve(header.traceId);
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
    const delivery = onThread.length === 0 && !isGo ? this.threads.handled(conn, tid, span.startNs) : undefined;
    if (delivery) {
      setParent(ctxOf(delivery.span));
      return 'delivery';
    }
    const processDelivery = onThread.length === 0 ? this.threads.handledByProcess(conn, span.startNs) : undefined;
    if (processDelivery) {
      setParent(ctxOf(processDelivery.span));
      return 'delivery-process';
    }
    const cause = onThread.length > 1 ? this.threads.eventLoopCause(conn, tid, onThread) : undefined;
    if (cause) {
      setParent(ctxOf(cause.span));
      return 'event-loop';
    }
    span.traceId = this.ids.traceId();
    return onThread.length > 1 ? 'ambiguous-thread' : 'new';
  }
}
