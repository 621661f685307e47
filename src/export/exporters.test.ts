import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { Span } from '../correlator/span';
import { Exporters, OtlpTraceQueue } from './exporters';

/** An exporter whose answers the test gives: each export waits until `answer` is called. */
function manualExporter() {
  const calls: Array<{ batch: ReadableSpan[]; done: (ok: boolean) => void }> = [];
  const exporter: SpanExporter = {
    export: (batch, cb) => calls.push({ batch, done: (ok) => cb(ok ? { code: 0 } : { code: 1, error: new Error('refused') }) }),
    shutdown: async () => {},
  };
  return { exporter, calls };
}

const span = (i: number) => ({ name: `s${i}` }) as unknown as Span;
const asReadable = (s: Span) => s as unknown as ReadableSpan;
const names = (batch: ReadableSpan[]) => batch.map((s) => s.name);
const settle = () => new Promise((r) => setImmediate(r));

describe('OTLP trace queue', () => {
  it('keeps at most 4 exports in flight and the rest queued', async () => {
    const { exporter, calls } = manualExporter();
    const q = new OtlpTraceQueue(exporter, asReadable, 100, 10);
    for (let i = 0; i < 60; i++) q.onSpan(span(i));
    expect(calls).toHaveLength(4);
    expect(q.queued).toBe(20);
    calls[0]!.done(true);
    await settle();
    expect(calls).toHaveLength(5); // one answered, the next batch goes
    expect(names(calls[4]!.batch)).toEqual(Array.from({ length: 10 }, (_, i) => `s${40 + i}`));
  });

  it('drops the oldest batch when full, and counts every span exported or dropped', async () => {
    const { exporter, calls } = manualExporter();
    const q = new OtlpTraceQueue(exporter, asReadable, 50, 10);
    for (let i = 0; i < 205; i++) q.onSpan(span(i));
    // 40 in flight (4 batches), the queue at its bound: the oldest queued went first, the newest stayed.
    expect(q.queued).toBeLessThanOrEqual(50);
    const drain = q.drain();
    for (let round = 0; round < 30; round++) {
      for (const c of calls.splice(0)) c.done(true);
      await settle();
    }
    await drain;
    expect(q.stats.exported + q.stats.dropped).toBe(205);
    expect(q.stats.dropped).toBeGreaterThan(0);
    expect(q.stats.dropped % 10).toBe(0); // whole batches
  });

  it('lets a replay wait for room, but not behind a failing collector', async () => {
    const { exporter, calls } = manualExporter();
    const q = new OtlpTraceQueue(exporter, asReadable, 100, 10);
    for (let i = 0; i < 140; i++) q.onSpan(span(i)); // 40 in flight, 100 queued
    let roomy = false;
    const room = q.room().then(() => (roomy = true));
    await settle();
    expect(roomy).toBe(false);
    for (const c of calls.splice(0)) c.done(true);
    await settle();
    for (const c of calls.splice(0)) c.done(true);
    await room;
    expect(q.queued).toBeLessThanOrEqual(50);
    // The collector starts failing: room() no longer waits, and shutdown drops what is queued.
    for (let i = 0; i < 100; i++) q.onSpan(span(1000 + i));
    for (const c of calls.splice(0)) c.done(false);
    await settle();
    await q.room();
    const before = q.stats.dropped;
    const queued = q.queued;
    const drain = q.drain();
    for (let round = 0; round < 10; round++) {
      for (const c of calls.splice(0)) c.done(false);
      await settle();
    }
    await drain;
    expect(q.stats.dropped).toBeGreaterThanOrEqual(before + queued);
    expect(q.queued).toBe(0);
  });

  it("samples by the configuration file's sampler, and by OTEL_TRACES_SAMPLER over it", async () => {
    const traced = (i: number) =>
      ({ ...span(i), traceId: `${i.toString(16).padStart(8, '0')}0af7651916cd43dd8448eb21`, parentSpanId: '', kind: 'server', attributes: {} }) as unknown as Span;
    const saved = process.env.OTEL_TRACES_SAMPLER;
    try {
      delete process.env.OTEL_TRACES_SAMPLER;
      const fromFile = new Exporters({ otlp: true, sampler: { name: 'always_off' } }, asReadable);
      for (let i = 1; i <= 10; i++) fromFile.onSpan(traced(i));
      expect(fromFile.traceStats).toMatchObject({ unsampled: 10, exported: 0 });
      await fromFile.shutdown();
      process.env.OTEL_TRACES_SAMPLER = 'always_on';
      const fromEnv = new Exporters({ otlp: true, sampler: { name: 'always_off' } }, asReadable);
      for (let i = 1; i <= 10; i++) fromEnv.onSpan(traced(i));
      expect(fromEnv.traceStats).toMatchObject({ unsampled: 0 });
      expect((fromEnv as unknown as { traces: OtlpTraceQueue }).traces.queued).toBe(10);
      (fromEnv as unknown as { traces: { queue: unknown[] } }).traces.queue = []; // these stand-ins cannot be encoded
      process.env.OTEL_EXPORTER_OTLP_TIMEOUT = '500';
      await fromEnv.shutdown();
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
      if (saved === undefined) delete process.env.OTEL_TRACES_SAMPLER;
      else process.env.OTEL_TRACES_SAMPLER = saved;
    }
  });
});
