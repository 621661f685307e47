/**
 * Spans -> OTLP, through the official @opentelemetry/otlp-transformer
 * serializers (no hand-written encoder). Our spans become ReadableSpans with
 * one Resource per process, so the exporter groups them per service.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime } from '@opentelemetry/api';
import { createTraceState } from '@opentelemetry/api';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { otlpTransformerPackage } from '../lazy';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { ATTR_HOST_NAME, ATTR_PROCESS_EXECUTABLE_PATH, ATTR_PROCESS_PID } from '@opentelemetry/semantic-conventions/incubating';
import type { Span } from '../correlator/span';
import type { ProcessTable } from '../discovery/processes';
import { wallNs } from './time';

const SCOPE = { name: 'loupe', version: '0.1.0' };
/** Our span kinds as OpenTelemetry's. */
export const OTEL_KIND = { server: SpanKind.SERVER, client: SpanKind.CLIENT, producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER, internal: SpanKind.INTERNAL } as const;
const STATUS = { unset: SpanStatusCode.UNSET, ok: SpanStatusCode.OK, error: SpanStatusCode.ERROR } as const;

function hrTime(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

export class OtlpSpanConverter {
  private readonly resources = new Map<string, Resource>();

  constructor(
    private readonly bootTimeNs: bigint,
    private readonly processes: ProcessTable,
    private readonly hostName: string,
  ) {}

  private resourceFor(span: Span): Resource {
    // The executable is part of the key: a pid reused by another program is another resource.
    const exe = this.processes.get(span.pid)?.exe;
    const key = `${span.pid}|${span.service}|${exe ?? ''}`;
    let r = this.resources.get(key);
    if (!r) {
      r = resourceFromAttributes({
        [ATTR_SERVICE_NAME]: span.service,
        [ATTR_PROCESS_PID]: span.pid,
        ...(exe ? { [ATTR_PROCESS_EXECUTABLE_PATH]: exe } : {}),
        [ATTR_HOST_NAME]: this.hostName,
      });
      this.resources.set(key, r);
    }
    return r;
  }

  toReadable(span: Span): ReadableSpan {
    const start = wallNs(this.bootTimeNs, span.startNs);
    const end = wallNs(this.bootTimeNs, span.endNs);
    const traceState = span.traceState ? createTraceState(span.traceState) : undefined;
    const context = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED, ...(traceState ? { traceState } : {}) };
    return {
      name: span.name,
      kind: OTEL_KIND[span.kind],
      spanContext: () => context,
      ...(span.parentSpanId ? { parentSpanContext: { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: span.parentIsRemote } } : {}),
      startTime: hrTime(start),
      endTime: hrTime(end),
      duration: hrTime(end - start),
      status: { code: STATUS[span.status.code], ...(span.status.message ? { message: span.status.message } : {}) },
      attributes: span.attributes,
      links: (span.links ?? []).map((l) => ({
        context: { traceId: l.traceId, spanId: l.spanId, traceFlags: TraceFlags.SAMPLED, ...(l.traceState ? { traceState: createTraceState(l.traceState) } : {}) },
      })),
      events: [],
      ended: true,
      resource: this.resourceFor(span),
      instrumentationScope: SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }
}

/** An ExportTraceServiceRequest in OTLP/JSON, as an OTLP/HTTP JSON exporter would send it. */
export function otlpJson(spans: ReadableSpan[]): string {
  return Buffer.from(otlpTransformerPackage().JsonTraceSerializer.serializeRequest(spans)!).toString('utf8');
}

/** The same request in OTLP protobuf. */
export function otlpProtobuf(spans: ReadableSpan[]): Uint8Array {
  return otlpTransformerPackage().ProtobufTraceSerializer.serializeRequest(spans)!;
}
