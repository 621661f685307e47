/**
 * Export through the official OpenTelemetry exporters, checked by decoding
 * what an OTLP receiver gets with the official proto definitions: traces and
 * RED metrics over http/protobuf and gRPC, the standard OTEL_* variables, and
 * a collector that is down.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER, ROOT, tempDir } from './helpers';
import { get, ok, Script } from './script';
import { encodeFrame, encodePreamble } from '../src/events/capture';
import { encodeEvent } from '../src/events/codec';
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
  return received.traces.flatMap((req) =>
    req.resourceSpans.flatMap((rs: any) =>
      rs.scopeSpans.flatMap((ss: any) =>
        ss.spans.map((s: any) => ({
          service: attrs(rs.resource.attributes)['service.name'],
          name: s.name,
          kind: s.kind,
          attributes: attrs(s.attributes),
          traceId: s.traceId,
          parentSpanId: s.parentSpanId ?? '',
        })),
      ),
    ),
  );
}

/** Every data point of a histogram, whichever service's resource holds it, as last exported (cumulative: the last export holds all). */
function histogramPoints(received: Received, name: string): any[] {
  const lastByService = new Map<string, any[]>();
  for (const req of received.metrics) {
    for (const rm of req.resourceMetrics)
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          if (m.name === name) lastByService.set(String(attrs(rm.resource.attributes)['service.name']), m.histogram.dataPoints);
        }
  }
  return [...lastByService.values()].flat();
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
        OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/OTLP: 6 spans exported, 0 left out by the sampler, 0 dropped, 0 failed batches/);
      const spans = spansOf(rx.received);
      expect(spans.map((s) => `${s.service} ${s.name}`).sort()).toEqual([
        'backend GET /compute',
        'curl GET',
        'curl GET',
        'frontend GET',
        'frontend GET /factorial/abc',
        'frontend GET /factorial/{id}',
      ]);
      expect(new Set(spans.map((s) => s.traceId)).size).toBe(2);
      const backend = spans.find((s) => s.service === 'backend')!;
      expect(backend.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/compute', 'http.route': '/compute', 'http.response.status_code': '200' });
      const server = histogram(rx.received, 'http.server.request.duration');
      expect(server.unit).toBe('s');
      const points = histogramPoints(rx.received, 'http.server.request.duration');
      expect(points.map((p: any) => attrs(p.attributes)['http.route']).sort()).toEqual(['/compute', '/factorial/abc', '/factorial/{id}']);
      for (const p of points) {
        expect(p.explicitBounds).toEqual(BEYLA_BUCKETS);
        expect(p.count).toBe('1');
      }
      expect(histogramPoints(rx.received, 'http.client.request.duration')).toHaveLength(3);
      // Each service's RED metrics under its own resource, as its spans are: never all under the agent's name.
      const routesByService = new Map<string, Set<string>>();
      for (const req of rx.received.metrics)
        for (const rm of req.resourceMetrics)
          for (const sm of rm.scopeMetrics)
            for (const m of sm.metrics) {
              if (m.name !== 'http.server.request.duration') continue;
              const service = String(attrs(rm.resource.attributes)['service.name']);
              for (const p of m.histogram.dataPoints) {
                expect(attrs(p.attributes)['service.name']).toBeUndefined();
                routesByService.set(service, (routesByService.get(service) ?? new Set()).add(String(attrs(p.attributes)['http.route'])));
              }
            }
      expect(Object.fromEntries([...routesByService].map(([k, v]) => [k, [...v].sort()]))).toEqual({ backend: ['/compute'], frontend: ['/factorial/abc', '/factorial/{id}'] });
    } finally {
      await rx.close();
    }
  });
});

/** 30,000 requests on one keep-alive connection, written as a capture: more spans than the export queue holds. */
function largeCapture(): string {
  const s = new Script();
  const [client, server] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 7, tid: 7, fd: 5, port: 8080 });
  for (let i = 0; i < 30_000; i++) {
    s.send(client, get(`/item/${i}`));
    s.recv(server, get(`/item/${i}`));
    s.send(server, ok());
    s.recv(client, ok());
  }
  const capture = path.join(tempDir(), 'large.loupe');
  fs.writeFileSync(
    capture,
    Buffer.concat([
      encodePreamble({
        ...HEADER,
        processes: [
          { pid: 3, exe: '/usr/bin/curl' },
          { pid: 7, exe: '/srv/api' },
        ],
      }),
      ...s.events.map((e) => encodeFrame(encodeEvent(e))),
    ]),
  );
  return capture;
}

describe('a large replay over OTLP', () => {
  it('reaches the collector whole: the replay waits for the export queue instead of dropping', async () => {
    const capture = largeCapture();
    const rx = await httpReceiver();
    try {
      const r = await loupe(['replay', capture, '--format', 'jsonl', '--otlp'], { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/OTLP: 60000 spans exported, 0 left out by the sampler, 0 dropped, 0 failed batches/);
      expect(spansOf(rx.received)).toHaveLength(60_000);
    } finally {
      await rx.close();
    }
  }, 120_000);
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
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/OTLP: 0 spans exported, 0 left out by the sampler, 6 dropped, 1 failed batches \(last error: .+\)/);
  }, 60_000);

  it('does not hold a large replay back: with the collector failing it drops and counts', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(p));
      });
    });
    const started = process.hrtime.bigint();
    const r = await loupe(['replay', largeCapture(), '--format', 'jsonl', '--otlp'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/OTLP: 0 spans exported, 0 left out by the sampler, 60000 dropped, \d+ failed batches/);
    // Failed exports take their timeout; waiting for room, or for each queued batch to fail, took over 30 s here.
    expect(Number(process.hrtime.bigint() - started) / 1e9).toBeLessThan(20);
  }, 120_000);

  it('rejects an unsupported protocol with exit 2', async () => {
    const r = await loupe(['replay', CAPTURE, '--otlp'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/OTEL_EXPORTER_OTLP_PROTOCOL=carrier-pigeon is not supported/);
  });
});

describe('trace sampling over OTLP (OTEL_TRACES_SAMPLER)', () => {
  it('sends whole traces at the ratio asked, the same ones on every replay, and counts every span in the metrics', async () => {
    const capture = largeCapture(); // 30,000 traces of two spans: the client's and the server's
    const env = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' };
    const sent: string[][] = [];
    for (let run = 0; run < 2; run++) {
      const rx = await httpReceiver();
      try {
        const r = await loupe(['replay', capture, '--format', 'jsonl', '--otlp'], { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: rx.url });
        expect(r.status, r.stderr).toBe(0);
        const m = /OTLP: (\d+) spans exported, (\d+) left out by the sampler, 0 dropped, 0 failed batches/.exec(r.stderr);
        expect(m, r.stderr).not.toBeNull();
        const [exported, unsampled] = [Number(m![1]), Number(m![2])];
        expect(exported + unsampled).toBe(60_000);
        expect(exported / 60_000).toBeGreaterThan(0.08);
        expect(exported / 60_000).toBeLessThan(0.12);
        const spans = spansOf(rx.received);
        expect(spans).toHaveLength(exported);
        const perTrace = new Map<string, number>();
        for (const s of spans) perTrace.set(s.traceId, (perTrace.get(s.traceId) ?? 0) + 1);
        expect(
          [...perTrace.values()].every((n) => n === 2),
          'each trace whole',
        ).toBe(true);
        sent.push([...perTrace.keys()].sort());
        const served = histogramPoints(rx.received, 'http.server.request.duration').reduce((n: number, p: any) => n + Number(p.count), 0);
        expect(served).toBe(30_000);
      } finally {
        await rx.close();
      }
    }
    expect(sent[1]).toEqual(sent[0]);
  }, 120_000);

  it('rejects a sampler it does not know, or a ratio that is not one, with exit 2', async () => {
    let r = await loupe(['replay', CAPTURE, '--otlp'], { OTEL_TRACES_SAMPLER: 'xray' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/OTEL_TRACES_SAMPLER=xray is not supported: use always_on/);
    r = await loupe(['replay', CAPTURE, '--otlp'], { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '10%' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/OTEL_TRACES_SAMPLER_ARG=10% is not a ratio/);
  });
});
