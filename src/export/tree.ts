/**
 * A readable span tree per trace for the terminal. Traces are ordered by
 * their first span's start, children by start time, so the output is stable.
 */
import type { Span } from '../correlator/span';
import { formatDuration } from './time';
import { groupTraces, spanSummary } from './traces';
import { safeLines } from './terminal';
import { LOUPE_ATTR } from '../parsers/spans';

function describe(span: Span): string {
  const a = span.attributes;
  const flags: string[] = [];
  if (span.status.code === 'error') flags.push(`ERROR${span.status.message ? `: ${span.status.message}` : ''}`);
  if (a[LOUPE_ATTR.RECORDS_LOST]) flags.push(`${a[LOUPE_ATTR.RECORDS_LOST]} records lost`);
  if (a[LOUPE_ATTR.MID_STREAM]) flags.push('joined mid-stream');
  return `${span.service} ${span.kind.toUpperCase()} ${spanSummary(span)}  ${formatDuration(span.endNs - span.startNs)}${flags.length ? `  [${flags.join('; ')}]` : ''}`;
}

/** A span's links (a consumer's to the producers of what it received): the first few by span and trace. */
function linksOf(span: Span): string {
  if (!span.links) return '';
  const shown = span.links.slice(0, 3).map((l) => `${l.spanId} in trace ${l.traceId}`);
  const more = span.links.length > 3 ? ` and ${span.links.length - 3} more` : '';
  return `  (linked to ${shown.join(', ')}${more})`;
}

export function renderTree(spans: Span[]): string {
  const lines: string[] = [];
  for (const trace of groupTraces(spans)) {
    lines.push(`trace ${trace.traceId}  ${trace.spans.length} span${trace.spans.length === 1 ? '' : 's'}  ${formatDuration(trace.endNs - trace.startNs)}`);
    for (const row of trace.rows) {
      const span = row.span;
      const remote = row.parentTrace
        ? `  (parent ${span.parentSpanId} in another trace, ${row.parentTrace})`
        : row.remoteParent
          ? `  (parent ${span.parentSpanId}${span.parentIsRemote ? ' from traceparent' : ''} not in capture)`
          : '';
      lines.push(`  ${row.prefix}${row.branch}${describe(span)}  @+${formatDuration(span.startNs - trace.startNs)}${remote}${linksOf(span)}`);
    }
    lines.push('');
  }
  return safeLines(lines);
}

export class TreeSpanSink {
  readonly spans: Span[] = [];
  onSpan(span: Span): void {
    this.spans.push(span);
  }
  render(): string {
    return renderTree(this.spans);
  }
}

/**
 * A live run's trees: each trace printed once it has been quiet — no span of
 * it ended — for `quietNs` of event time, so an agent that runs for days
 * neither holds every span nor prints nothing until it stops. A span that
 * comes later still prints, as a tree of its own under the same trace id.
 */
export class StreamingTreeSink {
  /** Open traces, least recently added to first (a trace moves to the end with each span). */
  private readonly open = new Map<string, { spans: Span[]; lastEndNs: bigint }>();

  /** maxSpans: a trace never quiet (every request sent with one traceparent) prints at this many spans. */
  constructor(
    private readonly write: (text: string) => void,
    private readonly quietNs: bigint,
    private readonly maxSpans = 1000,
  ) {}

  onSpan(span: Span): void {
    let trace = this.open.get(span.traceId);
    if (trace)
      this.open.delete(span.traceId); // set again below: to the end, the most recently added to
    else trace = { spans: [], lastEndNs: span.endNs };
    trace.spans.push(span);
    if (span.endNs > trace.lastEndNs) trace.lastEndNs = span.endNs;
    if (trace.spans.length >= this.maxSpans) this.write(renderTree(trace.spans));
    else this.open.set(span.traceId, trace);
  }

  /** Print the traces quiet since `nowNs - quietNs`; the oldest first, stopping at the first still busy. */
  flushQuiet(nowNs: bigint): void {
    const ready: Span[] = [];
    for (const [id, trace] of this.open) {
      if (trace.lastEndNs + this.quietNs > nowNs) break;
      for (const span of trace.spans) ready.push(span);
      this.open.delete(id);
    }
    if (ready.length) this.write(renderTree(ready));
  }

  /** Print every trace still open. */
  flushAll(): void {
    const all: Span[] = [];
    for (const trace of this.open.values()) for (const span of trace.spans) all.push(span);
    this.open.clear();
    if (all.length) this.write(renderTree(all));
  }
}
