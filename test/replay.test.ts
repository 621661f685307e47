/**
 * Replay of whole captures: goldens, and the determinism rules of the
 * architecture (batch boundaries and byte boundaries do not matter; the same
 * capture replays to byte-identical output).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecord } from '../src/events/codec';
import type { DataEvent, Event } from '../src/events/types';
import { openCapture } from '../src/sources/capture-file';
import { replayFile } from '../src/pipeline/replay';
import { OutputPipeline, SPAN_FORMATS, type SpanFormat } from '../src/pipeline/output';
import type { CaptureHeader } from '../src/events/capture';
import { HEADER, ROOT, tempDir } from './helpers';
import { get, ok, Script } from './script';

const FACTORIAL = path.join(ROOT, 'captures/factorial.loupe');
const CLI = path.join(ROOT, 'dist/cli/main.js');

function loadEvents(file: string): { header: CaptureHeader; events: Event[] } {
  const source = openCapture(file);
  const events = [...source.batches()].flat().map((r) => decodeRecord(r.bytes) as Event);
  return { header: source.header, events };
}

function replayBatches(header: CaptureHeader, batches: Event[][], format: SpanFormat): string {
  let out = '';
  const r = new OutputPipeline(header, format, (s) => (out += s));
  for (const b of batches) r.pushEvents(b);
  r.finish();
  return out;
}

function cutInto<T>(items: T[], cuts: number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let prev = 0;
  for (const p of [...points, items.length]) {
    out.push(items.slice(prev, p));
    prev = p;
  }
  return out;
}

/** A busier capture: several clients, keep-alive, a hung request, a chunked response. */
function busyCapture(): Event[] {
  const s = new Script();
  for (let i = 0; i < 4; i++) {
    const [c, srv] = s.connection({ pid: 3, tid: 30 + i, fd: 10 + i, port: 41000 + i }, { pid: 1, tid: 11 + i, fd: 20 + i, port: 8080 });
    s.send(c, get(`/item/${i}`));
    s.recv(srv, get(`/item/${i}`));
    const [out, back] = s.connection({ pid: 1, tid: 11 + i, fd: 40 + i, port: 42000 + i }, { pid: 2, tid: 50, fd: 60 + i, port: 9090 });
    s.send(out, get(`/price/${i}`));
    s.recv(back, get(`/price/${i}`));
    const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n12.5\r\n0\r\n\r\n';
    s.send(back, chunked);
    s.recv(out, chunked);
    s.send(srv, ok(`item ${i}`));
    s.recv(c, ok(`item ${i}`));
    s.send(c, get('/again'));
    s.recv(srv, get('/again'));
    if (i !== 2) {
      s.send(srv, ok('again'));
      s.recv(c, ok('again'));
    }
  }
  return s.events;
}

describe('replay of the committed demo capture', () => {
  for (const format of SPAN_FORMATS) {
    it(`matches its golden output (${format})`, () => {
      let out = '';
      replayFile(FACTORIAL, format, (s) => (out += s));
      const golden = path.join(ROOT, `test/golden/factorial.${format}.txt`);
      if (process.env.UPDATE_GOLDEN) fs.writeFileSync(golden, out);
      expect(out).toBe(fs.readFileSync(golden, 'utf8'));
    });
  }

  it('is the same trace whether read from the JSONL form or the binary form', () => {
    let a = '';
    let b = '';
    replayFile(FACTORIAL, 'jsonl', (s) => (a += s));
    replayFile(path.join(ROOT, 'captures/factorial.jsonl'), 'jsonl', (s) => (b += s));
    expect(b).toBe(a);
  });

  it('has the expected shape: curl -> frontend -> backend in one trace, the bad request in another', () => {
    let out = '';
    replayFile(FACTORIAL, 'jsonl', (s) => (out += s));
    const spans = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { traceId: string; spanId: string; parentSpanId: string; service: string; kind: string; attributes: Record<string, unknown> });
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const chainOf = (s: (typeof spans)[number]): string[] => {
      const parent = byId.get(s.parentSpanId);
      return [...(parent ? chainOf(parent) : []), `${s.service} ${s.kind}`];
    };
    const backend = spans.find((s) => s.service === 'backend')!;
    expect(chainOf(backend)).toEqual(['curl client', 'frontend server', 'frontend client', 'backend server']);
    const bad = spans.filter((s) => s.attributes['http.response.status_code'] === 400);
    expect(bad.map((s) => `${s.service} ${s.kind}`)).toEqual(['frontend server', 'curl client']);
    expect(bad[0]!.traceId).toBe(bad[1]!.traceId);
    expect(bad[0]!.traceId).not.toBe(backend.traceId);
  });
});

describe('determinism', () => {
  const captures = (): Array<[string, CaptureHeader, Event[]]> => {
    const f = loadEvents(FACTORIAL);
    return [
      ['factorial', f.header, f.events],
      ['busy', HEADER, busyCapture()],
    ];
  };

  it('gives byte-identical output for any batch split of the same events, in every format', () => {
    for (const [name, header, events] of captures()) {
      for (const format of SPAN_FORMATS) {
        const whole = replayBatches(header, [events], format);
        expect(whole.length, `${name} ${format}`).toBeGreaterThan(100);
        fc.assert(
          fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
            expect(replayBatches(header, cutInto(events, cuts), format)).toBe(whole);
          }),
          { numRuns: 60 },
        );
      }
    }
  });

  it('gives the same spans however the payload bytes are cut into records', () => {
    for (const [, header, events] of captures()) {
      const whole = replayBatches(header, [events], 'jsonl');
      fc.assert(
        fc.property(fc.array(fc.array(fc.nat(), { maxLength: 4 }), { maxLength: events.length }), (cutsPerEvent) => {
          const split = events.flatMap((ev, i): Event[] => {
            if (ev.type !== 'data') return [ev];
            return cutInto([...ev.data], cutsPerEvent[i] ?? []).map((piece): DataEvent => ({ ...ev, data: Buffer.from(piece), bytes: piece.length }));
          });
          expect(replayBatches(header, [split], 'jsonl')).toBe(whole);
        }),
        { numRuns: 100 },
      );
    }
  });

  it('writes byte-identical files when the CLI replays the same capture twice', () => {
    const dir = tempDir();
    for (const format of SPAN_FORMATS) {
      const a = path.join(dir, `a.${format}`);
      const b = path.join(dir, `b.${format}`);
      execFileSync('node', [CLI, 'replay', FACTORIAL, '--format', format, '-o', a, '--quiet']);
      execFileSync('node', [CLI, 'replay', FACTORIAL, '--format', format, '-o', b, '--quiet']);
      expect(fs.readFileSync(a).length).toBeGreaterThan(100);
      expect(fs.readFileSync(b).equals(fs.readFileSync(a)), format).toBe(true);
    }
  });

  it('changes the ids but not the shape under another seed', () => {
    const { header, events } = loadEvents(FACTORIAL);
    const strip = (out: string) => out.replace(/[0-9a-f]{32}|[0-9a-f]{16}/g, 'ID');
    const a = replayBatches(header, [events], 'tree');
    const b = replayBatches({ ...header, seed: '0000000000000002' }, [events], 'tree');
    expect(b).not.toBe(a);
    expect(strip(b)).toBe(strip(a));
  });
});

describe('the CLI on bad input', () => {
  it('exits 2 naming the byte offset of a corrupt record, after writing the spans before it', () => {
    const dir = tempDir();
    const bytes = fs.readFileSync(FACTORIAL);
    const source = openCapture(FACTORIAL);
    const records = [...source.batches()].flat();
    const victim = records[14]!; // a data record late in the capture
    const offset = Number(victim.where.split(' ')[1]);
    bytes[offset + 8 + 60]! ^= 0x20;
    const file = path.join(dir, 'corrupt.loupe');
    fs.writeFileSync(file, bytes);
    const r = spawnSync('node', [CLI, 'replay', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}: byte ${offset}: record checksum mismatch`);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(4); // the first trace was complete before the fault
  });

  it('exits 2 on a truncated capture and on a missing file, and 2 on bad arguments', () => {
    const dir = tempDir();
    const file = path.join(dir, 'short.loupe');
    const bytes = fs.readFileSync(FACTORIAL);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 7));
    const r = spawnSync('node', [CLI, 'replay', file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/short\.loupe: byte \d+: truncated: the record here needs \d+ bytes but the file ends after \d+/);
    const missing = spawnSync('node', [CLI, 'replay', path.join(dir, 'nope.loupe')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('nope.loupe: open: ENOENT');
    const badFormat = spawnSync('node', [CLI, 'replay', FACTORIAL, '--format', 'xml'], { encoding: 'utf8' });
    expect(badFormat.status).toBe(2);
    expect(badFormat.stderr).toContain('--format must be one of jsonl, otlp-json, tree');
    expect(spawnSync('node', [CLI, 'frobnicate'], { encoding: 'utf8' }).status).toBe(2);
  });

  it('skips records of unknown type and counts them in the summary', () => {
    const dir = tempDir();
    const jsonl = fs.readFileSync(path.join(ROOT, 'captures/factorial.jsonl'), 'utf8').trimEnd().split('\n');
    const unknown = Buffer.alloc(32);
    unknown.writeUInt32LE(77, 8);
    jsonl.splice(5, 0, JSON.stringify({ type: 'unknown', raw: unknown.toString('base64') }), JSON.stringify({ type: 'unknown', raw: unknown.toString('base64') }));
    const file = path.join(dir, 'future.jsonl');
    fs.writeFileSync(file, jsonl.join('\n'));
    const r = spawnSync('node', [CLI, 'replay', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('2 records of unknown type skipped (type 77: 2)');
    expect(r.stdout.trim().split('\n')).toHaveLength(6);
  });

  it('converts both ways byte for byte, writing captures mode 0600', () => {
    const dir = tempDir();
    const jsonl = path.join(dir, 'f.jsonl');
    const back = path.join(dir, 'f.loupe');
    execFileSync('node', [CLI, 'convert', FACTORIAL, jsonl], { stdio: 'pipe' });
    execFileSync('node', [CLI, 'convert', jsonl, back], { stdio: 'pipe' });
    expect(fs.readFileSync(back).equals(fs.readFileSync(FACTORIAL))).toBe(true);
    expect(fs.statSync(jsonl).mode & 0o777).toBe(0o600);
    expect(fs.statSync(back).mode & 0o777).toBe(0o600);
    // and the committed binary capture is exactly its committed JSONL source
    const fromSource = path.join(dir, 'src.loupe');
    execFileSync('node', [CLI, 'convert', path.join(ROOT, 'captures/factorial.jsonl'), fromSource], { stdio: 'pipe' });
    expect(fs.readFileSync(fromSource).equals(fs.readFileSync(FACTORIAL))).toBe(true);
  });
});
