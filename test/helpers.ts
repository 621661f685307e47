import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CaptureHeader } from '../src/events/capture';

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
