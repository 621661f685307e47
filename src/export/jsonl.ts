/** One span per line, in the order spans completed; the format `loupe replay --format jsonl` writes. */
import type { Span } from '../correlator/span';
import { wallNs } from './time';

export function spanToJson(span: Span, bootTimeNs: bigint): Record<string, unknown> {
  // Built key by key rather than with conditional spreads: this runs per span, and the key order is the format.
  const json: Record<string, unknown> = { traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId };
  if (span.parentIsRemote) json.parentIsRemote = true;
  if (span.traceState) json.traceState = span.traceState;
  json.name = span.name;
  json.kind = span.kind;
  json.service = span.service;
  json.pid = span.pid;
  json.startTimeUnixNano = wallNs(bootTimeNs, span.startNs).toString();
  json.endTimeUnixNano = wallNs(bootTimeNs, span.endNs).toString();
  json.durationNs = Number(span.endNs - span.startNs);
  json.status = span.status;
  json.attributes = span.attributes;
  if (span.links) json.links = span.links.map((l) => (l.traceState ? l : { traceId: l.traceId, spanId: l.spanId }));
  return json;
}

export class JsonlSpanSink {
  constructor(
    private readonly write: (text: string) => void,
    private readonly bootTimeNs: bigint,
  ) {}

  onSpan(span: Span): void {
    this.write(`${JSON.stringify(spanToJson(span, this.bootTimeNs))}\n`);
  }
}
