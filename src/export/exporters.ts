/**
 * Where spans and metrics go besides the chosen output: OTLP (traces and
 * metrics, http/protobuf or gRPC, through the official exporters, configured
 * by the standard OTEL_EXPORTER_OTLP_* variables) and a Prometheus /metrics
 * endpoint. A collector that is down costs a bounded queue and counters,
 * never a crash or an unbounded heap.
 */
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { MetricData, MetricReader } from '@opentelemetry/sdk-metrics';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { otlpExporterPackages, sdkMetricsPackage } from '../lazy';
import type { Span } from '../correlator/span';
import { PerServiceMetricExporter, RedMetrics, type AgentCounts } from './metrics';
import type { TraceSampler } from './sampling';
import { protocol, validateExportEnv, type ExportOptions, type ExportStats } from './export-config';

/** Exports in flight at once: one at a time left a fast collector idle while the agent waited for each answer. */
const MAX_IN_FLIGHT = 4;

/** Spans for an OTLP exporter, in batches, from a queue that drops its oldest when full. */
export class OtlpTraceQueue {
  readonly stats: ExportStats = { exported: 0, unsampled: 0, dropped: 0, failedBatches: 0 };
  private queue: ReadableSpan[] = [];
  private readonly pending = new Set<Promise<void>>();
  /** The last export failed: nobody waits for a collector that is down (its batches are dropped and counted). */
  private failing = false;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly convert: (span: Span) => ReadableSpan,
    private readonly maxQueue = 16384,
    private readonly batchSize = 512,
    private readonly sampler?: TraceSampler,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  onSpan(span: Span): void {
    // Before the conversion, which costs as much as the rest of the agent's work on a span.
    if (this.sampler && !this.sampler.sampled(span)) {
      this.stats.unsampled++;
      return;
    }
    if (this.queue.length >= this.maxQueue) {
      // The oldest batch at once: a shift per span moved the whole queue each time, and an agent
      // already short of CPU then exported less and less.
      this.stats.dropped += this.queue.splice(0, this.batchSize).length;
    }
    this.queue.push(this.convert(span));
    if (this.queue.length >= this.batchSize && this.pending.size < MAX_IN_FLIGHT) this.flush();
  }

  /** Send what is queued, a batch per export, with at most MAX_IN_FLIGHT exports at once: a slow collector queues here. */
  flush(): void {
    while (this.pending.size < MAX_IN_FLIGHT && this.queue.length > 0) this.exportBatch(this.queue.splice(0, this.batchSize));
  }

  private exportBatch(batch: ReadableSpan[]): void {
    const done = new Promise<void>((resolve) => {
      this.exporter.export(batch, (result) => {
        this.failing = result.code !== 0;
        if (result.code === 0) this.stats.exported += batch.length;
        else {
          this.stats.failedBatches++;
          this.stats.dropped += batch.length;
          this.stats.lastError = result.error?.message ?? 'export failed';
        }
        resolve();
      });
    });
    this.pending.add(done);
    void done.then(() => {
      this.pending.delete(done);
      if (this.queue.length >= this.batchSize) this.flush();
    });
  }

  /** Resolves once the queue is down to half its bound, or at once while the collector fails: a replay waits here instead of dropping spans. */
  async room(): Promise<void> {
    while (this.queue.length > this.maxQueue / 2 && !this.failing) {
      this.flush();
      await Promise.race(this.pending);
    }
  }

  /** Send what is queued and stop; while the collector fails, what is still queued is dropped and counted, not tried batch by batch. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.pending.size > 0) {
      if (this.failing) {
        this.stats.dropped += this.queue.length;
        this.queue = [];
      }
      this.flush();
      await Promise.all(this.pending);
    }
    await this.exporter.shutdown().catch(() => {});
  }
}

export class Exporters {
  private traces: OtlpTraceQueue | undefined;
  private metrics: RedMetrics | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly prometheus: PrometheusExporter | undefined;

  constructor(options: ExportOptions, convert: (span: Span) => ReadableSpan) {
    const readers: MetricReader[] = [];
    if (options.otlp) {
      const sampler = validateExportEnv(options)!;
      const packages = otlpExporterPackages();
      const traceExporter = protocol('TRACES') === 'grpc' ? new packages.grpcTraces.OTLPTraceExporter() : new packages.protoTraces.OTLPTraceExporter();
      this.traces = new OtlpTraceQueue(traceExporter, convert, undefined, undefined, sampler);
      const metricExporter = protocol('METRICS') === 'grpc' ? new packages.grpcMetrics.OTLPMetricExporter() : new packages.protoMetrics.OTLPMetricExporter();
      const interval = Number(process.env.OTEL_METRIC_EXPORT_INTERVAL ?? 10_000);
      readers.push(
        new (sdkMetricsPackage().PeriodicExportingMetricReader)({
          exporter: new PerServiceMetricExporter(metricExporter, options.hostName),
          exportIntervalMillis: interval > 0 ? interval : 10_000,
        }),
      );
    }
    if (options.prometheusPort) {
      this.prometheus = new (otlpExporterPackages().prometheus.PrometheusExporter)({ port: options.prometheusPort });
      withUnitSuffixes(this.prometheus);
      readers.push(this.prometheus);
    }
    if (readers.length) this.metrics = new RedMetrics(readers);
    if (options.flushIntervalMs && this.traces) {
      const traces = this.traces;
      this.timer = setInterval(() => traces.flush(), options.flushIntervalMs);
      this.timer.unref();
    }
  }

  get active(): boolean {
    return this.traces !== undefined || this.metrics !== undefined;
  }

  onSpan(span: Span): void {
    this.traces?.onSpan(span);
    this.metrics?.onSpan(span);
  }

  /** Resolves when the trace queue has room again (at once without OTLP). */
  async room(): Promise<void> {
    await this.traces?.room();
  }

  /** A live agent's own counters go out with the RED metrics. */
  observeAgent(read: () => Omit<AgentCounts, 'spansDropped'>): void {
    this.metrics?.observeAgent(() => ({ ...read(), spansDropped: this.traces?.stats.dropped ?? 0 }));
  }

  get traceStats(): ExportStats | undefined {
    return this.traces?.stats;
  }

  /** Send everything still queued and stop (metrics flush a last time). */
  async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.traces?.drain();
    await this.metrics?.shutdown();
  }
}

interface SerializerInternals {
  _serializeMetricData(metricData: MetricData, scope: unknown): string;
}

/**
 * Prometheus names carry their unit as the OpenTelemetry-to-Prometheus rules
 * and Beyla's metrics have it: `http_server_request_duration_seconds_bucket`.
 * The exporter (0.5x) leaves the unit out of the name; its serializer is
 * given the name with the unit's suffix instead (pinned version: the test
 * that scrapes /metrics with a real Prometheus fails if this stops holding).
 */
function withUnitSuffixes(exporter: PrometheusExporter): void {
  const serializer = (exporter as unknown as { _serializer: SerializerInternals })._serializer;
  const serialize = serializer._serializeMetricData.bind(serializer);
  serializer._serializeMetricData = (metricData, scope) => {
    const suffix = metricData.descriptor.unit === 's' && !metricData.descriptor.name.endsWith('_seconds') ? '_seconds' : '';
    return serialize(suffix ? { ...metricData, descriptor: { ...metricData.descriptor, name: metricData.descriptor.name + suffix } } : metricData, scope);
  };
}
