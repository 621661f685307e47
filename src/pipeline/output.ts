/**
 * A pipeline with one output format attached (span trees, JSON lines,
 * OTLP/JSON) and the exporters asked for: what `loupe replay` runs on a
 * capture and `loupe run` on the live records alike.
 */
import { CaptureError, type CaptureHeader, type RawRecord } from '../events/capture';
import { decodeRecord, RecordError } from '../events/codec';
import type { Event } from '../events/types';
import { JsonlSpanSink } from '../export/jsonl';
import { OtlpSpanConverter, otlpJson } from '../export/otlp';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { StreamingTreeSink, TreeSpanSink } from '../export/tree';
import type { Span } from '../correlator/span';
import { Pipeline, type PipelineStats, type SpanSink } from './pipeline';
import { Exporters } from '../export/exporters';
import type { ExportOptions } from '../export/export-config';
import type { CorrelatorStats } from '../correlator/correlator';

export const SPAN_FORMATS = ['jsonl', 'otlp-json', 'tree'] as const;
export type SpanFormat = (typeof SPAN_FORMATS)[number];

export interface RunSummary {
  records: number;
  pipeline: PipelineStats;
  correlator: CorrelatorStats;
  /** OTLP / Prometheus exporters, when asked for: the caller awaits their shutdown. */
  exporters?: Exporters;
}

/** A pipeline with one output format attached; output goes to `write` (streamed for jsonl, at finish otherwise). */
export class OutputPipeline {
  readonly pipeline: Pipeline;
  records = 0;
  private readonly collected: Span[] = [];
  /** otlp-json: spans converted as they end, so each names the process its pid named then (a pid can be reused). */
  private readonly readable: ReadableSpan[] = [];
  /** otlp-json lines written before finish (a live run's, flushOtlpJson). */
  private otlpLines = 0;
  private readonly tree = new TreeSpanSink();
  /** Live tree output: traces printed as they go quiet (see `streamTrees`). */
  private readonly streamingTree: StreamingTreeSink | undefined;

  readonly exporters: Exporters | undefined;

  constructor(
    header: CaptureHeader,
    /** `spans`: write nothing, keep the spans for the caller (`spans`). */
    private readonly format: SpanFormat | 'spans',
    private readonly write: (text: string) => void,
    exports?: ExportOptions,
    /** tree: print each trace once quiet this long in event time (`flushQuiet`), not all at finish. A live run's choice. */
    streamTrees?: bigint,
  ) {
    const boot = BigInt(header.bootTimeNs);
    let otlp: OtlpSpanConverter | undefined;
    if (format === 'tree' && streamTrees !== undefined) this.streamingTree = new StreamingTreeSink(write, streamTrees);
    const sink =
      format === 'jsonl'
        ? new JsonlSpanSink(write, boot)
        : format === 'tree'
          ? (this.streamingTree ?? this.tree)
          : format === 'otlp-json'
            ? { onSpan: (span: Span) => this.readable.push((otlp ??= new OtlpSpanConverter(boot, this.pipeline.processes, header.host.hostname)).toReadable(span)) }
            : { onSpan: (span: Span) => this.collected.push(span) };
    const sinks: SpanSink[] = [sink];
    if (exports && (exports.otlp || exports.prometheusPort)) {
      let converter: OtlpSpanConverter | undefined;
      this.exporters = new Exporters({ ...exports, hostName: header.host.hostname }, (span) =>
        (converter ??= new OtlpSpanConverter(boot, this.pipeline.processes, header.host.hostname)).toReadable(span),
      );
      sinks.push(this.exporters);
    }
    this.pipeline = new Pipeline(header, sinks);
  }

  /** The spans so far, of a `spans` replay. */
  get spans(): readonly Span[] {
    return this.collected;
  }

  /** Decode and feed raw records; a bad record is a CaptureError naming file and offset. */
  pushRecords(records: RawRecord[], file: string): void {
    const where = (i: number) => records[i]!.where;
    for (let i = 0; i < records.length; i++) this.pushBuffer(records[i]!.bytes, where, i, file);
  }

  /**
   * Decode and feed one record at once: a batch's events held until its end
   * outlived young-generation collections and were copied, and that was most
   * of a live agent's GC. A bad record is a CaptureError, and everything
   * before it has been fed; `where(i)` names it, asked only then (a live run
   * makes no string per record).
   */
  pushBuffer(bytes: Buffer, where: (i: number) => string, i: number, file: string): void {
    this.records++;
    let decoded;
    try {
      decoded = decodeRecord(bytes);
    } catch (e) {
      if (e instanceof RecordError) throw new CaptureError(file, where(i), e.reason);
      throw e;
    }
    if (decoded.type === 'unknown') this.pipeline.skipUnknown(decoded.recordType);
    else this.pipeline.pushOne(decoded);
  }

  pushEvents(events: Event[]): void {
    this.records += events.length;
    this.pipeline.push(events);
  }

  /** Streamed trees: print the traces that have gone quiet by `nowNs` (default: the latest event's time). */
  flushQuiet(nowNs = this.pipeline.clock): void {
    this.streamingTree?.flushQuiet(nowNs);
  }

  /**
   * otlp-json, for a live run: the spans ended since the last call as one
   * request, a JSON line (as the OpenTelemetry Collector's file exporter
   * writes them), and forgotten.
   */
  flushOtlpJson(): void {
    if (this.format !== 'otlp-json' || this.readable.length === 0) return;
    this.write(`${otlpJson(this.readable)}\n`);
    this.readable.length = 0;
    this.otlpLines++;
  }

  finish(): RunSummary {
    this.pipeline.finish();
    if (this.streamingTree) this.streamingTree.flushAll();
    else if (this.format === 'tree') this.write(this.tree.render());
    // One document for a replay (empty when no span came); a live run's last line, if any span is left.
    if (this.format === 'otlp-json' && (this.readable.length > 0 || this.otlpLines === 0)) this.write(`${otlpJson(this.readable)}\n`);
    return {
      records: this.records,
      pipeline: this.pipeline.stats,
      correlator: this.pipeline.correlator.stats,
      ...(this.exporters ? { exporters: this.exporters } : {}),
    };
  }
}
