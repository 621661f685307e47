/** The one place spans are made: a request's, a silent place-holder's, and a Go handler's two phases. */
import { containerAttributes } from '../discovery/containers';
import type { ProcessTable } from '../discovery/processes';
import type { SpanStart } from '../parsers/module';
import { LOUPE_ATTR } from '../parsers/spans';
import type { MessageBase } from '../parsers/types';
import type { Connection } from '../streams/connections';
import type { InFlight } from './context';
import type { IdGenerator } from './ids';
import type { Span } from './span';

export class SpanFactory {
  constructor(
    private readonly ids: IdGenerator,
    private readonly processes: ProcessTable,
  ) {}

  /** A request's span, in no trace yet: the parent rules place it. */
  request(conn: Connection, m: MessageBase, start: SpanStart, side: 'client' | 'server'): Span {
    const container = this.processes.get(conn.pid)?.container;
    if (container) Object.assign(start.attributes, containerAttributes(container));
    return {
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
  }

  /** The span of a silent place-holder: never emitted, only timed out or closed with its connection. */
  placeholder(m: MessageBase, pid: number): Span {
    return {
      traceId: '',
      spanId: '',
      parentSpanId: '',
      parentIsRemote: false,
      traceState: '',
      name: m.protocol,
      kind: 'client',
      startNs: m.tsStart,
      endNs: m.tsEnd,
      service: '',
      pid,
      attributes: {},
      status: { code: 'unset' },
    };
  }

  /** A process's container as span attributes (none for a host process): every span it makes carries them. */
  private containerOf(pid: number): Record<string, string> {
    const container = this.processes.get(pid)?.container;
    return container ? containerAttributes(container) : {};
  }

  /**
   * Server spans whose handler start we know get two children: the time the
   * request waited after it arrived, and the time the handler worked on it.
   */
  phases(pending: InFlight): Span[] {
    const span = pending.span;
    const handlerStart = pending.handlerStartNs!;
    const handlerEnd = pending.handlerEndNs !== undefined && pending.handlerEndNs < span.endNs ? pending.handlerEndNs : span.endNs;
    const child = (name: string, startNs: bigint, endNs: bigint): Span => ({
      traceId: span.traceId,
      spanId: this.ids.spanId(),
      parentSpanId: span.spanId,
      parentIsRemote: false,
      traceState: span.traceState,
      remoteSampled: span.remoteSampled,
      name,
      kind: 'internal',
      startNs,
      endNs: endNs > startNs ? endNs : startNs,
      service: span.service,
      pid: span.pid,
      attributes: { [LOUPE_ATTR.PHASE]: name === 'in queue' ? 'queue' : 'processing', [LOUPE_ATTR.GOROUTINE]: pending.goid!.toString(), ...this.containerOf(span.pid) },
      status: { code: 'unset' },
    });
    return [child('in queue', span.startNs, handlerStart), child('processing', handlerStart, handlerEnd)];
  }
}
