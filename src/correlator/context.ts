/** What the correlator's parts share: a request in flight, trace context, and the trace aliases. */
import type { Connection } from '../streams/connections';
import type { WaitingConsumer } from './messages';
import type { Span } from './span';
import { parseTraceparent } from './traceparent';

export interface SpanContext {
  traceId: string;
  spanId: string;
  traceState: string;
  remoteSampled?: boolean;
}

/** A request whose span is open: its place among its connection's requests, and what pairing and Go know of it. */
export interface InFlight {
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
  /** Answers by key (HTTP/2): the stream whose response ends this span. */
  streamId?: number;
  threadKey?: string;
  /** Go: the goroutine serving this server request, and when its handler started. */
  goid?: bigint;
  handlerStartNs?: bigint;
  handlerEndNs?: bigint;
  /** A consumer whose producer's record has not come yet (see messages.ts). */
  waitingForProducer?: WaitingConsumer;
}

export const ctxOf = (span: Span): SpanContext => ({ traceId: span.traceId, spanId: span.spanId, traceState: span.traceState, remoteSampled: span.remoteSampled });

/** The span becomes a child of this context: its trace, parent, state and sampled flag. */
export function parentTo(span: Span, ctx: SpanContext): void {
  span.traceId = ctx.traceId;
  span.parentSpanId = ctx.spanId;
  span.traceState = ctx.traceState;
  span.remoteSampled = ctx.remoteSampled;
}

/** W3C trace-flags: bit 0 says the caller sampled the trace. */
export const sampledFlag = (flags: number) => (flags & 1) === 1;

/** The ids in a kernel-made traceparent ("00-<trace>-<span>-01"), when there is one. */
export function kernelIds(traceparent: string): { ids?: { traceId: string; spanId: string } } {
  const tp = traceparent ? parseTraceparent(traceparent) : undefined;
  return tp ? { ids: { traceId: tp.traceId, spanId: tp.parentId } } : {};
}

export function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Trace ids the kernel side chose that the correlator knows by another id; the oldest go first past this. */
const MAX_TRACE_ALIASES = 65536;

/**
 * Trace ids that stand for another trace here: one the kernel side chose and
 * put on the wire for a request the correlator had placed in a trace already,
 * or a server's own trace that a late-paired client's trace took over.
 */
export class TraceAliases {
  private readonly aliases = new Map<string, string>();

  alias(otherTrace: string, trace: string): void {
    if (otherTrace === trace) return;
    this.aliases.set(otherTrace, trace);
    if (this.aliases.size > MAX_TRACE_ALIASES) this.aliases.delete(this.aliases.keys().next().value!);
  }

  /** The trace a trace id stands for here. */
  resolve(traceId: string): string {
    return this.aliases.get(traceId) ?? traceId;
  }
}
