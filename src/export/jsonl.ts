/** One span per line, in the order spans completed; the format `loupe replay --format jsonl` writes. */
import type { Span } from '../correlator/span';
import type { AttributeValue } from '../parsers/spans';
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
  if (span.links) json.links = linksJson(span.links);
  return json;
}

/** A span's links as the format writes them: a link's empty trace state left out. */
const linksJson = (links: NonNullable<Span['links']>) => links.map((l) => (l.traceState ? l : { traceId: l.traceId, spanId: l.spanId }));

/** An attribute key's `"key":`, escaped once: keys come from a small vocabulary. */
const keyTexts = new Map<string, string>();
const MAX_KEY_TEXTS = 4096;

function keyText(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = `${JSON.stringify(key)}:`;
    if (keyTexts.size < MAX_KEY_TEXTS) keyTexts.set(key, text);
  }
  return text;
}

/** Characters JSON.stringify escapes: quote, backslash, controls, and surrogates (a lone one is escaped). */
// eslint-disable-next-line no-control-regex -- these are the characters JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function stringText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** A value as JSON.stringify writes it inside an object (undefined: the key is left out). */
function valueText(value: AttributeValue | undefined): string | undefined {
  switch (typeof value) {
    case 'string':
      return stringText(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      return JSON.stringify(value);
  }
}

/**
 * `JSON.stringify(spanToJson(span, bootTimeNs))`, written directly: the object built only to be
 * stringified, and the generic walk over it, were a quarter of the live agent's JavaScript thread
 * (JSON.stringify of a 650-byte span about 2.5 µs). Ids are hex (no escapes); every other string
 * goes through JSON.stringify. The same bytes: jsonl.test.ts compares the two over random spans.
 */
export function spanToJsonLine(span: Span, bootTimeNs: bigint): string {
  let out = `{"traceId":${stringText(span.traceId)},"spanId":${stringText(span.spanId)},"parentSpanId":${stringText(span.parentSpanId)}`;
  if (span.parentIsRemote) out += ',"parentIsRemote":true';
  if (span.traceState) out += `,"traceState":${JSON.stringify(span.traceState)}`;
  out += `,"name":${stringText(span.name)},"kind":"${span.kind}","service":${stringText(span.service)},"pid":${valueText(span.pid)}`;
  out += `,"startTimeUnixNano":"${wallNs(bootTimeNs, span.startNs)}","endTimeUnixNano":"${wallNs(bootTimeNs, span.endNs)}","durationNs":${valueText(Number(span.endNs - span.startNs))}`;
  out += `,"status":${JSON.stringify(span.status)},"attributes":{`;
  let first = true;
  const attributes = span.attributes;
  for (const key in attributes) {
    const value = valueText(attributes[key]);
    if (value === undefined) continue;
    out += first ? keyText(key) + value : `,${keyText(key)}${value}`;
    first = false;
  }
  out += '}';
  if (span.links) out += `,"links":${JSON.stringify(linksJson(span.links))}`;
  return `${out}}`;
}

export class JsonlSpanSink {
  constructor(
    private readonly write: (text: string) => void,
    private readonly bootTimeNs: bigint,
  ) {}

  onSpan(span: Span): void {
    this.write(`${spanToJsonLine(span, this.bootTimeNs)}\n`);
  }
}
