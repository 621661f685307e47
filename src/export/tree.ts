/**
 * A readable span tree per trace for the terminal. Traces are ordered by
 * their first span's start, children by start time, so the output is stable.
 */
import type { Span } from '../correlator/span';
import { formatDuration } from './time';
import { groupTraces, spanSummary } from './traces';

function describe(span: Span): string {
  const a = span.attributes;
  const flags: string[] = [];
  if (span.status.code === 'error') flags.push(`ERROR${span.status.message ? `: ${span.status.message}` : ''}`);
  if (a['loupe.records_lost']) flags.push(`${a['loupe.records_lost']} records lost`);
  if (a['loupe.mid_stream']) flags.push('joined mid-stream');
  return `${span.service} ${span.kind.toUpperCase()} ${spanSummary(span)}  ${formatDuration(span.endNs - span.startNs)}${flags.length ? `  [${flags.join('; ')}]` : ''}`;
}

export function renderTree(spans: Span[]): string {
  const lines: string[] = [];
  for (const trace of groupTraces(spans)) {
    lines.push(`trace ${trace.traceId}  ${trace.spans.length} span${trace.spans.length === 1 ? '' : 's'}  ${formatDuration(trace.endNs - trace.startNs)}`);
    for (const row of trace.rows) {
      const span = row.span;
      const remote = row.remoteParent ? `  (parent ${span.parentSpanId}${span.parentIsRemote ? ' from traceparent' : ''} not in capture)` : '';
      lines.push(`  ${row.prefix}${row.branch}${describe(span)}  @+${formatDuration(span.startNs - trace.startNs)}${remote}`);
    }
    lines.push('');
  }
  return lines.join('\n');
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
