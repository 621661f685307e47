/**
 * source -> streams -> parsers -> correlator -> sinks, driven only by events.
 * The clock is the events' own: nothing here reads the wall clock, and
 * nothing depends on how the events were cut into batches.
 */
import type { CaptureHeader } from '../events/capture';
import type { Event, EventType } from '../events/types';
import { ProcessTable } from '../discovery/processes';
import type { ServiceRule } from '../discovery/config';
import { ConnectionTracker } from '../streams/connections';
import { Correlator, DEFAULT_CORRELATOR_OPTIONS, type CorrelatorOptions } from '../correlator/correlator';
import { IdGenerator } from '../correlator/ids';
import type { Span } from '../correlator/span';
import { Router, type RouteConfig } from '../routes/routes';

/** The routes and service rules of the configuration a capture was made with, when it says. */
function recordedRules(header: CaptureHeader): { routes?: RouteConfig; services: ServiceRule[] } {
  const c = header.config as { routes?: RouteConfig; services?: ServiceRule[] };
  const pattern = (v: unknown) => v === undefined || typeof v === 'string';
  const services = Array.isArray(c.services)
    ? c.services.filter((r) => typeof r?.name === 'string' && pattern(r.exe) && pattern(r.container) && (r.exe !== undefined || r.container !== undefined))
    : [];
  return { ...(c.routes && typeof c.routes === 'object' ? { routes: c.routes } : {}), services };
}

export interface SpanSink {
  onSpan(span: Span): void;
}

export interface PipelineStats {
  events: Partial<Record<EventType, number>>;
  /** Unknown record types, skipped: type number -> count. */
  unknownRecords: Record<string, number>;
  /** Records the kernel side reported lost (ring buffer full, ...). */
  lostRecords: number;
  connections: number;
  /** Connections whose parser threw: each parsed no further, the rest went on. */
  parserFaults: number;
  firstParserFault?: string;
}

export class Pipeline {
  readonly stats: PipelineStats = { events: {}, unknownRecords: {}, lostRecords: 0, connections: 0, parserFaults: 0 };
  readonly processes: ProcessTable;
  readonly correlator: Correlator;
  private readonly tracker: ConnectionTracker;
  /** Virtual clock: the latest event time seen. Timeouts run on it, never on the wall clock. */
  private now = 0n;
  /** The virtual clock: the latest event time seen. */
  get clock(): bigint {
    return this.now;
  }
  private nextIdleSweep = 0n;
  /** A connection nothing moved on for this long is forgotten (its close was lost). */
  private readonly idleTimeoutNs = 300_000_000_000n;
  private finished = false;

  constructor(header: CaptureHeader, sinks: SpanSink[], given?: CorrelatorOptions) {
    // Rules a live run recorded in its capture's header apply to its replay alike.
    const rules = recordedRules(header);
    const options = given ?? { ...DEFAULT_CORRELATOR_OPTIONS, ...(rules.routes ? { routes: new Router(rules.routes) } : {}) };
    this.processes = new ProcessTable(header.processes, rules.services);
    const emit = (span: Span) => {
      for (const sink of sinks) sink.onSpan(span);
    };
    this.correlator = new Correlator(new IdGenerator(header.seed), this.processes, emit, options);
    this.tracker = new ConnectionTracker({
      onOpen: (conn) => {
        this.stats.connections++;
        this.correlator.onOpen(conn);
      },
      onMessage: (conn, message) => this.correlator.onMessage(conn, message),
      onClose: (conn, ts, reason) => this.correlator.onClose(conn, ts, reason),
      onFault: (conn, fault) => {
        this.stats.parserFaults++;
        this.stats.firstParserFault ??= `connection ${conn.id} (pid ${conn.pid}, ${conn.protocol}), ${fault.side} stream byte ${fault.streamOffset}: ${fault.message}`;
      },
    });
  }

  push(events: Iterable<Event>): void {
    for (const ev of events) this.pushOne(ev);
  }

  /** One event, handled at once: a caller that decodes as it goes keeps no batch of events alive. */
  pushOne(ev: Event): void {
    if (this.finished) throw new Error('pipeline: push after finish');
    this.handle(ev);
  }

  /** A record of a type this version does not know: skipped and counted. */
  skipUnknown(recordType: number): void {
    this.stats.unknownRecords[recordType] = (this.stats.unknownRecords[recordType] ?? 0) + 1;
  }

  private handle(ev: Event): void {
    if (ev.ts > this.now) {
      this.now = ev.ts;
      if (this.now >= this.nextIdleSweep) {
        this.nextIdleSweep = this.now + 1_000_000_000n;
        this.tracker.expireIdle(this.now - this.idleTimeoutNs, this.now);
      }
      this.correlator.tick(this.now);
    }
    this.stats.events[ev.type] = (this.stats.events[ev.type] ?? 0) + 1;
    switch (ev.type) {
      case 'proc_exec':
        this.processes.onExec(ev);
        break;
      case 'proc_info':
        this.processes.learn(ev.info);
        break;
      case 'proc_fork':
        this.processes.onFork(ev.childPid, ev.pid);
        break;
      case 'nat':
        this.correlator.onNat(ev);
        break;
      case 'trace_context': {
        const conn = this.tracker.connectionOf(ev.pid, ev.cookie);
        if (conn) this.correlator.onTraceContext(conn, ev);
        break;
      }
      case 'loss':
        this.stats.lostRecords += Number(ev.lost);
        this.correlator.onLoss(ev.lost);
        break;
      case 'go_goroutine_create':
      case 'go_goroutine_exit':
        this.correlator.onGoroutine(ev);
        break;
      case 'go_request_start':
      case 'go_request_end':
        this.correlator.onGoRequest(ev);
        break;
      case 'proc_exit':
        this.tracker.handle(ev); // its connections end under the process's name
        this.processes.onExit(ev.pid);
        break;
      default:
        this.tracker.handle(ev);
        break;
    }
  }

  /** End of input: what is still open ends as incomplete, at the last event time. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.tracker.finish(this.now);
    this.correlator.finish();
  }
}
