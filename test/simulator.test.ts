/**
 * The correlator against the simulator's truth, over random topologies,
 * interleavings and lost events: every parent exists, nothing is its own
 * ancestor, each call chain is one trace, and a lost event never attaches a
 * span to a wrong parent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Span } from '../src/correlator/span';
import type { Event } from '../src/events/types';
import { Pipeline } from '../src/pipeline/pipeline';
import { rng, simulate, type CallSpec, type Simulation, type Topology } from '../src/sources/simulator/simulator';

const topologyArb: fc.Arbitrary<Topology> = fc.integer({ min: 2, max: 5 }).chain((n) =>
  fc
    .record({
      kinds: fc.array(fc.constantFrom('go' as const, 'threaded' as const), { minLength: n, maxLength: n }),
      calls: fc.array(fc.array(fc.record({ to: fc.nat(), childGoroutine: fc.boolean(), async: fc.boolean(), failRate: fc.constantFrom(0, 0, 0.3) }), { maxLength: 3 }), {
        minLength: n,
        maxLength: n,
      }),
    })
    .map(({ kinds, calls }) => {
      const names = kinds.map((_, i) => `svc${i}`);
      const topology: Topology = { services: names.map((name, i) => ({ name, kind: kinds[i]! })), calls: {}, entry: 'svc0' };
      calls.forEach((list, i) => {
        // only "downstream" calls: the call graph is a DAG, as real ones mostly are
        const targets = list.filter(() => i < n - 1).map((c): CallSpec => ({ ...c, to: names[i + 1 + (c.to % (n - 1 - i))]!, async: c.async && kinds[i] === 'go' }));
        if (targets.length) topology.calls[names[i]!] = targets;
      });
      return topology;
    }),
);

function replay(sim: Simulation, events: Event[] = sim.events): Span[] {
  const spans: Span[] = [];
  const p = new Pipeline(sim.header, [{ onSpan: (s) => spans.push(s) }]);
  p.push(events);
  p.finish();
  return spans;
}

function callIdOf(span: Span): number | undefined {
  const where = String(span.attributes['url.path'] ?? span.attributes['url.full'] ?? '');
  const m = /\/c(\d+)$/.exec(where);
  return m ? Number(m[1]) : undefined;
}

/** The checks that must hold whatever was lost. */
function checkNeverWrong(sim: Simulation, spans: Span[]): void {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  expect(byId.size).toBe(spans.length); // span ids are unique
  for (const span of spans) {
    // every parent exists (no traceparent headers in simulated traffic, so none is remote)
    if (span.parentSpanId) expect(byId.has(span.parentSpanId), `parent of ${span.name} ${span.attributes['url.path'] ?? span.attributes['url.full']}`).toBe(true);
    // nothing is its own ancestor
    const seen = new Set<string>();
    for (let s: Span | undefined = span; s && s.parentSpanId; s = byId.get(s.parentSpanId)) {
      expect(seen.has(s.spanId)).toBe(false);
      seen.add(s.spanId);
    }
    if (!span.parentSpanId) continue;
    const parent = byId.get(span.parentSpanId)!;
    expect(parent.traceId).toBe(span.traceId);
    const id = callIdOf(span);
    if (span.kind === 'internal') {
      expect(parent.kind).toBe('server'); // in-queue and processing hang off their server span
      continue;
    }
    const truth = sim.calls.get(id!)!;
    if (span.kind === 'server') {
      // a server span's parent is the client span of the same call
      expect([parent.kind, callIdOf(parent)], `server c${id}`).toEqual(['client', id]);
    } else {
      // a client span's parent is the server span of the request it was made for
      expect([parent.kind, callIdOf(parent)], `client c${id} (true parent c${truth.parent})`).toEqual(['server', truth.parent]);
    }
  }
}

describe('correlator against simulated topologies', () => {
  it('reconstructs every call chain as exactly one trace with the true parents', () => {
    fc.assert(
      fc.property(topologyArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(200_000, 2_000_000, 20_000_000), (topology, seed, gap) => {
        const sim = simulate(topology, { seed, requests: 8, meanGapNs: gap, portRange: 50 });
        const spans = replay(sim);
        checkNeverWrong(sim, spans);
        const http = spans.filter((s) => s.kind !== 'internal');
        expect(http).toHaveLength(sim.calls.size * 2); // a client and a server span per call
        const traceOfRoot = new Map<number, string>();
        for (const span of http) {
          const call = sim.calls.get(callIdOf(span)!)!;
          if (!span.parentSpanId) expect(span.kind === 'client' && call.parent === undefined, `root span c${call.id}`).toBe(true);
          const known = traceOfRoot.get(call.root);
          if (known) expect(span.traceId, `c${call.id} in the trace of root c${call.root}`).toBe(known);
          else traceOfRoot.set(call.root, span.traceId);
        }
        expect(new Set(traceOfRoot.values()).size).toBe(traceOfRoot.size); // distinct chains, distinct traces
        const goServers = http.filter((s) => s.kind === 'server' && topology.services.find((x) => x.name === s.service)?.kind === 'go');
        expect(spans.filter((s) => s.kind === 'internal')).toHaveLength(goServers.length * 2);
      }),
      { numRuns: 60 },
    );
  });

  it('never attaches a span to a wrong parent when events are lost', () => {
    fc.assert(
      fc.property(topologyArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.double({ min: 0.01, max: 0.4, noNaN: true }), (topology, seed, dropRate) => {
        const sim = simulate(topology, { seed, requests: 8, meanGapNs: 500_000, portRange: 50 });
        const keep = rng(seed ^ 0x5bd1e995);
        const survivors = sim.events.filter(() => keep() >= dropRate);
        checkNeverWrong(sim, replay(sim, survivors));
      }),
      { numRuns: 80 },
    );
  });

  it('matches Go calls that do not name their connection by method and path when requests overlap, never wrongly', () => {
    const topology: Topology = {
      services: [
        { name: 'front', kind: 'go' },
        { name: 'back', kind: 'threaded' },
      ],
      calls: { front: [{ to: 'back', childGoroutine: true }, { to: 'back' }] },
      entry: 'front',
    };
    const sim = simulate(topology, { seed: 7, requests: 30, meanGapNs: 50_000, goClientFd: false });
    const spans = replay(sim);
    checkNeverWrong(sim, spans);
    // with no fd, the kernel's method and path tell overlapping calls apart (each simulated call has its own path)
    const fronts = spans.filter((s) => s.kind === 'client' && s.service === 'front');
    expect(fronts.length).toBeGreaterThan(30);
    expect(fronts.filter((s) => !s.parentSpanId)).toEqual([]);
  });

  it('keeps its state flat over a long run', () => {
    const topology: Topology = {
      services: [
        { name: 'front', kind: 'go' },
        { name: 'mid', kind: 'threaded' },
        { name: 'back', kind: 'go' },
      ],
      calls: { front: [{ to: 'mid' }, { to: 'back', childGoroutine: true }, { to: 'back', async: true }], mid: [{ to: 'back', failRate: 0.2 }] },
      entry: 'front',
    };
    const sim = simulate(topology, { seed: 3, requests: 1500, meanGapNs: 1_000_000, portRange: 500 });
    let emitted = 0;
    const p = new Pipeline(sim.header, [{ onSpan: () => emitted++ }]);
    let peak = 0;
    for (let i = 0; i < sim.events.length; i += 500) {
      p.push(sim.events.slice(i, i + 500));
      const total = Object.values(p.correlator.stateSize()).reduce((a, b) => a + b, 0);
      peak = Math.max(peak, total);
    }
    p.finish();
    expect(sim.events.length).toBeGreaterThan(50_000);
    expect(peak).toBeLessThan(120); // a few requests in flight at a time, whatever the run's length
    expect(emitted).toBeGreaterThan(10_000);
  });
});
