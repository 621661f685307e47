/**
 * The goroutine tree and Go's own request events: which server request each
 * goroutine serves, what context it inherited, and the client calls Go made
 * that their bytes have not shown yet.
 *
 * Goroutines inherit context when they are created, as Go's context.Context
 * does: a child goroutine started while its parent serves a request carries
 * that request, at any depth, even after the parent exits. Goroutine ids may
 * be reused: an exit forgets the id, a create starts it afresh. Entries are
 * capped, least recently used first out.
 */
import type { GoRequestEvent, GoroutineEvent } from '../events/types';
import type { SpanStart } from '../parsers/module';
import type { Connection } from '../streams/connections';
import { ctxOf, kernelIds, push, type InFlight, type SpanContext, type TraceAliases } from './context';

interface Goroutine {
  /** The server request this goroutine serves right now. */
  serving?: InFlight;
  /** The request context it inherited from the goroutine that created it. */
  inherited?: SpanContext;
}

export interface PendingGoCall {
  goid: bigint;
  ts: bigint;
  /** What the kernel side reported for the call (client: method and URL path). */
  method?: string;
  path?: string;
  host?: string;
  /** The ids the kernel side chose for this span, and put on the wire when it could. */
  ids?: { traceId: string; spanId: string };
  /** Client calls: the ids go in a header (HTTP/1); a gRPC call's go nowhere, and a TCP option names it instead. */
  inHeader?: boolean;
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

export interface GoCounts {
  /** Go request events that matched no connection or message. */
  unmatchedGoRequests: number;
  /** Goroutine entries dropped to stay under the cap. */
  evictedGoroutines: number;
}

export class GoRuntime {
  /** Goroutines by pid:goid, least recently used first. */
  private readonly goroutines = new Map<string, Goroutine>();
  /** Processes that sent Go runtime events: threads say nothing about their requests. */
  private readonly goPids = new Set<number>();
  /** Go handler starts whose request message has not completed yet (Go reads bodies inside the handler). */
  private readonly serverStarts = new Map<string, PendingGoCall[]>();
  /** Go client calls not yet seen on the wire: by pid:fd when the fd is known, by pid otherwise. */
  private readonly clientCalls = new Map<string, PendingGoCall[]>();

  constructor(
    private readonly maxGoroutines: number,
    private readonly aliases: TraceAliases,
    private readonly counts: GoCounts,
    /** The server request on this pid:fd that no handler has taken yet. */
    private readonly unboundServerRequest: (fdKey: string) => InFlight | undefined,
  ) {}

  isGo(pid: number): boolean {
    return this.goPids.has(pid);
  }

  sizes(): Record<string, number> {
    const sum = (m: Map<string, unknown[]>) => [...m.values()].reduce((n, l) => n + l.length, 0);
    return { goroutines: this.goroutines.size, goServerStarts: sum(this.serverStarts), goClientCalls: sum(this.clientCalls) };
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
          else if (ev.fd >= 0) push(this.serverStarts, fdKey, started);
          else this.counts.unmatchedGoRequests++;
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
          const calls = this.clientCalls.get(key);
          const stale = calls?.findIndex((c) => c.goid === ev.goid && c.endedNs === undefined) ?? -1;
          if (stale >= 0) calls!.splice(stale, 1);
          push(this.clientCalls, key, {
            goid: ev.goid,
            ts: ev.ts,
            method: ev.method,
            path: ev.path,
            host: ev.host,
            inHeader: ev.kind === 'http_client',
            ...kernelIds(ev.traceparent),
          });
        } else {
          // The call returned before its bytes were seen: they may still come (ENDED_CALL_GRACE_NS).
          const call = this.clientCalls.get(key)?.find((c) => c.goid === ev.goid && c.endedNs === undefined);
          if (call) call.endedNs = ev.ts;
        }
        break;
      }
    }
  }

  /** A server request was parsed: the handler may have started before its body finished arriving. */
  onServerRequest(pending: InFlight): void {
    const fdKey = `${pending.conn.pid}:${pending.conn.fd}`;
    const started = this.serverStarts.get(fdKey)?.shift();
    if (started) {
      if (this.serverStarts.get(fdKey)!.length === 0) this.serverStarts.delete(fdKey);
      this.bindHandler(pending, started);
    }
  }

  /** The context of the request this goroutine serves, or the one it inherited. */
  contextOf(pid: number, goid: bigint): SpanContext | undefined {
    const g = this.goroutine(pid, goid, false);
    return g?.serving ? ctxOf(g.serving.span) : g?.inherited;
  }

  /** A server span ended: its goroutine serves it no more. */
  onServerEnd(pending: InFlight): void {
    if (pending.goid === undefined) return;
    const g = this.goroutines.get(`${pending.span.pid}:${pending.goid}`);
    if (g?.serving === pending) g.serving = undefined;
  }

  onClose(conn: Connection): void {
    const fdKey = `${conn.pid}:${conn.fd}`;
    this.serverStarts.delete(fdKey);
    this.clientCalls.delete(fdKey);
  }

  /** Forget handler starts and calls older than `deadline`, and returned calls past their grace. */
  sweep(now: bigint, deadline: bigint): void {
    const graceEnd = now - ENDED_CALL_GRACE_NS;
    for (const pendingMap of [this.serverStarts, this.clientCalls]) {
      for (const [key, list] of pendingMap) {
        const kept = list.filter((p) => p.ts >= deadline && (p.endedNs === undefined || p.endedNs >= graceEnd));
        this.counts.unmatchedGoRequests += list.length - kept.length;
        if (kept.length === 0) pendingMap.delete(key);
        else pendingMap.set(key, kept);
      }
    }
  }

  /**
   * The Go client call this outgoing request belongs to: by fd; else, among
   * the process's calls with the request's method and path, the first whose
   * host is the request's Host header, or the first; else the only call.
   */
  clientCall(conn: Connection, describe?: SpanStart['goCall']): PendingGoCall | undefined {
    const byFd = this.clientCalls.get(`${conn.pid}:${conn.fd}`);
    if (byFd?.length) {
      const call = byFd.shift()!;
      if (byFd.length === 0) this.clientCalls.delete(`${conn.pid}:${conn.fd}`);
      return call;
    }
    const key = `${conn.pid}`;
    const any = this.clientCalls.get(key);
    if (!any?.length) return undefined;
    const req = describe?.();
    const same = (c: PendingGoCall) => c.method === req!.method && c.path === req!.path;
    let i = req ? any.findIndex((c) => same(c) && c.host === req.host) : -1;
    if (i < 0 && req) i = any.findIndex(same);
    // The one call in flight, when it names nothing to compare: a call that returned must be named.
    const open = any.filter((c) => c.endedNs === undefined);
    if (i < 0 && open.length === 1 && any.length === 1) i = 0;
    if (i < 0) return undefined;
    const call = any.splice(i, 1)[0]!;
    if (any.length === 0) this.clientCalls.delete(key);
    return call;
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
    while (this.goroutines.size > this.maxGoroutines) {
      this.goroutines.delete(this.goroutines.keys().next().value!);
      this.counts.evictedGoroutines++;
    }
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
      this.aliases.alias(started.ids.traceId, pending.span.traceId);
    }
  }
}
