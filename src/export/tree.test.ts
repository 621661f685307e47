import { describe, expect, it } from 'vitest';
import type { Span } from '../correlator/span';
import { renderTree, StreamingTreeSink } from './tree';

const MS = 1_000_000n;

function span(trace: string, id: string, parent: string, startMs: number, endMs: number, name: string): Span {
  return {
    traceId: trace.repeat(32).slice(0, 32),
    spanId: id.repeat(16).slice(0, 16),
    parentSpanId: parent ? parent.repeat(16).slice(0, 16) : '',
    parentIsRemote: false,
    traceState: '',
    name,
    kind: parent ? 'client' : 'server',
    startNs: BigInt(startMs) * MS,
    endNs: BigInt(endMs) * MS,
    service: 'svc',
    pid: 1,
    attributes: {},
    status: { code: 'unset' },
  };
}

describe('streaming trees (a live run)', () => {
  it('prints each trace once it has been quiet long enough, oldest first, and the rest at the end', () => {
    const out: string[] = [];
    const sink = new StreamingTreeSink((t) => out.push(t), 2000n * MS);
    const a1 = span('a', '1', '', 0, 100, 'GET /a');
    const b1 = span('b', '2', '', 50, 900, 'GET /b');
    const a2 = span('a', '3', '1', 10, 1500, 'GET /a-child'); // a's child ends last: a is busy until 1500
    const c1 = span('c', '4', '', 3000, 3100, 'GET /c');
    for (const s of [a1, b1, a2, c1]) sink.onSpan(s);

    sink.flushQuiet(3000n * MS); // b quiet since 900; a only since 1500
    expect(out).toEqual([renderTree([b1])]);
    sink.flushQuiet(3499n * MS);
    expect(out).toHaveLength(1);
    sink.flushQuiet(3500n * MS);
    expect(out).toEqual([renderTree([b1]), renderTree([a1, a2])]);

    const late = span('a', '5', '1', 20, 3600, 'GET /late'); // after its trace printed: a tree of its own
    sink.onSpan(late);
    sink.flushAll();
    expect(out.slice(2)).toEqual([renderTree([c1, late])]);
    sink.flushAll();
    expect(out, 'nothing twice').toHaveLength(3);
  });

  it('prints a trace that never goes quiet once it has maxSpans spans', () => {
    const out: string[] = [];
    const sink = new StreamingTreeSink((t) => out.push(t), 2000n * MS, 3);
    const spans = [1, 2, 3, 4].map((n) => span('a', String(n), n === 1 ? '' : '1', n * 10, n * 10 + 5, `GET /${n}`));
    for (const s of spans) sink.onSpan(s);
    expect(out).toEqual([renderTree(spans.slice(0, 3))]);
    sink.flushAll();
    expect(out).toEqual([renderTree(spans.slice(0, 3)), renderTree(spans.slice(3))]);
  });
});

describe('the tree view of a parent it cannot draw', () => {
  it('tells a parent in another trace of the capture from one not in the capture', () => {
    const root = span('a', '1', '', 0, 10, 'GET /a');
    const stray = span('b', '2', '1', 1, 5, 'GET /b'); // its parent is span 1, in trace a: a wrong join
    const outside = span('c', '3', '9', 2, 6, 'GET /c'); // span 9 is nowhere
    const text = renderTree([root, stray, outside]);
    expect(text).toContain(`(parent ${'1'.repeat(16)} in another trace, ${'a'.repeat(32)})`);
    expect(text).toContain(`(parent ${'9'.repeat(16)} not in capture)`);
  });
});
