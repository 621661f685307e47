/**
 * Export through the official OpenTelemetry exporters, checked by decoding
 * what an OTLP receiver gets with the official proto definitions: traces and
 * RED metrics over http/protobuf and gRPC, the standard OTEL_* variables, and
 * a collector that is down.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers';
import { attrs, grpcReceiver, httpReceiver, type Received } from './otlp-receiver';
import { BEYLA_BUCKETS } from '../src/export/metrics';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const CAPTURE = path.join(ROOT, 'captures/factorial.loupe');

function loupe(args: string[], env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

function spansOf(received: Received) {
  return received.traces.flatMap((req) => req.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => ({
    service: attrs(rs.resource.attributes)['service.name'], name: s.name, kind: s.kind, attributes: attrs(s.attributes),
    traceId: s.traceId, parentSpanId: s.parentSpanId ?? '',
  })))));
}

function histogram(received: Received, name: string) {
  for (const req of received.metrics) {
    for (const rm of req.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === name) return m;
  }
  return undefined;
}

describe.each([
  ['http/protobuf', httpReceiver],
  ['grpc', grpcReceiver],
])('OTLP over %s', (protocol, receiver) => {
  it('delivers every span of a replay, with services, attributes and links, and RED histograms with Beyla buckets', async () => {
    const rx = await receiver();
    try {
      const r = await loupe(['replay', CAPTURE, '--format', 'jsonl', '--otlp'], {
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/OTLP: 6 spans exported, 0 dropped, 0 failed batches/);
      const spans = spansOf(rx.received);
      expect(spans.map((s) => `${s.service} ${s.name}`).sort()).toEqual(['backend GET /compute', 'curl GET', 'curl GET', 'frontend GET', 'frontend GET /factorial/abc', 'frontend GET /factorial/{id}']);
      expect(new Set(spans.map((s) => s.traceId)).size).toBe(2);
      const backend = spans.find((s) => s.service === 'backend')!;
      expect(backend.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/compute', 'http.route': '/compute', 'http.response.status_code': '200' });
      const server = histogram(rx.received, 'http.server.request.duration');
      expect(server.unit).toBe('s');
      const points = server.histogram.dataPoints;
      expect(points.map((p: any) => attrs(p.attributes)['http.route']).sort()).toEqual(['/compute', '/factorial/abc', '/factorial/{id}']);
      for (const p of points) {
        expect(p.explicitBounds).toEqual(BEYLA_BUCKETS);
        expect(p.count).toBe('1');
      }
      expect(histogram(rx.received, 'http.client.request.duration').histogram.dataPoints).toHaveLength(3);
    } finally {
      await rx.close();
    }
  });
});

describe('a collector that is down', () => {
  it('costs counted drops and a clear line, never a crash or a non-zero exit', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    const r = await loupe(['replay', CAPTURE, '--format', 'jsonl', '--otlp'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/OTLP: 0 spans exported, 6 dropped, 1 failed batches \(last error: .+\)/);
  }, 60_000);

  it('rejects an unsupported protocol with exit 2', async () => {
    const r = await loupe(['replay', CAPTURE, '--otlp'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon is not supported/);
  });
});
