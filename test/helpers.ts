import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import type { CaptureHeader } from '../src/events/capture';
import { headerToJsonLine, recordToJsonLine } from '../src/events/jsonl';
import { maskRecords } from '../src/pipeline/record-masking';
import { openCapture } from '../src/sources/capture-file';

export { freePort } from '../src/scenarios/run';

export const HEADER: CaptureHeader = {
  eventsVersion: 1,
  seed: '00000000000000aa',
  host: { hostname: 'test-host', kernel: '6.18.0', arch: 'x86_64' },
  bootTimeNs: '1700000000000000000',
  processes: [],
  config: {},
};

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-test-'));
}

export const ROOT = path.resolve(__dirname, '..');

/** Resolves with what the stream said once `pattern` shows; rejects after `ms`, or when the child exits first. */
export function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} on ${stream}; saw: ${seen}`)), ms);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        child[stream]!.off('data', onData);
        resolve(seen);
      }
    };
    child[stream]!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}; saw: ${seen}`));
    });
  });
}

/** The TypeScript sources under a folder, tests left out: for tests that hold the code to a rule. */
export function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** A span as `--format jsonl` writes it (src/export/jsonl.ts), as the live tests read it back. */
export interface SpanLine {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  service: string;
  pid: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: string; message?: string };
  attributes: Record<string, string | number | boolean>;
  durationNs: number;
  parentIsRemote?: boolean;
  links?: Array<{ traceId: string; spanId: string; traceState?: string }>;
}

/** The spans of `--format jsonl` text, one per non-empty line. */
export function spanLines(text: string): SpanLine[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SpanLine);
}

/** Resolves once `condition` holds, polled every 50 ms; rejects naming `what` after `ms` (a bound for a hung test, not a timing). */
/** `what` may be a function: what was seen when it gave up, for a failure that does not come back on rerun. */
export async function until(condition: () => boolean, what: string | (() => string), ms = 30_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 50) {
    if (waited >= ms) throw new Error(`gave up waiting for ${typeof what === 'string' ? what : what()} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A capture's spans (JSON lines) replayed from its bytes as they are, and from
 * its payloads masked as a recording live run masks them; and whether the
 * masking changed any byte. A live run that records nothing skips the
 * masking, so the two must be the same.
 */
export function spansRawAndMasked(capture: string): { raw: string; masked: string; bytesChanged: number } {
  const source = openCapture(capture);
  const raw = [...source.batches()].flat().map((r) => r.bytes);
  const masked = maskRecords(raw);
  let bytesChanged = 0;
  for (let i = 0; i < raw.length; i++) for (let j = 0; j < raw[i]!.length; j++) if (raw[i]![j] !== masked[i]![j]) bytesChanged++;
  const maskedFile = path.join(tempDir(), 'masked.jsonl');
  fs.writeFileSync(maskedFile, [headerToJsonLine(source.header), ...masked.map(recordToJsonLine)].join('\n') + '\n');
  const replay = (file: string) => {
    const r = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', file, '--format', 'jsonl', '--quiet'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`replay of ${file} failed: ${r.stderr}`);
    return r.stdout;
  };
  return { raw: replay(capture), masked: replay(maskedFile), bytesChanged };
}
