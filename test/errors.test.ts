/** One error base class (src/errors.ts): every error Loupe raises is one, with a code, and the CLI exits with its kind's status. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, EXIT_STATUS, LoupeError } from '../src/errors';
import { CaptureError } from '../src/events/capture';
import { LiveError } from '../src/sources/live/live-source';
import { ROOT, tempDir, sourceFiles } from './helpers';

describe('errors', () => {
  it("are all LoupeErrors: no other exported class in the sources extends Error (a parser's private signal, caught where it is thrown, may)", () => {
    const others = sourceFiles(path.join(ROOT, 'src')).flatMap((f) =>
      [...fs.readFileSync(f, 'utf8').matchAll(/export class (\w+) extends Error\b/g)].map((m) => `${path.relative(ROOT, f)}: ${m[1]}`),
    );
    expect(others).toEqual(['src/errors.ts: LoupeError']);
  });

  it('carry a code whose kind gives the exit status', () => {
    const capture = new CaptureError('x.loupe', 'byte 7', 'bad');
    expect([capture.code, capture.exitStatus, capture.name, capture instanceof LoupeError]).toEqual(['LOUPE_CAPTURE', EXIT_STATUS.input, 'CaptureError', true]);
    expect(new LiveError('no BPF').exitStatus).toBe(EXIT_STATUS.live);
    for (const kind of Object.values(ERROR_KINDS)) expect(EXIT_STATUS[kind]).toBeGreaterThan(1);
  });

  it('reach the CLI as their status, a bug as 1', () => {
    const bad = path.join(tempDir(), 'bad.loupe');
    fs.writeFileSync(bad, 'not a capture');
    const r = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', bad], { encoding: 'utf8' });
    expect(r.status).toBe(EXIT_STATUS.input);
    expect(r.stderr).toMatch(/^loupe: .*bad\.loupe: /);
  });
});
