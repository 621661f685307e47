/**
 * Packages only some commands need, loaded at their first use rather than at
 * start-up: every command paid for all of them (0.6 s to print the usage,
 * measured with a require timer; the OpenTelemetry SDK and exporters, yaml
 * and proto-loader were 0.25 s of it). Packages only: a relative module
 * loaded this way would escape the test runner's TypeScript transform.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, see above */

function once<T>(load: () => T): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load());
}

export const yamlPackage = once(() => require('yaml') as typeof import('yaml'));
export const protoLoaderPackage = once(() => require('@grpc/proto-loader') as typeof import('@grpc/proto-loader'));
export const otlpTransformerPackage = once(() => require('@opentelemetry/otlp-transformer') as typeof import('@opentelemetry/otlp-transformer'));
export const sdkTraceBasePackage = once(() => require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base'));
export const sdkMetricsPackage = once(() => require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics'));
export const otlpExporterPackages = once(() => ({
  prometheus: require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus'),
  protoTraces: require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'),
  grpcTraces: require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc'),
  protoMetrics: require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto'),
  grpcMetrics: require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc'),
}));

/** YAML configuration and scenario files. */
export function parseYaml(text: string): unknown {
  return yamlPackage().parse(text);
}
