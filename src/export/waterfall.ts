/**
 * `loupe view`: each trace as a waterfall in the terminal, one bar per span
 * placed on the trace's own time axis.
 */
import type { Span } from '../correlator/span';
import { formatDuration } from './time';
import { groupTraces, spanSummary } from './traces';
import { safeLines } from './terminal';

export interface WaterfallOptions {
  /** Columns of the bar area. */
  width: number;
  /** Only this trace (a prefix of its id is enough). */
  trace?: string;
}

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

export function renderWaterfall(spans: Span[], options: WaterfallOptions): string {
  const width = Math.max(10, options.width);
  const labelWidth = 56;
  const lines: string[] = [];
  const traces = groupTraces(spans).filter((t) => options.trace === undefined || t.traceId.startsWith(options.trace));
  for (const trace of traces) {
    const total = Number(trace.endNs - trace.startNs) || 1;
    lines.push(`trace ${trace.traceId}  ${trace.spans.length} spans  ${formatDuration(trace.endNs - trace.startNs)}`);
    lines.push(`${''.padEnd(labelWidth)} 0${' '.repeat(width - 1 - formatDuration(trace.endNs - trace.startNs).length)}${formatDuration(trace.endNs - trace.startNs)}`);
    for (const row of trace.rows) {
      const s = row.span;
      const from = Math.min(width - 1, Math.floor((Number(s.startNs - trace.startNs) / total) * width));
      const to = Math.max(from + 1, Math.min(width, Math.ceil((Number(s.endNs - trace.startNs) / total) * width)));
      const mark = s.status.code === 'error' ? '▓' : s.kind === 'internal' ? '░' : '█';
      const bar = `${'·'.repeat(from)}${mark.repeat(to - from)}${'·'.repeat(width - to)}`;
      const label = `${row.prefix}${row.branch}${s.service} ${s.kind === 'internal' ? '' : `${s.kind.toUpperCase()} `}${spanSummary(s)}`;
      lines.push(`${cut(label, labelWidth)} ${bar} ${formatDuration(s.endNs - s.startNs)}${s.status.code === 'error' ? ' ERROR' : ''}`);
    }
    lines.push('');
  }
  if (traces.length === 0) lines.push(options.trace ? `no trace starts with ${options.trace}` : 'no spans');
  return `${safeLines(lines)}\n`;
}
