/**
 * Spans grouped into traces and laid out as trees, in a stable order: traces
 * by their first span's start, children by start time. Every view (the tree,
 * the waterfall, the HTML report) draws from this.
 */
import type { Span } from '../correlator/span';

export interface TraceRow {
  span: Span;
  depth: number;
  /** Tree drawing before the span: indentation and the branch (`├─ `, `└─ `). */
  prefix: string;
  branch: string;
  /** Its parent is not in this trace: not in the capture (another host, or a traceparent from outside), or in another trace (parentTrace). */
  remoteParent: boolean;
  /** The trace its parent is in, when that is another trace of the capture (a span joined wrongly: never made so on purpose). */
  parentTrace?: string;
}

export interface TraceView {
  traceId: string;
  spans: Span[];
  rows: TraceRow[];
  startNs: bigint;
  endNs: bigint;
}

export const byStart = (a: Span, b: Span) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : a.spanId < b.spanId ? -1 : 1);

export function groupTraces(spans: Span[]): TraceView[] {
  const traceOf = new Map(spans.map((s) => [s.spanId, s.traceId]));
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId) ?? [];
    list.push(s);
    byTrace.set(s.traceId, list);
  }
  const traces = [...byTrace.values()].map((list) => list.sort(byStart));
  traces.sort((a, b) => byStart(a[0]!, b[0]!));
  return traces.map((list) => {
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
    const rows: TraceRow[] = [];
    const walk = (span: Span, prefix: string, isLast: boolean, depth: number) => {
      const remoteParent = span.parentSpanId !== '' && !ids.has(span.parentSpanId);
      const parentTrace = remoteParent ? traceOf.get(span.parentSpanId) : undefined;
      rows.push({ span, depth, prefix, branch: depth === 0 ? '' : isLast ? '└─ ' : '├─ ', remoteParent, ...(parentTrace ? { parentTrace } : {}) });
      const kids = children.get(span.spanId) ?? [];
      const nextPrefix = depth === 0 ? prefix : prefix + (isLast ? '   ' : '│  ');
      kids.forEach((k, i) => walk(k, nextPrefix, i === kids.length - 1, depth + 1));
    };
    roots.forEach((r) => walk(r, '', true, 0));
    const first = list[0]!;
    const endNs = list.reduce((m, s) => (s.endNs > m ? s.endNs : m), first.endNs);
    return { traceId: first.traceId, spans: list, rows, startNs: first.startNs, endNs };
  });
}

/** What a span did, in a line: `GET /path -> 200`, `SELECT users`. */
export function spanSummary(span: Span): string {
  const a = span.attributes;
  const method = a['http.request.method'];
  if (method !== undefined && a['rpc.system'] === undefined) {
    const what = span.kind === 'server' ? `${method} ${a['url.path'] ?? ''}${a['url.query'] !== undefined ? `?${a['url.query']}` : ''}` : `${method} ${a['url.full'] ?? ''}`;
    const status = a['http.response.status_code'];
    return `${what.trim()}${status !== undefined ? ` -> ${status}` : ''}`;
  }
  const grpc = a['rpc.grpc.status_code'];
  return `${span.name}${grpc !== undefined ? ` -> grpc ${grpc}` : ''}`;
}
