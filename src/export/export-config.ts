/**
 * What the exporters are told and the checks made before anything starts,
 * apart from the exporters themselves: those load the OpenTelemetry SDK and
 * exporter packages (src/lazy.ts), which a run or replay without --otlp or
 * --prometheus-port never needs.
 */
import { LoupeError } from '../errors';
import type { SamplerName } from '../discovery/config';
import { samplerFromEnv, type TraceSampler } from './sampling';

export class ExportConfigError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_EXPORT_CONFIG', message);
  }
}

export interface ExportOptions {
  /** Send traces and metrics over OTLP (endpoint and protocol from OTEL_EXPORTER_OTLP_*). */
  otlp: boolean;
  /** Serve Prometheus metrics on this port (0: none). */
  prometheusPort?: number;
  /** Flush queued spans this often, in ms (live runs); replays flush at the end. */
  flushIntervalMs?: number;
  /** The configuration file's sampler; OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG win over it. */
  sampler?: { name: SamplerName; arg?: number };
  /** The watched host's name, on every service's metrics resource (spans carry it through their converter). */
  hostName?: string;
}

export interface ExportStats {
  exported: number;
  /** Spans the sampler left out (OTEL_TRACES_SAMPLER): never queued. */
  unsampled: number;
  dropped: number;
  failedBatches: number;
  lastError?: string;
}

export function protocol(signal: 'TRACES' | 'METRICS'): 'grpc' | 'http/protobuf' {
  const p = process.env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ?? process.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  if (p === 'grpc' || p === 'http/protobuf') return p;
  throw new ExportConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL=${p} is not supported: use http/protobuf or grpc`);
}

/**
 * Every OTEL_* variable the exporters read, checked before anything starts:
 * a live agent must not attach its programs and then fail on a typo, and the
 * official exporters quietly fall back to localhost:4318 on an endpoint they
 * cannot parse, or to 10 s on a timeout they cannot read.
 */
export function validateExportEnv(options: ExportOptions, env: NodeJS.ProcessEnv = process.env): TraceSampler | undefined {
  if (!options.otlp) return undefined;
  protocol('TRACES');
  protocol('METRICS');
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
      throw new ExportConfigError(`${name}=${JSON.stringify(value)} is not an http:// or https:// URL with a host`);
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_METRIC_EXPORT_INTERVAL']) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (!/^\d+$/.test(value.trim()) || Number(value) <= 0) throw new ExportConfigError(`${name}=${JSON.stringify(value)} is not a positive number of milliseconds`);
  }
  try {
    return samplerFromEnv({
      OTEL_TRACES_SAMPLER: env.OTEL_TRACES_SAMPLER ?? options.sampler?.name,
      OTEL_TRACES_SAMPLER_ARG: env.OTEL_TRACES_SAMPLER_ARG ?? options.sampler?.arg?.toString(),
    });
  } catch (e) {
    throw new ExportConfigError((e as Error).message);
  }
}
