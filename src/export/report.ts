/**
 * `loupe report`: one self-contained HTML page (no network, no files beside
 * it) with a service graph — who calls whom, how often, how many failed, how
 * long — and a waterfall per trace. The data is embedded as JSON and drawn by
 * a small script, so a browser test can check what it drew.
 */
import type { Span } from '../correlator/span';
import { LOUPE_ATTR } from '../parsers/spans';
import { escapeControl } from './terminal';
import { groupTraces, spanSummary } from './traces';

export interface Edge {
  from: string;
  to: string;
  calls: number;
  errors: number;
  /** Durations of the calls, ms: the page shows the median and p95. */
  ms: number[];
  /**
   * Calls joined across processes, by the way (the callee's `loupe.context`: traceparent,
   * connection-pair, connection-pair-nat, message; `link` for a consumer joined only by span links).
   */
  joinedBy: Record<string, number>;
  /** Calls whose callee is watched (a server span answered at that address) but whose spans were not joined. */
  unjoined: number;
}

/** The ways a callee's span is joined to its caller's, from its `loupe.context`. */
const CROSS_PROCESS = new Set(['traceparent', 'tcp-option', 'connection-pair', 'conntrack', 'connection-pair-nat', 'message']);

/**
 * Calls between services: a client span and the server span it led to, or a
 * database or a peer when no server span joined. Messages go through their
 * broker: a producer's span is an edge to the destination (`kafka orders`,
 * `rabbitmq orders`), and a consumer's span an edge from it to the consumer,
 * so the graph draws producer -> broker -> consumer, joined or not.
 */
export function serviceEdges(spans: Span[]): Edge[] {
  const servedBy = new Map<string, Span>();
  for (const s of spans) if (s.kind === 'server' && s.parentSpanId) servedBy.set(s.parentSpanId, s);
  // A watched service by the address its requests name (Host, :authority): a call there that no server span joined is left unjoined.
  const serviceAt = new Map<string, string>();
  const addressOf = (s: Span) => `${s.attributes['server.address'] ?? '?'}:${s.attributes['server.port'] ?? '?'}`;
  for (const s of spans) if (s.kind === 'server' && s.attributes['server.address'] !== undefined) serviceAt.set(addressOf(s), s.service);
  const edges = new Map<string, Edge>();
  const add = (from: string, to: string, s: Span, joined: string | undefined, unjoined: boolean) => {
    const key = `${from}\u0000${to}`;
    const e = edges.get(key) ?? { from, to, calls: 0, errors: 0, ms: [], joinedBy: {}, unjoined: 0 };
    e.calls++;
    if (s.status.code === 'error') e.errors++;
    e.ms.push(Number(s.endNs - s.startNs) / 1e6);
    if (joined !== undefined) e.joinedBy[joined] = (e.joinedBy[joined] ?? 0) + 1;
    if (unjoined) e.unjoined++;
    edges.set(key, e);
  };
  const contextOf = (s: Span) => String(s.attributes[LOUPE_ATTR.CONTEXT] ?? 'new');
  for (const s of spans) {
    const destination = s.attributes['messaging.destination.name'];
    const broker = destination !== undefined ? `${s.attributes['messaging.system'] ?? 'messaging'} ${destination}` : undefined;
    if (s.kind === 'consumer' && broker !== undefined) {
      const how = CROSS_PROCESS.has(contextOf(s)) ? contextOf(s) : s.links?.length ? 'link' : undefined;
      add(broker, s.service, s, how, how === undefined);
    }
    if (s.kind !== 'client' && s.kind !== 'producer') continue;
    const server = servedBy.get(s.spanId);
    if (server) {
      add(s.service, server.service, s, contextOf(server), false);
      continue;
    }
    const db = s.attributes['db.system.name'];
    const watched = db === undefined && broker === undefined ? serviceAt.get(addressOf(s)) : undefined;
    add(s.service, db !== undefined ? `${db}` : (broker ?? watched ?? addressOf(s)), s, undefined, watched !== undefined);
  }
  return [...edges.values()].sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

const share = (n: number, of: number) => `${n} (${Math.round((100 * n) / of)}%)`;

/** How an edge's calls were joined: `connection-pair 12 (100%)`, the commonest way first; `-` for none. */
export function joinedText(e: Edge): string {
  const ways = Object.entries(e.joinedBy).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return ways.map(([way, n]) => `${way} ${share(n, e.calls)}`).join(', ') || '-';
}

/** An edge's calls left unjoined, with their share; `-` for none. */
export function unjoinedText(e: Edge): string {
  return e.unjoined ? share(e.unjoined, e.calls) : '-';
}

/** `loupe report --edges`: per service-graph edge, its calls and how they were joined, as aligned text. */
export function edgesTable(spans: Span[]): string {
  const rows = [['caller', 'callee', 'calls', 'errors', 'joined by', 'unjoined']];
  // Service names come from process names and Host headers: whatever anyone sent, shown as text.
  for (const e of serviceEdges(spans)) rows.push([escapeControl(e.from), escapeControl(e.to), String(e.calls), String(e.errors), joinedText(e), unjoinedText(e)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

const escapeJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

export function renderReport(spans: Span[], title: string): string {
  const traces = groupTraces(spans).map((t) => ({
    id: t.traceId,
    ms: Number(t.endNs - t.startNs) / 1e6,
    rows: t.rows.map((r) => ({
      depth: r.depth,
      service: r.span.service,
      kind: r.span.kind,
      what: spanSummary(r.span),
      error: r.span.status.code === 'error',
      at: Number(r.span.startNs - t.startNs) / 1e6,
      ms: Number(r.span.endNs - r.span.startNs) / 1e6,
    })),
  }));
  const services = [...new Set(spans.map((s) => s.service))].sort();
  const first = spans.reduce((m, s) => (s.startNs < m ? s.startNs : m), spans[0]?.startNs ?? 0n);
  const last = spans.reduce((m, s) => (s.endNs > m ? s.endNs : m), spans[0]?.endNs ?? 0n);
  const seconds = Math.max(Number(last - first) / 1e9, 1e-9);
  const edges = serviceEdges(spans).map((e) => ({ ...e, perSecond: e.calls / seconds, joined: joinedText(e), unjoinedText: unjoinedText(e) }));
  const data = { title, services, edges, traces, seconds };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title.replace(/[<&]/g, '')}</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
.trace { margin: 14px 0; } .row { display: flex; align-items: center; height: 20px; }
.label { width: 420px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-family: monospace; }
.lane { position: relative; flex: 1; height: 12px; background: #f4f4f4; }
.bar { position: absolute; top: 0; height: 12px; background: #4a7fd6; min-width: 2px; }
.bar.internal { background: #a9c2ea; } .bar.error { background: #d64a4a; }
.ms { width: 90px; text-align: right; font-family: monospace; }
svg text { font: 12px system-ui, sans-serif; }
</style></head>
<body>
<h1 id="title"></h1>
<h2>Service graph</h2>
<svg id="graph" width="900" height="10"></svg>
<table id="edges"><thead><tr><th>caller</th><th>callee</th><th>calls</th><th>calls/s</th><th>errors</th><th>median ms</th><th>p95 ms</th><th>joined by</th><th>unjoined</th></tr></thead><tbody></tbody></table>
<h2>Traces</h2>
<div id="traces"></div>
<script>
const data = ${escapeJson(data)};
const el = (tag, attrs = {}, text) => { const e = document.createElementNS(tag === 'svg' || ['circle','line','text','g'].includes(tag) ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : 0; };
document.getElementById('title').textContent = data.title + ' — ' + data.traces.length + ' traces, ' + data.services.length + ' services';
const nodes = [...new Set([...data.services, ...data.edges.map((e) => e.to)])];
const svg = document.getElementById('graph');
// Columns by call depth: callers left, what they call to the right.
const level = new Map(nodes.map((n) => [n, 0]));
for (let pass = 0; pass < nodes.length; pass++) for (const e of data.edges) if (e.from !== e.to) level.set(e.to, Math.max(level.get(e.to), level.get(e.from) + 1));
const columns = new Map();
for (const n of nodes) { const l = Math.min(level.get(n), 5); columns.set(l, [...(columns.get(l) || []), n]); }
const rowsNeeded = Math.max(...[...columns.values()].map((c) => c.length));
svg.setAttribute('height', String(Math.max(120, 90 * rowsNeeded + 40)));
const pos = new Map();
for (const [l, col] of columns) col.forEach((n, i) => pos.set(n, { x: 90 + l * 190, y: 45 + i * 90 }));
for (const e of data.edges) {
  const a = pos.get(e.from), b = pos.get(e.to);
  svg.appendChild(el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, stroke: e.errors ? '#d64a4a' : '#888', 'stroke-width': String(1 + Math.log2(1 + e.calls)), 'data-edge': e.from + '->' + e.to }));
  const plural = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
  svg.appendChild(el('text', { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6, 'text-anchor': 'middle' }, plural(e.calls, 'call') + (e.errors ? ', ' + plural(e.errors, 'error') : '')));
}
for (const n of nodes) {
  const p = pos.get(n);
  const g = el('g', { 'data-service': n });
  g.appendChild(el('circle', { cx: p.x, cy: p.y, r: 22, fill: data.services.includes(n) ? '#4a7fd6' : '#999' }));
  g.appendChild(el('text', { x: p.x, y: p.y + 38, 'text-anchor': 'middle' }, n));
  svg.appendChild(g);
}
const tbody = document.querySelector('#edges tbody');
for (const e of data.edges) {
  const tr = document.createElement('tr');
  tr.className = 'edge';
  for (const v of [e.from, e.to, e.calls, e.perSecond.toFixed(1), e.errors, q(e.ms, 0.5).toFixed(3), q(e.ms, 0.95).toFixed(3), e.joined, e.unjoinedText]) { const td = document.createElement('td'); td.textContent = String(v); tr.appendChild(td); }
  tbody.appendChild(tr);
}
const box = document.getElementById('traces');
for (const t of data.traces) {
  const div = document.createElement('div');
  div.className = 'trace';
  div.dataset.trace = t.id;
  const h = document.createElement('div');
  h.textContent = 'trace ' + t.id + ' — ' + t.rows.length + ' spans, ' + t.ms.toFixed(3) + ' ms';
  div.appendChild(h);
  for (const r of t.rows) {
    const row = document.createElement('div'); row.className = 'row';
    const label = document.createElement('div'); label.className = 'label';
    label.textContent = '\\u00a0'.repeat(r.depth * 3) + r.service + ' ' + (r.kind === 'internal' ? '' : r.kind.toUpperCase() + ' ') + r.what;
    const lane = document.createElement('div'); lane.className = 'lane';
    const bar = document.createElement('div'); bar.className = 'bar ' + r.kind + (r.error ? ' error' : '');
    bar.style.left = (100 * r.at / (t.ms || 1)) + '%'; bar.style.width = (100 * r.ms / (t.ms || 1)) + '%';
    lane.appendChild(bar);
    const ms = document.createElement('div'); ms.className = 'ms'; ms.textContent = r.ms.toFixed(3) + ' ms';
    row.append(label, lane, ms);
    div.appendChild(row);
  }
  box.appendChild(div);
}
</script>
</body></html>
`;
}
