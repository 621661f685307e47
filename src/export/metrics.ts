/**
 * RED metrics (rate, errors, duration) from spans, through the official
 * OpenTelemetry metrics SDK: one histogram per kind of call, with Beyla's
 * bucket boundaries, in seconds. Low-cardinality attributes only: the route,
 * never the path; the operation and table, never the statement.
 */
import { sdkMetricsPackage } from '../lazy';
import type { Attributes, Histogram } from '@opentelemetry/api';
import type { InstrumentType, MetricData, MetricReader, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import { ATTR_HOST_NAME } from '@opentelemetry/semantic-conventions/incubating';
import { ATTR_RPC_GRPC_STATUS_CODE, ATTR_RPC_METHOD, ATTR_RPC_SERVICE, ATTR_RPC_SYSTEM } from '@opentelemetry/semantic-conventions/incubating';
import type { Span } from '../correlator/span';
import { CONTAINER_ATTRIBUTE_KEYS } from '../discovery/containers';
import { LOUPE_ATTR, type MetricFamily, type SpanKind } from '../parsers/spans';

/** Beyla's default duration buckets, in seconds. */
export const BEYLA_BUCKETS = [0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

export const METRIC_NAMES = {
  httpServer: 'http.server.request.duration',
  httpClient: 'http.client.request.duration',
  rpcServer: 'rpc.server.duration',
  rpcClient: 'rpc.client.duration',
  dbClient: 'db.client.operation.duration',
  messagingClient: 'messaging.client.operation.duration',
} as const;

const RPC_KEYS = [ATTR_RPC_SYSTEM, ATTR_RPC_SERVICE, ATTR_RPC_METHOD, ATTR_RPC_GRPC_STATUS_CODE, ATTR_ERROR_TYPE];
const MESSAGING_KEYS = [
  'messaging.system',
  'messaging.operation.name',
  'messaging.operation.type',
  'messaging.destination.name',
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_ERROR_TYPE,
];

/**
 * Per RED family (a protocol module names its spans' family), the histogram
 * a span of each kind counts in and the attributes that key it: low
 * cardinality only. A kind with no entry counts nowhere.
 */
const FAMILY_INSTRUMENTS: Record<MetricFamily, Partial<Record<SpanKind, { histogram: keyof typeof METRIC_NAMES; keys: readonly string[] }>>> = {
  http: {
    server: { histogram: 'httpServer', keys: [ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_SCHEME, ATTR_ERROR_TYPE] },
    client: { histogram: 'httpClient', keys: [ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_ERROR_TYPE] },
  },
  rpc: {
    server: { histogram: 'rpcServer', keys: RPC_KEYS },
    client: { histogram: 'rpcClient', keys: [...RPC_KEYS, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT] },
  },
  // A database server's own spans have no OTel metric of their own: its clients' histogram is not theirs to fill.
  db: {
    client: {
      histogram: 'dbClient',
      keys: [ATTR_DB_SYSTEM_NAME, ATTR_DB_OPERATION_NAME, ATTR_DB_COLLECTION_NAME, ATTR_DB_RESPONSE_STATUS_CODE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_ERROR_TYPE],
    },
  },
  // Sending and receiving messages, as OTel's messaging conventions count them: one histogram, by operation.
  messaging: {
    producer: { histogram: 'messagingClient', keys: MESSAGING_KEYS },
    consumer: { histogram: 'messagingClient', keys: MESSAGING_KEYS },
  },
};

function pick(span: Span, keys: readonly string[]): Attributes {
  const out: Attributes = { [ATTR_SERVICE_NAME]: span.service };
  const copy = (from: readonly string[]) => {
    for (const k of from) {
      const v = span.attributes[k];
      if (v !== undefined) out[k] = v;
    }
  };
  copy(keys);
  // A service's containers are series of their own, as a pod's are in Beyla: one per container, not per request.
  if (span.attributes['container.id'] !== undefined) copy(CONTAINER_ATTRIBUTE_KEYS);
  return out;
}

/** What a live agent has done so far, for its own metrics (Beyla's internal metrics, in kind). */
export interface AgentCounts {
  /** Records taken from the kernel side into the pipeline. */
  records: number;
  /** Records the kernel side could not hand over (ring buffer full). */
  lost: number;
  /** Spans made. */
  spans: number;
  /** Spans the OTLP export queue dropped (full, or the collector down). */
  spansDropped: number;
}

export const AGENT_METRIC_NAMES = {
  records: 'loupe.agent.records',
  lost: 'loupe.agent.records.lost',
  spans: 'loupe.agent.spans',
  spansDropped: 'loupe.agent.spans.dropped',
} as const;

/** The service the agent itself reports as: its own counters, and a provider's resource before any split. */
export const AGENT_SERVICE = 'loupe';

/**
 * OTLP metrics grouped by the service that made them, as traces are: a
 * collector or backend keys RED metrics on the resource's `service.name`, and
 * one provider has only one resource. The SDK makes one ResourceMetrics per
 * collection; this exporter splits its points by their `service.name`
 * attribute into one ResourceMetrics per service (the attribute moves to the
 * resource) and hands each to the real exporter. Points without it (the
 * agent's own counters) stay with the agent's resource.
 */
export class PerServiceMetricExporter implements PushMetricExporter {
  private readonly resources = new Map<string, Resource>();

  constructor(
    private readonly inner: PushMetricExporter,
    private readonly hostName?: string,
  ) {}

  private resourceOf(service: string, agent: Resource): Resource {
    let r = this.resources.get(service);
    if (!r) {
      r = agent.merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: service, ...(this.hostName ? { [ATTR_HOST_NAME]: this.hostName } : {}) }));
      this.resources.set(service, r);
    }
    return r;
  }

  /** One ResourceMetrics per service, in the order services first appear; the agent's own first. */
  split(metrics: ResourceMetrics): ResourceMetrics[] {
    const byService = new Map<string, Map<ResourceMetrics['scopeMetrics'][number]['scope'], Map<MetricData, MetricData['dataPoints']>>>();
    for (const sm of metrics.scopeMetrics) {
      for (const metric of sm.metrics) {
        for (const point of metric.dataPoints) {
          const service = point.attributes[ATTR_SERVICE_NAME];
          const key = typeof service === 'string' ? service : '';
          let scopes = byService.get(key);
          if (!scopes) byService.set(key, (scopes = new Map()));
          let ofScope = scopes.get(sm.scope);
          if (!ofScope) scopes.set(sm.scope, (ofScope = new Map()));
          let points = ofScope.get(metric);
          if (!points) ofScope.set(metric, (points = []));
          if (key) {
            const { [ATTR_SERVICE_NAME]: _moved, ...attributes } = point.attributes;
            (points as unknown[]).push({ ...point, attributes });
          } else (points as unknown[]).push(point);
        }
      }
    }
    const out: ResourceMetrics[] = [];
    for (const [service, scopes] of [...byService].sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : 0))) {
      out.push({
        resource: service ? this.resourceOf(service, metrics.resource) : metrics.resource,
        scopeMetrics: [...scopes].map(([scope, ofScope]) => ({
          scope,
          metrics: [...ofScope].map(([metric, dataPoints]) => ({ ...metric, dataPoints }) as MetricData),
        })),
      });
    }
    return out;
  }

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const parts = this.split(metrics);
    if (parts.length === 0) return resultCallback({ code: ExportResultCode.SUCCESS });
    let left = parts.length;
    let failure: ExportResult | undefined;
    for (const part of parts) {
      this.inner.export(part, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) failure ??= result;
        if (--left === 0) resultCallback(failure ?? result);
      });
    }
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  selectAggregationTemporality(type: InstrumentType) {
    return this.inner.selectAggregationTemporality!(type);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

export class RedMetrics {
  readonly provider: import('@opentelemetry/sdk-metrics').MeterProvider;
  private readonly histograms: Record<keyof typeof METRIC_NAMES, Histogram>;

  constructor(readers: MetricReader[]) {
    this.provider = new (sdkMetricsPackage().MeterProvider)({ resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: AGENT_SERVICE }), readers });
    const meter = this.provider.getMeter('loupe', '0.1.0');
    const histogram = (name: string, description: string) => meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: BEYLA_BUCKETS } });
    this.histograms = {
      httpServer: histogram(METRIC_NAMES.httpServer, 'Duration of HTTP server requests seen by Loupe'),
      httpClient: histogram(METRIC_NAMES.httpClient, 'Duration of HTTP client requests seen by Loupe'),
      rpcServer: histogram(METRIC_NAMES.rpcServer, 'Duration of RPC server calls seen by Loupe'),
      rpcClient: histogram(METRIC_NAMES.rpcClient, 'Duration of RPC client calls seen by Loupe'),
      dbClient: histogram(METRIC_NAMES.dbClient, 'Duration of database client operations seen by Loupe'),
      messagingClient: histogram(METRIC_NAMES.messagingClient, 'Duration of messaging operations (send, receive) seen by Loupe'),
    };
  }

  /** A SpanSink: every finished request span counts once, in its family's histogram. Phase spans and ignored routes do not. */
  onSpan(span: Span): void {
    const instrument = span.family && FAMILY_INSTRUMENTS[span.family][span.kind];
    if (!instrument || span.attributes[LOUPE_ATTR.ROUTE_IGNORED]) return;
    this.histograms[instrument.histogram].record(Number(span.endNs - span.startNs) / 1e9, pick(span, instrument.keys));
  }

  /** The agent's own counters, read when the metrics are collected (a scrape, an export). */
  observeAgent(read: () => AgentCounts): void {
    const meter = this.provider.getMeter('loupe', '0.1.0');
    const counters = {
      records: meter.createObservableCounter(AGENT_METRIC_NAMES.records, { description: 'Records the agent took from the kernel side' }),
      lost: meter.createObservableCounter(AGENT_METRIC_NAMES.lost, { description: 'Records the kernel side could not hand to the agent (ring buffer full)' }),
      spans: meter.createObservableCounter(AGENT_METRIC_NAMES.spans, { description: 'Spans the agent made' }),
      spansDropped: meter.createObservableCounter(AGENT_METRIC_NAMES.spansDropped, { description: 'Spans the OTLP export queue dropped' }),
    };
    meter.addBatchObservableCallback((result) => {
      const now = read();
      for (const key of Object.keys(counters) as Array<keyof AgentCounts>) result.observe(counters[key], now[key]);
    }, Object.values(counters));
  }

  async shutdown(): Promise<void> {
    await this.provider.forceFlush().catch(() => {});
    await this.provider.shutdown().catch(() => {});
  }
}
