/**
 * `loupe diff`: two span sets compared the way a person reads a regression —
 * which operations appeared or vanished, how their counts, errors and
 * latencies moved, and which trace shapes (parent-to-child paths, the
 * scenario syntax) one has and the other lacks.
 */
import type { Span } from '../correlator/span';
import { groupTraces } from './traces';
import { safeLines } from './terminal';

export interface OperationStats {
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
}

export interface DiffResult {
  operations: Array<{ key: string; a?: OperationStats; b?: OperationStats }>;
  shapes: Array<{ shape: string; a: number; b: number }>;
  /** Shapes or operations present on one side only, shape counts that differ, or an operation whose errors moved (errorsMoved). */
  changed: boolean;
}

/** How far an operation's error rate may move, in parts of one, before `diff --check` calls it a change. */
export const ERROR_RATE_DELTA = 0.05;

/**
 * An operation whose errors appeared, vanished, or whose error rate moved by
 * more than ERROR_RATE_DELTA: the oddity a regression check is for, though
 * every call still has its shape.
 */
export function errorsMoved(a: OperationStats | undefined, b: OperationStats | undefined): boolean {
  if (!a || !b) return false;
  return (a.errors === 0) !== (b.errors === 0) || Math.abs(a.errors / a.count - b.errors / b.count) > ERROR_RATE_DELTA;
}

const percent = (s: OperationStats) => `${((s.errors / s.count) * 100).toFixed(s.errors && s.errors < s.count ? 1 : 0)}%`;

const hop = (s: Span) => `${s.service} ${s.kind.toUpperCase()} ${s.name}`;

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0;
}

export function operations(spans: Span[]): Map<string, OperationStats> {
  const by = new Map<string, { ms: number[]; errors: number }>();
  for (const s of spans) {
    if (s.kind === 'internal') continue;
    const e = by.get(hop(s)) ?? { ms: [], errors: 0 };
    e.ms.push(Number(s.endNs - s.startNs) / 1e6);
    if (s.status.code === 'error') e.errors++;
    by.set(hop(s), e);
  }
  const out = new Map<string, OperationStats>();
  for (const [k, { ms, errors }] of by) {
    const sorted = ms.sort((a, b) => a - b);
    out.set(k, { count: sorted.length, errors, p50Ms: quantile(sorted, 0.5), p95Ms: quantile(sorted, 0.95) });
  }
  return out;
}

/** Each trace's root-to-leaf paths, `a > b > c`, joined: the trace's shape. */
export function shapes(spans: Span[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of groupTraces(spans.filter((s) => s.kind !== 'internal'))) {
    const paths: string[] = [];
    const stack: string[] = [];
    t.rows.forEach((row, i) => {
      stack.length = row.depth;
      stack.push(hop(row.span));
      const next = t.rows[i + 1];
      if (!next || next.depth <= row.depth) paths.push(stack.join(' > '));
    });
    const shape = [...new Set(paths)].sort().join('\n  + ');
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  }
  return counts;
}

export function diffSpans(a: Span[], b: Span[]): DiffResult {
  const oa = operations(a);
  const ob = operations(b);
  const keys = [...new Set([...oa.keys(), ...ob.keys()])].sort();
  const ops = keys.map((key) => ({ key, ...(oa.has(key) ? { a: oa.get(key)! } : {}), ...(ob.has(key) ? { b: ob.get(key)! } : {}) }));
  const sa = shapes(a);
  const sb = shapes(b);
  const all = [...new Set([...sa.keys(), ...sb.keys()])].sort();
  const sh = all.map((shape) => ({ shape, a: sa.get(shape) ?? 0, b: sb.get(shape) ?? 0 }));
  const changed = ops.some((o) => !o.a || !o.b || errorsMoved(o.a, o.b)) || sh.some((s) => s.a !== s.b);
  return { operations: ops, shapes: sh, changed };
}

export function renderDiff(d: DiffResult, nameA: string, nameB: string): string {
  const lines = [`loupe diff: A = ${nameA}, B = ${nameB}`, '', 'operations (count, errors, p50 / p95 ms):'];
  const fmt = (s?: OperationStats) => (s ? `${s.count} calls, ${s.errors} err, ${s.p50Ms.toFixed(3)} / ${s.p95Ms.toFixed(3)}` : '—');
  for (const o of d.operations) {
    const mark = !o.a ? '+' : !o.b ? '-' : o.a.count !== o.b.count || o.a.errors !== o.b.errors ? '~' : ' ';
    let change = '';
    if (o.a && o.b && o.a.p50Ms > 0) change = `  p50 ${o.b.p50Ms >= o.a.p50Ms ? '+' : ''}${(((o.b.p50Ms - o.a.p50Ms) / o.a.p50Ms) * 100).toFixed(0)}%`;
    lines.push(`${mark} ${o.key}`);
    lines.push(`    A: ${fmt(o.a)}   B: ${fmt(o.b)}${change}`);
    if (errorsMoved(o.a, o.b)) lines.push(`    error rate ${percent(o.a!)} -> ${percent(o.b!)}`);
  }
  lines.push('', 'trace shapes (traces in A -> B):');
  for (const s of d.shapes) {
    const mark = s.a === 0 ? '+' : s.b === 0 ? '-' : s.a !== s.b ? '~' : ' ';
    lines.push(`${mark} ${s.a} -> ${s.b}  ${s.shape}`);
  }
  lines.push('', d.changed ? 'shapes, operations or error rates differ' : 'same shapes, operations and error rates');
  return `${safeLines(lines)}\n`;
}
