import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import type { Span } from '../correlator/span';
import { AGENT_METRIC_NAMES, BEYLA_BUCKETS, METRIC_NAMES, PerServiceMetricExporter, RedMetrics } from './metrics';

const span = (kind: Span['kind'], family: Span['family'], ms: number, attributes: Span['attributes'], status: Span['status']['code'] = 'unset'): Span => ({
  traceId: 't',
  spanId: 's',
  parentSpanId: '',
  parentIsRemote: false,
  traceState: '',
  name: 'x',
  kind,
  startNs: 0n,
  endNs: BigInt(ms * 1e6),
  service: 'svc',
  pid: 1,
  attributes,
  status: { code: status },
  ...(family ? { family } : {}),
});

describe('RED metrics', () => {
  it('records each kind of call in its histogram, in seconds, with Beyla buckets and low-cardinality attributes', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const red = new RedMetrics([reader]);
    red.onSpan(span('server', 'http', 20, { 'http.request.method': 'GET', 'http.route': '/u/{id}', 'url.path': '/u/7', 'http.response.status_code': 200 }));
    red.onSpan(span('server', 'http', 30, { 'http.request.method': 'GET', 'http.route': '/u/{id}', 'url.path': '/u/8', 'http.response.status_code': 200 }));
    red.onSpan(
      span('server', 'rpc', 5, { 'rpc.system': 'grpc', 'rpc.service': 'demo.Greeter', 'rpc.method': 'SayHello', 'rpc.grpc.status_code': 0, 'http.request.method': 'POST' }),
    );
    red.onSpan(span('client', 'db', 2, { 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.collection.name': 'orders', 'db.query.text': 'SELECT 1' }, 'error'));
    red.onSpan(span('internal', undefined, 1, { 'loupe.phase': 'queue' }));
    red.onSpan(span('server', 'http', 1, { 'http.request.method': 'GET', 'loupe.route_ignored': true }));
    await reader.forceFlush();
    const metrics = exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
    const byName = new Map(metrics.map((m) => [m.descriptor.name, m]));
    const http = byName.get(METRIC_NAMES.httpServer)!;
    expect(http.descriptor.unit).toBe('s');
    expect(http.dataPoints).toHaveLength(1); // two paths, one route
    const point = http.dataPoints[0]!;
    expect(point.attributes).toEqual({ 'service.name': 'svc', 'http.request.method': 'GET', 'http.route': '/u/{id}', 'http.response.status_code': 200 });
    expect((point.value as { count: number; sum: number; buckets: { boundaries: number[] } }).count).toBe(2);
    expect((point.value as { sum: number }).sum).toBeCloseTo(0.05, 9);
    expect((point.value as { buckets: { boundaries: number[] } }).buckets.boundaries).toEqual(BEYLA_BUCKETS);
    expect(byName.get(METRIC_NAMES.rpcServer)!.dataPoints[0]!.attributes).toMatchObject({ 'rpc.method': 'SayHello', 'rpc.grpc.status_code': 0 });
    const db = byName.get(METRIC_NAMES.dbClient)!.dataPoints[0]!;
    expect(db.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.collection.name': 'orders' });
    expect(db.attributes['db.query.text']).toBeUndefined();
    expect(byName.has(METRIC_NAMES.httpClient)).toBe(false);
    await red.shutdown();
  });

  it("puts a containerised service's container on its points, one series per container, and nothing of a request's", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const red = new RedMetrics([reader]);
    const inContainer = (id: string, path: string) => ({
      'http.request.method': 'GET',
      'http.route': '/u/{id}',
      'url.path': path,
      'http.response.status_code': 200,
      'container.id': id,
      'container.runtime': 'podman',
      'container.name': `web-${id}`,
      'container.image.name': 'localhost/web',
      'k8s.pod.name': `web-${id}-pod`,
      'k8s.namespace.name': 'shop',
    });
    red.onSpan(span('server', 'http', 10, inContainer('a1', '/u/1')));
    red.onSpan(span('server', 'http', 10, inContainer('a1', '/u/2')));
    red.onSpan(span('server', 'http', 10, inContainer('b2', '/u/3')));
    red.onSpan(span('server', 'http', 10, { 'http.request.method': 'GET', 'http.route': '/u/{id}', 'http.response.status_code': 200 }));
    await reader.forceFlush();
    const points = exporter
      .getMetrics()
      .flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
      .find((m) => m.descriptor.name === METRIC_NAMES.httpServer)!.dataPoints;
    const count = (p: (typeof points)[number]) => (p.value as { count: number }).count;
    expect(points.map((p) => [p.attributes['container.id'] ?? 'none', count(p)]).sort()).toEqual([
      ['a1', 2],
      ['b2', 1],
      ['none', 1],
    ]);
    expect(points.find((p) => p.attributes['container.id'] === 'b2')!.attributes).toEqual({
      'service.name': 'svc',
      'http.request.method': 'GET',
      'http.route': '/u/{id}',
      'http.response.status_code': 200,
      'container.id': 'b2',
      'container.runtime': 'podman',
      'container.name': 'web-b2',
      'container.image.name': 'localhost/web',
      'k8s.pod.name': 'web-b2-pod',
      'k8s.namespace.name': 'shop',
    });
    await red.shutdown();
  });

  it("goes out over OTLP under one resource per service, as traces do; the agent's own counters under the agent", async () => {
    const inner = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: new PerServiceMetricExporter(inner, 'host-a'), exportIntervalMillis: 3_600_000 });
    const red = new RedMetrics([reader]);
    red.observeAgent(() => ({ records: 10, lost: 0, spans: 3, spansDropped: 0 }));
    const get = { 'http.request.method': 'GET', 'http.route': '/a', 'http.response.status_code': 200 };
    red.onSpan({ ...span('server', 'http', 1, get), service: 'frontend' });
    red.onSpan({ ...span('server', 'http', 2, get), service: 'backend' });
    red.onSpan({ ...span('server', 'http', 3, get), service: 'frontend' });
    red.onSpan({ ...span('client', 'http', 4, { 'http.request.method': 'GET', 'http.response.status_code': 200 }), service: 'frontend' });
    await reader.forceFlush();
    const parts = inner.getMetrics();
    const byService = new Map(parts.map((rm) => [String(rm.resource.attributes['service.name']), rm]));
    expect([...byService.keys()]).toEqual(['loupe', 'frontend', 'backend']);
    expect(byService.get('backend')!.resource.attributes['host.name']).toBe('host-a');
    const names = (service: string) =>
      byService
        .get(service)!
        .scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name))
        .sort();
    expect(names('loupe')).toEqual(Object.values(AGENT_METRIC_NAMES).sort());
    expect(names('frontend')).toEqual([METRIC_NAMES.httpClient, METRIC_NAMES.httpServer]);
    expect(names('backend')).toEqual([METRIC_NAMES.httpServer]);
    const frontendServer = byService
      .get('frontend')!
      .scopeMetrics.flatMap((sm) => sm.metrics)
      .find((m) => m.descriptor.name === METRIC_NAMES.httpServer)!;
    expect(frontendServer.dataPoints).toHaveLength(1);
    // The service moved to the resource: a point does not say it twice.
    expect(frontendServer.dataPoints[0]!.attributes).toEqual({ 'http.request.method': 'GET', 'http.route': '/a', 'http.response.status_code': 200 });
    expect((frontendServer.dataPoints[0]!.value as { count: number }).count).toBe(2);
    await red.shutdown();
  });
});
