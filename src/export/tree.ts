/**
 * A readable span tree per trace for the terminal. Traces are ordered by
 * their first span's start, children by start time, so the output is stable.
 */
import type { Span } from '../correlator/span';
import { formatDuration } from './time';

function describe(span: Span): string {
  const a = span.attributes;
  const method = a['http.request.method'];
  const what = span.kind === 'server'
    ? `${method ?? span.name} ${a['url.path'] ?? ''}${a['url.query'] !== undefined ? `?${a['url.query']}` : ''}`
    : `${method ?? span.name} ${a['url.full'] ?? ''}`;
  const status = a['http.response.status_code'];
  const outcome = status !== undefined ? ` -> ${status}` : '';
  const flags: string[] = [];
  if (span.status.code === 'error') flags.push(`ERROR${span.status.message ? `: ${span.status.message}` : ''}`);
  if (a['loupe.records_lost']) flags.push(`${a['loupe.records_lost']} records lost`);
  if (a['loupe.mid_stream']) flags.push('joined mid-stream');
  return `${span.service} ${span.kind.toUpperCase()} ${what.trim()}${outcome}  ${formatDuration(span.endNs - span.startNs)}${flags.length ? `  [${flags.join('; ')}]` : ''}`;
}

export function renderTree(spans: Span[]): string {
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId) ?? [];
    list.push(s);
    byTrace.set(s.traceId, list);
  }
  const byStart = (a: Span, b: Span) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : a.spanId < b.spanId ? -1 : 1);
  const traces = [...byTrace.values()].map((list) => list.sort(byStart));
  traces.sort((a, b) => byStart(a[0]!, b[0]!));
  const lines: string[] = [];
  for (const list of traces) {
    const ids = new Set(list.map((s) => s.spanId));
    const children = new Map<string, Span[]>();
    const roots: Span[] = [];
    for (const s of list) {
      if (s.parentSpanId && ids.has(s.parentSpanId)) {
        const c = children.get(s.parentSpanId) ?? [];
        c.push(s);
        children.set(s.parentSpanId, c);
      } else roots.push(s);
    }
    const first = list[0]!;
    const last = list.reduce((m, s) => (s.endNs > m ? s.endNs : m), first.endNs);
    lines.push(`trace ${first.traceId}  ${list.length} span${list.length === 1 ? '' : 's'}  ${formatDuration(last - first.startNs)}`);
    const walk = (span: Span, prefix: string, isLast: boolean, depth: number) => {
      const offset = formatDuration(span.startNs - first.startNs);
      const branch = depth === 0 ? '' : isLast ? '└─ ' : '├─ ';
      const remote = span.parentSpanId && !ids.has(span.parentSpanId)
        ? `  (parent ${span.parentSpanId}${span.parentIsRemote ? ' from traceparent' : ''} not in capture)`
        : '';
      lines.push(`${prefix}${branch}${describe(span)}  @+${offset}${remote}`);
      const kids = children.get(span.spanId) ?? [];
      const nextPrefix = depth === 0 ? prefix : prefix + (isLast ? '   ' : '│  ');
      kids.forEach((k, i) => walk(k, nextPrefix, i === kids.length - 1, depth + 1));
    };
    roots.forEach((r) => walk(r, '  ', true, 0));
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
