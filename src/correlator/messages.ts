/**
 * The two ends of a message through a broker: the PRODUCER span that sent it and the CONSUMER
 * spans that received it, both watched here.
 *
 *  - Carried context: when a message carried trace context, both ends see the context the sender's
 *    SDK put in its headers. The consumer becomes the child of the oldest unclaimed producer with
 *    that context and destination (`loupe.context` "message"), else it stays the child of the
 *    context it carried.
 *  - Message identity: what both ends see of a message whether or not it carried context (a Kafka
 *    batch's partition and CRC, a payload's destination and digest). A consumer links (an OTel span
 *    link, not a parent: a batch has many senders) to the latest producer span of each message it
 *    received. The sender it is already the child of is not linked again.
 *
 * Records are stamped when their syscall returns, and a producer preempted at its write's exit lets
 * the broker deliver and the consumer's read return first: its record then comes before the
 * producer's. So a consumer that finds a sender missing waits for it, until MESSAGE_WAIT_NS of the
 * records' time after it ended, its spans held meanwhile; a producer that comes in that time
 * claims it as one that came first would have.
 */
import { LOUPE_ATTR } from '../parsers/spans';
import { ctxOf, parentTo, push, type InFlight, type SpanContext } from './context';
import type { Span } from './span';

/** Producer spans kept for consumers to find, and consumers waiting for theirs; the oldest go first past this. */
const MAX_KEPT = 65536;

/** How long after it ended a consumer still waits for a sender it named (records' time). */
const MESSAGE_WAIT_NS = 1_000_000_000n;

/** A consumer whose producer has not come yet: what it misses, and its spans once it ended. */
export interface WaitingConsumer {
  span: Span;
  /** The carried context it found no producer for. */
  key?: string;
  /** Message identities it found no sender for. */
  ids: Set<string>;
  held?: Span[];
  endedNs?: bigint;
}

export class MessageJoins {
  private readonly carried = new Map<string, SpanContext[]>();
  private carriedCount = 0;
  private readonly sent = new Map<string, SpanContext>();
  /** Oldest first (a Set keeps insertion order). */
  private readonly waiting = new Set<WaitingConsumer>();
  private readonly waitingByKey = new Map<string, WaitingConsumer[]>();
  private readonly waitingById = new Map<string, WaitingConsumer[]>();

  /** `release`: spans a consumer held while it waited, when it stops waiting. */
  constructor(private readonly release: (spans: Span[]) => void) {}

  sizes(): Record<string, number> {
    return { carriedProducers: this.carriedCount, sentMessages: this.sent.size, waitingConsumers: this.waiting.size };
  }

  /**
   * A producer or consumer span begins. `key`: the context it carried and its destination, when
   * it carried one. Returns the span's `loupe.context`, which a carried-context join makes "message".
   */
  join(pending: InFlight, key: string | undefined, ids: string[] | undefined, context: string): string {
    const span = pending.span;
    if (span.kind === 'producer') {
      if (key !== undefined) this.produced(span, key);
      for (const id of ids ?? []) this.sentOne(span, id);
      return context;
    }
    if (span.kind !== 'consumer') return context;
    const wait: WaitingConsumer = { span, ids: new Set() };
    if (key !== undefined) {
      const producer = this.takeCarried(key);
      if (producer) {
        parentTo(span, producer);
        span.parentIsRemote = false;
        context = 'message';
      } else wait.key = key;
    }
    for (const id of ids ?? []) {
      const sender = this.sent.get(id);
      if (sender) link(span, sender);
      else wait.ids.add(id);
    }
    if (wait.key !== undefined || wait.ids.size > 0) this.wait(pending, wait);
    return context;
  }

  /** The consumer ended: true when its spans are held until it stops waiting. */
  hold(pending: InFlight, spans: Span[], endNs: bigint): boolean {
    const wait = pending.waitingForProducer;
    if (!wait || !this.waiting.has(wait)) return false;
    wait.held = spans;
    wait.endedNs = endNs;
    return true;
  }

  /** The records' clock moved (or, with no `now`, the input ended): consumers that waited long enough go out as they are. */
  sweep(now: bigint | undefined): void {
    for (const wait of this.waiting) {
      if (wait.endedNs === undefined) continue;
      if (now !== undefined && wait.endedNs + MESSAGE_WAIT_NS >= now) continue;
      this.stopWaiting(wait);
    }
  }

  private produced(span: Span, key: string): void {
    const producer = ctxOf(span);
    const wait = this.waitingByKey.get(key)?.[0];
    if (wait) {
      parentTo(wait.span, producer);
      wait.span.parentIsRemote = false;
      wait.span.attributes[LOUPE_ATTR.CONTEXT] = 'message';
      // A link to this sender that it made while it waited for its parent now names its parent.
      if (wait.span.links) wait.span.links = wait.span.links.filter((l) => l.spanId !== span.spanId);
      if (wait.span.links?.length === 0) delete wait.span.links;
      unindex(this.waitingByKey, key, wait);
      wait.key = undefined;
      if (wait.ids.size === 0) this.stopWaiting(wait);
      return;
    }
    push(this.carried, key, producer);
    if (++this.carriedCount > MAX_KEPT) {
      const [oldest, list] = this.carried.entries().next().value!;
      list.shift();
      this.carriedCount--;
      if (list.length === 0) this.carried.delete(oldest);
    }
  }

  private takeCarried(key: string): SpanContext | undefined {
    const list = this.carried.get(key);
    const producer = list?.shift();
    if (!producer) return undefined;
    this.carriedCount--;
    if (list!.length === 0) this.carried.delete(key);
    return producer;
  }

  private sentOne(span: Span, id: string): void {
    const sender = ctxOf(span);
    this.sent.delete(id); // re-inserted last: the map's order is its age
    this.sent.set(id, sender);
    if (this.sent.size > MAX_KEPT) this.sent.delete(this.sent.keys().next().value!);
    const waiting = this.waitingById.get(id);
    if (!waiting) return;
    this.waitingById.delete(id);
    for (const wait of waiting) {
      link(wait.span, sender);
      wait.ids.delete(id);
      if (wait.ids.size === 0 && wait.key === undefined) this.stopWaiting(wait);
    }
  }

  private wait(pending: InFlight, wait: WaitingConsumer): void {
    pending.waitingForProducer = wait;
    this.waiting.add(wait);
    if (wait.key !== undefined) push(this.waitingByKey, wait.key, wait);
    for (const id of wait.ids) push(this.waitingById, id, wait);
    if (this.waiting.size > MAX_KEPT) this.stopWaiting(this.waiting.values().next().value!);
  }

  private stopWaiting(wait: WaitingConsumer): void {
    this.waiting.delete(wait);
    if (wait.key !== undefined) unindex(this.waitingByKey, wait.key, wait);
    for (const id of wait.ids) unindex(this.waitingById, id, wait);
    if (wait.held) this.release(wait.held);
  }
}

/** The consumer links to a sender once, and never to its parent. */
function link(span: Span, sender: SpanContext): void {
  if (sender.spanId === span.parentSpanId || span.links?.some((l) => l.spanId === sender.spanId)) return;
  (span.links ??= []).push({ traceId: sender.traceId, spanId: sender.spanId, traceState: sender.traceState });
}

function unindex<K>(index: Map<K, WaitingConsumer[]>, key: K, wait: WaitingConsumer): void {
  const list = index.get(key);
  const at = list?.indexOf(wait) ?? -1;
  if (at < 0) return;
  list!.splice(at, 1);
  if (list!.length === 0) index.delete(key);
}
