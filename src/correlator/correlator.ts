/**
 * Turns parsed messages into spans and decides which trace each belongs to.
 *
 * Where a span's parent comes from, strongest first:
 *  - server span: the request's `traceparent`; else the client span whose
 *    connection is this one seen from the other end on the same host
 *    (connection-pair matching); else a new trace.
 *  - client span: the server request the same thread is serving (only when it
 *    serves exactly one: with several in flight the parent is unknowable and a
 *    wrong parent is worse than none); a `traceparent` already on the outgoing
 *    request fixes the trace id.
 * The attribute `loupe.context` says which rule applied.
 */
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import type { Endpoint } from '../events/types';
import type { ProcessTable } from '../discovery/processes';
import type { Connection } from '../streams/connections';
import type { MessageBase } from '../parsers/types';
import { headerValue, type Http1Message, type Http1Request, type Http1Response } from '../parsers/http1/messages';
import { applyResponse, requestAttributes, spanName, type RedactionOptions } from './http';
import type { IdGenerator } from './ids';
import type { Span } from './span';
import { parseTraceparent } from './traceparent';

export interface CorrelatorOptions {
  redaction: RedactionOptions;
}

export const DEFAULT_CORRELATOR_OPTIONS: CorrelatorOptions = { redaction: { queryValues: true } };

interface InFlight {
  span: Span;
  conn: Connection;
  /** A server span already took this client span as its parent. */
  claimed: boolean;
  threadKey?: string;
}

export interface CorrelatorStats {
  spans: number;
  /** Responses with no request before them (capture began mid-exchange). */
  orphanResponses: number;
  /** Requests that ended without a response (closed, or the capture ended). */
  incomplete: number;
  parseErrors: number;
}

const tupleKey = (local: Endpoint, remote: Endpoint) => `${local.addr}|${local.port}|${remote.addr}|${remote.port}`;

export class Correlator {
  readonly stats: CorrelatorStats = { spans: 0, orphanResponses: 0, incomplete: 0, parseErrors: 0 };
  private readonly inFlight = new Map<number, InFlight[]>();
  /** Open client connections by their 4-tuple, for connection-pair matching. */
  private readonly clientsByTuple = new Map<string, Connection>();
  /** Server requests in flight per thread (pid:tid). */
  private readonly serving = new Map<string, InFlight[]>();

  constructor(
    private readonly ids: IdGenerator,
    private readonly processes: ProcessTable,
    private readonly emit: (span: Span) => void,
    private readonly options: CorrelatorOptions = DEFAULT_CORRELATOR_OPTIONS,
  ) {}

  onOpen(conn: Connection): void {
    if (conn.role === 'client' && conn.local && conn.remote) this.clientsByTuple.set(tupleKey(conn.local, conn.remote), conn);
  }

  onMessage(conn: Connection, message: MessageBase): void {
    if (message.error !== undefined) this.stats.parseErrors++;
    if (message.protocol !== 'http1') return;
    const m = message as Http1Message;
    if (m.kind === 'request') {
      if (m.method === '') return; // too broken to be a request: counted as a parse error above
      this.start(conn, m);
    } else {
      if (m.status >= 100 && m.status < 200 && m.status !== 101) return; // interim: the request is still open
      const queue = this.inFlight.get(conn.id);
      const pending = queue?.shift();
      if (!pending) {
        this.stats.orphanResponses++;
        return;
      }
      this.end(pending, m);
    }
  }

  onClose(conn: Connection, ts: bigint, reason: 'closed' | 'captureEnd'): void {
    if (conn.local && conn.remote) {
      const key = tupleKey(conn.local, conn.remote);
      if (this.clientsByTuple.get(key) === conn) this.clientsByTuple.delete(key);
    }
    const queue = this.inFlight.get(conn.id);
    this.inFlight.delete(conn.id);
    for (const pending of queue ?? []) {
      this.stats.incomplete++;
      const why = reason === 'closed' ? 'connection closed before the response' : 'capture ended before the response';
      pending.span.attributes['loupe.incomplete'] = why;
      pending.span.attributes[ATTR_ERROR_TYPE] = reason === 'closed' ? 'connection_closed' : 'incomplete';
      pending.span.status = { code: 'error', message: why };
      this.finishSpan(pending, conn.lastTs > pending.span.startNs ? conn.lastTs : ts);
    }
  }

  /** Ring-buffer loss: whatever was in flight may be missing events, so say so on it. */
  onLoss(lost: bigint): void {
    for (const queue of this.inFlight.values()) {
      for (const pending of queue) {
        const before = Number(pending.span.attributes['loupe.records_lost'] ?? 0);
        pending.span.attributes['loupe.records_lost'] = before + Number(lost);
      }
    }
  }

  private start(conn: Connection, req: Http1Request): void {
    const kind = conn.role === 'server' ? 'server' : 'client';
    const span: Span = {
      traceId: '',
      spanId: this.ids.spanId(),
      parentSpanId: '',
      parentIsRemote: false,
      traceState: '',
      name: spanName(kind, req),
      kind,
      startNs: req.tsStart,
      endNs: req.tsEnd,
      service: this.processes.serviceOf(conn.pid),
      pid: conn.pid,
      attributes: requestAttributes(kind, req, conn.local, conn.remote, this.options.redaction),
      status: { code: 'unset' },
    };
    const pending: InFlight = { span, conn, claimed: false };
    const header = parseTraceparent(headerValue(req.headers, 'traceparent'));
    const traceState = headerValue(req.headers, 'tracestate');
    let context: string;
    if (kind === 'server') {
      const client = header ? undefined : this.pairedClient(conn);
      if (header) {
        span.traceId = header.traceId;
        span.parentSpanId = header.parentId;
        span.parentIsRemote = true;
        span.traceState = traceState ?? '';
        context = 'traceparent';
      } else if (client) {
        client.claimed = true;
        span.traceId = client.span.traceId;
        span.parentSpanId = client.span.spanId;
        span.traceState = client.span.traceState;
        context = 'connection-pair';
      } else {
        span.traceId = this.ids.traceId();
        context = 'new';
      }
      pending.threadKey = `${conn.pid}:${req.tid}`;
      const list = this.serving.get(pending.threadKey) ?? [];
      list.push(pending);
      this.serving.set(pending.threadKey, list);
    } else {
      const onThread = this.serving.get(`${conn.pid}:${req.tid}`) ?? [];
      const parent = onThread.length === 1 ? onThread[0]! : undefined;
      if (header) {
        span.traceId = header.traceId;
        span.traceState = traceState ?? '';
        if (parent && parent.span.traceId === header.traceId) span.parentSpanId = parent.span.spanId;
        else {
          span.parentSpanId = header.parentId;
          span.parentIsRemote = true;
        }
        context = 'traceparent';
      } else if (parent) {
        span.traceId = parent.span.traceId;
        span.parentSpanId = parent.span.spanId;
        span.traceState = parent.span.traceState;
        context = 'thread';
      } else {
        span.traceId = this.ids.traceId();
        context = onThread.length > 1 ? 'ambiguous-thread' : 'new';
      }
    }
    span.attributes['loupe.context'] = context;
    if (req.error !== undefined) span.attributes['loupe.parse_error'] = req.error;
    if (req.lostBytes) span.attributes['loupe.lost_bytes'] = req.lostBytes;
    if (conn.midStream) span.attributes['loupe.mid_stream'] = true;
    const queue = this.inFlight.get(conn.id) ?? [];
    queue.push(pending);
    this.inFlight.set(conn.id, queue);
  }

  /** The oldest client span on the connection that is this one seen from the other end. */
  private pairedClient(conn: Connection): InFlight | undefined {
    if (!conn.local || !conn.remote) return undefined;
    const client = this.clientsByTuple.get(tupleKey(conn.remote, conn.local));
    if (!client) return undefined;
    return this.inFlight.get(client.id)?.find((p) => !p.claimed);
  }

  private end(pending: InFlight, res: Http1Response): void {
    applyResponse(pending.span, res);
    if (res.error !== undefined) {
      pending.span.attributes['loupe.parse_error'] = res.error;
      pending.span.status = { code: 'error', message: res.error };
    }
    if (res.lostBytes) {
      pending.span.attributes['loupe.lost_bytes'] = Number(pending.span.attributes['loupe.lost_bytes'] ?? 0) + res.lostBytes;
    }
    this.finishSpan(pending, res.tsEnd);
  }

  private finishSpan(pending: InFlight, endNs: bigint): void {
    pending.span.endNs = endNs;
    if (pending.threadKey) {
      const list = this.serving.get(pending.threadKey);
      if (list) {
        const i = list.indexOf(pending);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.serving.delete(pending.threadKey);
      }
    }
    this.stats.spans++;
    this.emit(pending.span);
  }
}
