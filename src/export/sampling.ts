/**
 * Head sampling of the traces sent over OTLP, configured as an OTel SDK (and
 * Beyla) configures it: OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
 * decided by the official samplers. Each span is decided on its own as it
 * ends — a trace's spans end children first — from what every span of the
 * trace shares: its trace id, and the sampled flag of the traceparent the
 * trace came in with (Span.remoteSampled). So a trace goes out whole or not
 * at all, and the decision depends on nothing but the capture: a replay
 * sends what the live run sent. Metrics count every span, sampled or not.
 */
import { LoupeError } from '../errors';
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import { sdkTraceBasePackage } from '../lazy';
import type { Span } from '../correlator/span';
import { SAMPLER_NAMES, type SamplerName } from '../discovery/config';
import { OTEL_KIND } from './otlp';

export class SamplerConfigError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_SAMPLER_CONFIG', message);
  }
}

export class TraceSampler {
  constructor(
    private readonly sampler: Sampler,
    /** As configured, e.g. `parentbased_traceidratio 0.1`. */
    readonly description: string,
  ) {}

  sampled(span: Span): boolean {
    const parent =
      span.remoteSampled === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: span.traceId,
            spanId: span.parentSpanId,
            traceFlags: span.remoteSampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
            isRemote: true,
          });
    return (
      this.sampler.shouldSample(parent, span.traceId, span.name, OTEL_KIND[span.kind], span.attributes, []).decision === sdkTraceBasePackage().SamplingDecision.RECORD_AND_SAMPLED
    );
  }
}

/** The sampler the environment names; the SDK's default, parentbased_always_on, when it names none. */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): TraceSampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) {
    throw new SamplerConfigError(`OTEL_TRACES_SAMPLER=${env.OTEL_TRACES_SAMPLER} is not supported: use ${SAMPLER_NAMES.join(', ')}`);
  }
  const usesRatio = name.endsWith('traceidratio');
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = usesRatio && arg ? Number(arg) : 1;
  if (usesRatio && arg && !(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1)) {
    throw new SamplerConfigError(`OTEL_TRACES_SAMPLER_ARG=${arg} is not a ratio: give a number from 0 to 1 (OTEL_TRACES_SAMPLER=${name})`);
  }
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = sdkTraceBasePackage();
  const root = (n: SamplerName): Sampler =>
    n.endsWith('always_off') ? new AlwaysOffSampler() : n.endsWith('traceidratio') ? new TraceIdRatioBasedSampler(ratio) : new AlwaysOnSampler();
  const sampler = name.startsWith('parentbased_') ? new ParentBasedSampler({ root: root(name as SamplerName) }) : root(name as SamplerName);
  return new TraceSampler(sampler, usesRatio ? `${name} ${ratio}` : name);
}
