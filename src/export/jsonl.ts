/** One span per line, in the order spans completed; the format `loupe replay --format jsonl` writes. */
import type { Span } from '../correlator/span';
import { wallNs } from './time';

export function spanToJson(span: Span, bootTimeNs: bigint): Record<string, unknown> {
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    ...(span.parentIsRemote ? { parentIsRemote: true } : {}),
    ...(span.traceState ? { traceState: span.traceState } : {}),
    name: span.name,
    kind: span.kind,
    service: span.service,
    pid: span.pid,
    startTimeUnixNano: wallNs(bootTimeNs, span.startNs).toString(),
    endTimeUnixNano: wallNs(bootTimeNs, span.endNs).toString(),
    durationNs: Number(span.endNs - span.startNs),
    status: span.status,
    attributes: span.attributes,
  };
}

export class JsonlSpanSink {
  constructor(private readonly write: (text: string) => void, private readonly bootTimeNs: bigint) {}

  onSpan(span: Span): void {
    this.write(`${JSON.stringify(spanToJson(span, this.bootTimeNs))}\n`);
  }
}
