import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Span } from '../correlator/span';
import { SamplerConfigError, samplerFromEnv } from './sampling';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`)).filter((s) => !/^0+$/.test(s));

function span(traceId: string, kind: Span['kind'], parentSpanId = '', remoteSampled?: boolean): Span {
  return {
    traceId,
    spanId: '00f067aa0ba902b7',
    parentSpanId,
    parentIsRemote: remoteSampled !== undefined && kind === 'server',
    traceState: '',
    remoteSampled,
    name: 'GET',
    kind,
    startNs: 1n,
    endNs: 2n,
    service: 's',
    pid: 1,
    attributes: {},
    status: { code: 'unset' },
  };
}

describe('trace sampling (OTEL_TRACES_SAMPLER)', () => {
  it('keeps about the ratio of traces, each whole: every span of a trace gets its decision', () => {
    const sampler = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' });
    const traces = fc.sample(hex(32), { numRuns: 4000, seed: 7 });
    let kept = 0;
    for (const t of traces) {
      const decisions = [span(t, 'server'), span(t, 'client', 'b7ad6b7169203331'), span(t, 'internal', 'b7ad6b7169203331')].map((s) => sampler.sampled(s));
      expect(new Set(decisions).size, t).toBe(1);
      if (decisions[0]) kept++;
    }
    expect(kept / traces.length).toBeGreaterThan(0.2);
    expect(kept / traces.length).toBeLessThan(0.3);
  });

  it('follows the sampled flag a trace came in with under the parent-based samplers, and not under the others', () => {
    fc.assert(
      fc.property(hex(32), hex(16), (traceId, parent) => {
        const on = samplerFromEnv({}); // the SDK's default: parentbased_always_on
        expect(on.description).toBe('parentbased_always_on');
        expect(on.sampled(span(traceId, 'server', parent, true))).toBe(true);
        expect(on.sampled(span(traceId, 'server', parent, false))).toBe(false);
        expect(on.sampled(span(traceId, 'client', parent, false))).toBe(false);
        expect(on.sampled(span(traceId, 'server'))).toBe(true);
        const none = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
        expect(none.sampled(span(traceId, 'server', parent, true))).toBe(true);
        expect(none.sampled(span(traceId, 'server'))).toBe(false);
        const all = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1' });
        expect(all.sampled(span(traceId, 'server', parent, false))).toBe(true);
        const off = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' });
        expect(off.sampled(span(traceId, 'server', parent, true))).toBe(false);
        expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).sampled(span(traceId, 'server'))).toBe(false);
        expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_on' }).sampled(span(traceId, 'server', parent, false))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('names what is wrong with a sampler it cannot use', () => {
    expect(() => samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(SamplerConfigError);
    expect(() => samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(/OTEL_TRACES_SAMPLER=jaeger_remote is not supported: use always_on, .*parentbased_traceidratio/);
    for (const arg of ['1.5', '-0.1', 'half', 'NaN']) {
      expect(() => samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }), arg).toThrow(new RegExp(`OTEL_TRACES_SAMPLER_ARG=${arg} is not a ratio`));
    }
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio' }).description).toBe('traceidratio 1');
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'ignored' }).description).toBe('always_on');
  });
});
