/**
 * PRODUCER and CONSUMER spans (a message sent, a message received and
 * handled) end to end, ahead of the messaging protocols that will make them:
 * OTLP (protobuf and JSON), the JSON lines, the tree, the waterfall, the
 * HTML report's service map, `loupe diff`, scenario paths and the RED
 * metrics each carry them as their own kinds.
 */
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import type { Span } from '../src/correlator/span';
import { ProcessTable } from '../src/discovery/processes';
import { diffSpans } from '../src/export/diff';
import { spanToJson } from '../src/export/jsonl';
import { METRIC_NAMES, RedMetrics } from '../src/export/metrics';
import { OtlpSpanConverter, otlpJson } from '../src/export/otlp';
import { renderReport, serviceEdges } from '../src/export/report';
import { renderTree } from '../src/export/tree';
import { renderWaterfall } from '../src/export/waterfall';
import { checkScenario, SCENARIO_SCHEMA } from '../src/scenarios/scenario';

const T = 'a'.repeat(32);
function span(id: string, parent: string, service: string, kind: Span['kind'], name: string, startMs: number, endMs: number, attributes: Span['attributes'] = {}): Span {
  const family = kind === 'producer' || kind === 'consumer' ? 'messaging' : attributes['db.system.name'] ? 'db' : 'http';
  return {
    family,
    traceId: T,
    spanId: id.repeat(16).slice(0, 16),
    parentSpanId: parent ? parent.repeat(16).slice(0, 16) : '',
    parentIsRemote: false,
    traceState: '',
    name,
    kind,
    startNs: BigInt(startMs * 1e6),
    endNs: BigInt(endMs * 1e6),
    service,
    pid: service === 'api' ? 1 : 2,
    attributes,
    status: { code: 'unset' },
  };
}

/** POST /orders on api publishes to the orders topic; worker consumes it and writes to PostgreSQL. */
const trace = (): Span[] => [
  span('1', '', 'api', 'server', 'POST /orders', 0, 50, { 'http.request.method': 'POST', 'url.path': '/orders', 'http.response.status_code': 202 }),
  span('2', '1', 'api', 'producer', 'send orders', 5, 10, {
    'messaging.system': 'kafka',
    'messaging.operation.name': 'send',
    'messaging.operation.type': 'send',
    'messaging.destination.name': 'orders',
  }),
  span('3', '2', 'worker', 'consumer', 'process orders', 20, 40, {
    'messaging.system': 'kafka',
    'messaging.operation.name': 'process',
    'messaging.operation.type': 'process',
    'messaging.destination.name': 'orders',
  }),
  span('4', '3', 'worker', 'client', 'INSERT orders', 25, 30, { 'db.system.name': 'postgresql', 'db.operation.name': 'INSERT', 'db.collection.name': 'orders' }),
];

describe('PRODUCER and CONSUMER spans', () => {
  it('go out over OTLP as kinds 4 and 5, in protobuf and JSON', () => {
    const converter = new OtlpSpanConverter(
      0n,
      new ProcessTable([
        { pid: 1, exe: '/srv/api' },
        { pid: 2, exe: '/srv/worker' },
      ]),
      'host',
    );
    const readable = trace().map((s) => converter.toReadable(s));
    const json = JSON.parse(otlpJson(readable)) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; kind: number }> }> }> };
    const kinds = Object.fromEntries(json.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((ss) => ss.spans)).map((s) => [s.name, s.kind]));
    // SPAN_KIND_SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5 on the wire (the API's enum is one less).
    expect(kinds).toEqual({ 'POST /orders': 2, 'send orders': 4, 'process orders': 5, 'INSERT orders': 3 });
  });

  it("carry a consumer's links to the producers it received from in OTLP, the JSON lines and the tree", () => {
    const [, producer, consumer] = trace();
    const linked: Span = { ...consumer!, traceId: 'b'.repeat(32), parentSpanId: '', links: [{ traceId: T, spanId: producer!.spanId, traceState: 'k=v' }] };
    const converter = new OtlpSpanConverter(0n, new ProcessTable([{ pid: 2, exe: '/srv/worker' }]), 'host');
    const json = JSON.parse(otlpJson([converter.toReadable(linked)])) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ links: unknown[] }> }> }> };
    expect(json.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.links).toEqual([
      { traceId: T, spanId: producer!.spanId, traceState: 'k=v', attributes: [], droppedAttributesCount: 0, flags: 257 },
    ]);
    expect(spanToJson(linked, 0n).links).toEqual([{ traceId: T, spanId: producer!.spanId, traceState: 'k=v' }]);
    expect(spanToJson(producer!, 0n).links).toBeUndefined();
    expect(renderTree([linked])).toContain(`(linked to ${producer!.spanId} in trace ${T})`);
  });

  it('are named as such in JSON lines, the tree and the waterfall', () => {
    expect(trace().map((s) => spanToJson(s, 0n).kind)).toEqual(['server', 'producer', 'consumer', 'client']);
    const tree = renderTree(trace());
    expect(tree).toMatch(/api PRODUCER send orders/);
    expect(tree).toMatch(/worker CONSUMER process orders/);
    // The consumer hangs under the producer, the database call under the consumer.
    const lines = tree.split('\n');
    const depth = (needle: string) => lines.find((l) => l.includes(needle))!.search(/\S/) + (lines.find((l) => l.includes(needle))!.match(/[├└]/)?.index ?? 0);
    expect(depth('CONSUMER')).toBeGreaterThan(depth('PRODUCER'));
    expect(depth('CLIENT INSERT')).toBeGreaterThan(depth('CONSUMER'));
    const waterfall = renderWaterfall(trace(), { width: 40 });
    expect(waterfall).toContain('api PRODUCER');
    expect(waterfall).toContain('worker CONSUMER');
  });

  it("draw service-map edges through the broker: the producer's service to the destination, the destination to the consumer's, joined or not", () => {
    expect(serviceEdges(trace()).map((e) => [e.from, e.to, e.calls])).toEqual([
      ['api', 'kafka orders', 1],
      ['kafka orders', 'worker', 1],
      ['worker', 'postgresql', 1],
    ]);
    const unconsumed = trace().filter((s) => s.kind !== 'consumer' && s.service === 'api');
    expect(serviceEdges(unconsumed).map((e) => [e.from, e.to])).toEqual([['api', 'kafka orders']]);
    expect(renderReport(trace(), 'kinds')).toContain('"kind":"producer"');
  });

  it('are operations and trace shapes of their own in loupe diff, and hops in scenario paths', () => {
    const withoutConsumer = trace().filter((s) => s.kind !== 'consumer');
    const d = diffSpans(trace(), withoutConsumer);
    expect(d.changed).toBe(true);
    expect(d.operations.find((o) => o.key === 'worker CONSUMER process orders')).toMatchObject({ a: { count: 1 } });
    expect(d.shapes.some((s) => s.shape.includes('api PRODUCER send orders > worker CONSUMER process orders') && s.a === 1 && s.b === 0)).toBe(true);
    const scenario = SCENARIO_SCHEMA.parse({
      name: 'kinds',
      services: [{ name: 'api', run: ['true'] }],
      expect: [{ path: 'api SERVER POST /orders > api PRODUCER send orders > worker CONSUMER process orders > worker CLIENT INSERT orders', traces: 1 }],
    });
    expect(checkScenario(scenario, trace()).ok).toBe(true);
    expect(checkScenario(scenario, withoutConsumer).ok).toBe(false);
    // The failure says where the path broke: the leaf, and the parent it lost.
    expect(checkScenario(scenario, withoutConsumer).lines.join('\n')).toMatch(
      /FAIL {3}not in the path, trace \w+: worker CLIENT INSERT orders \(\S+\) < parent \w+ not in the trace/,
    );
  });

  it("count in OTel's messaging.client.operation.duration, by operation and destination", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const red = new RedMetrics([reader]);
    for (const s of trace()) red.onSpan(s);
    await reader.forceFlush();
    const metric = exporter
      .getMetrics()
      .flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
      .find((m) => m.descriptor.name === METRIC_NAMES.messagingClient)!;
    expect(metric.dataPoints.map((p) => p.attributes).sort((a, b) => String(a['messaging.operation.name']).localeCompare(String(b['messaging.operation.name'])))).toEqual([
      {
        'service.name': 'worker',
        'messaging.system': 'kafka',
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'orders',
      },
      { 'service.name': 'api', 'messaging.system': 'kafka', 'messaging.operation.name': 'send', 'messaging.operation.type': 'send', 'messaging.destination.name': 'orders' },
    ]);
  });
});
