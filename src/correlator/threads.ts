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

export class ThreadServing {
  /** Server requests in flight per thread (pid:tid). */
  private readonly serving = new Map<string, InFlight[]>();
  private readonly lastRead = new Map<string, InFlight>();
  private readonly openedFor = new WeakMap<Connection, InFlight>();
  /** Client connections whose first request was made (later ones follow lastRead). */
  private readonly usedOnce = new WeakSet<Connection>();
  /** The delivery (a CONSUMER span) each thread handled last, and when: a consumer's calls while it handles a message. */
  private readonly handling = new Map<string, { span: InFlight; at: bigint }>();

  sizes(): Record<string, number> {
    return { serving: [...this.serving.values()].reduce((n, l) => n + l.length, 0), handling: this.handling.size };
  }

  /** The thread `tid` received a delivery: until its next one (or HANDLING_NS later), its calls are part of handling it. */
  delivered(pending: InFlight, tid: number, at: bigint): void {
    const key = `${pending.conn.pid}:${tid}`;
    this.handling.delete(key); // re-inserted last: the map stays in delivery order for the sweep
    this.handling.set(key, { span: pending, at });
  }

  /**
   * The delivery a call belongs to: the one the calling thread received last, on another connection,
   * within HANDLING_NS — a consumer that calls a database or a service for each message it handles.
   */
  handled(conn: Connection, tid: number, now: bigint): InFlight | undefined {
    const h = this.handling.get(`${conn.pid}:${tid}`);
    if (!h || h.span.conn === conn || now - h.at > HANDLING_NS) return undefined;
    return h.span;
  }

  /** Forget deliveries handled longer ago than HANDLING_NS (the map stays bounded by threads that consume). */
  sweep(now: bigint): void {
    for (const [key, h] of this.handling) {
      if (now - h.at <= HANDLING_NS) break;
      this.handling.delete(key);
    }
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
    this.lastRead.set(pending.threadKey, pending);
  }

  end(pending: InFlight): void {
    if (!pending.threadKey) return;
    if (this.lastRead.get(pending.threadKey) === pending) this.lastRead.delete(pending.threadKey);
    const list = this.serving.get(pending.threadKey);
    if (!list) return;
    const i = list.indexOf(pending);
    if (i >= 0) list.splice(i, 1);
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
