/**
 * What each thread serves: the server requests in flight per thread (a
 * thread-per-request server's outgoing calls belong to the one it serves),
 * and, for event loops (nginx, HAProxy, Node), the request a thread finished
 * reading last and the one a client connection was opened right after. A
 * proxy opens its upstream connection, or writes to a kept-alive one, in the
 * same turn of its loop as it reads the request that calls for it, before it
 * reads from any other socket.
 */
import { threadIo, type Connection } from '../streams/connections';
import { push, type InFlight } from './context';

/**
 * How long after a delivery a consumer thread's calls still count as handling it: a handler that writes
 * to a database takes milliseconds; a call seconds later, with no delivery between, is more likely other
 * work (a wrong parent is worse than none).
 */
const HANDLING_NS = 1_000_000_000n;

/** Processes remembered as handling deliveries on their receiving thread; the oldest forgotten first past this. */
const MAX_CONSUMER_PROCESSES = 65536;

/** A delivery handled (by a thread or a process) that a call on `conn` at `now` belongs to: on another connection, within HANDLING_NS. */
function handling(h: { span: InFlight; at: bigint } | undefined, conn: Connection, now: bigint): InFlight | undefined {
  return h && h.span.conn !== conn && now - h.at <= HANDLING_NS ? h.span : undefined;
}

/** Drop the deliveries handled longer ago than HANDLING_NS from a map kept in delivery order. */
function forgetHandled<K>(handled: Map<K, { at: bigint }>, now: bigint): void {
  for (const [key, h] of handled) {
    if (now - h.at <= HANDLING_NS) break;
    handled.delete(key);
  }
}

export class ThreadServing {
  /** Server requests in flight per thread (pid:tid). */
  private readonly serving = new Map<string, InFlight[]>();
  private readonly lastRead = new Map<string, InFlight>();
  private readonly openedFor = new WeakMap<Connection, InFlight>();
  /** Client connections whose first request was made (later ones follow lastRead). */
  private readonly usedOnce = new WeakSet<Connection>();
  /** The delivery (a CONSUMER span) each thread handled last, and when: a consumer's calls while it handles a message. */
  private readonly handling = new Map<string, { span: InFlight; at: bigint }>();
  /** The same per process: a Kafka client reads its fetches on a network thread of its own, and the handler's calls are made on another. */
  private readonly handlingByPid = new Map<number, { span: InFlight; at: bigint }>();
  /** Server requests in flight per process: a process serving none is a pure consumer, whose calls its last delivery explains. */
  private readonly servingByPid = new Map<number, number>();
  /** Processes seen handling a delivery on the thread that received it: their other threads' calls are other work. */
  private readonly handlesOnOwnThread = new Set<number>();

  sizes(): Record<string, number> {
    return {
      serving: [...this.serving.values()].reduce((n, l) => n + l.length, 0),
      handling: this.handling.size,
      handlingByPid: this.handlingByPid.size,
      servingByPid: this.servingByPid.size,
    };
  }

  /** The thread `tid` received a delivery: until its next one (or HANDLING_NS later), its calls are part of handling it. */
  delivered(pending: InFlight, tid: number, at: bigint): void {
    const key = `${pending.conn.pid}:${tid}`;
    this.handling.delete(key); // re-inserted last: the map stays in delivery order for the sweep
    this.handling.set(key, { span: pending, at });
    this.handlingByPid.delete(pending.conn.pid);
    this.handlingByPid.set(pending.conn.pid, { span: pending, at });
  }

  /**
   * The delivery the process of `conn` received last, when its own thread received none to explain the call:
   * only in a process that serves no request (a pure consumer: nothing else its calls could be for) and has
   * not been seen handling deliveries on the thread that received them, on another connection, within
   * HANDLING_NS. A Kafka consumer's fetch is read by the client's network thread (librdkafka, the Java
   * client, kafka-python's) and handled on the application's.
   */
  handledByProcess(conn: Connection, now: bigint): InFlight | undefined {
    if (this.servingByPid.has(conn.pid) || this.handlesOnOwnThread.has(conn.pid)) return undefined;
    return handling(this.handlingByPid.get(conn.pid), conn, now);
  }

  /**
   * The delivery a call belongs to: the one the calling thread received last, on another connection,
   * within HANDLING_NS — a consumer that calls a database or a service for each message it handles.
   */
  handled(conn: Connection, tid: number, now: bigint): InFlight | undefined {
    const delivery = handling(this.handling.get(`${conn.pid}:${tid}`), conn, now);
    if (!delivery) return undefined;
    this.handlesOnOwnThread.delete(conn.pid); // re-inserted last: the oldest go first past MAX_CONSUMER_PROCESSES
    this.handlesOnOwnThread.add(conn.pid);
    if (this.handlesOnOwnThread.size > MAX_CONSUMER_PROCESSES) this.handlesOnOwnThread.delete(this.handlesOnOwnThread.values().next().value!);
    return delivery;
  }

  /** Forget deliveries handled longer ago than HANDLING_NS (the map stays bounded by threads that consume). */
  sweep(now: bigint): void {
    forgetHandled(this.handling, now);
    forgetHandled(this.handlingByPid, now);
  }

  onOpen(conn: Connection): void {
    if (conn.role === 'client' && conn.openedTid !== undefined) {
      const last = this.lastRead.get(`${conn.pid}:${conn.openedTid}`);
      if (last) this.openedFor.set(conn, last);
    }
  }

  /** A server request the thread `tid` read: it serves it until the span ends. */
  begin(pending: InFlight, tid: number): void {
    pending.threadKey = `${pending.conn.pid}:${tid}`;
    push(this.serving, pending.threadKey, pending);
    this.servingByPid.set(pending.conn.pid, (this.servingByPid.get(pending.conn.pid) ?? 0) + 1);
    this.lastRead.set(pending.threadKey, pending);
  }

  end(pending: InFlight): void {
    if (!pending.threadKey) return;
    if (this.lastRead.get(pending.threadKey) === pending) this.lastRead.delete(pending.threadKey);
    const list = this.serving.get(pending.threadKey);
    if (!list) return;
    const i = list.indexOf(pending);
    if (i >= 0) {
      list.splice(i, 1);
      const n = this.servingByPid.get(pending.conn.pid)! - 1;
      if (n > 0) this.servingByPid.set(pending.conn.pid, n);
      else this.servingByPid.delete(pending.conn.pid);
    }
    if (list.length === 0) this.serving.delete(pending.threadKey);
  }

  /** The server requests the thread serves now. */
  onThread(pid: number, tid: number): InFlight[] {
    return this.serving.get(`${pid}:${tid}`) ?? [];
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
  eventLoopCause(conn: Connection, tid: number, onThread: InFlight[]): InFlight | undefined {
    const first = !this.usedOnce.has(conn);
    this.usedOnce.add(conn);
    const opened = first ? this.openedFor.get(conn) : undefined;
    const cause = opened ?? this.lastRead.get(`${conn.pid}:${tid}`);
    const before = opened ? conn.openedAfter : conn.previousOnThread;
    if (!cause || before !== threadIo(cause.conn.id, true)) return undefined;
    return onThread.includes(cause) ? cause : undefined;
  }
}
