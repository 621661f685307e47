/**
 * The views people look at: the terminal waterfall, and the HTML report opened
 * in headless Chromium (Debian's) to check what its script drew.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers';
import { serviceEdges } from '../src/export/report';
import { spansOfCapture } from '../src/pipeline/replay';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const CAPTURE = path.join(ROOT, 'captures/factorial.loupe');
const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync('which', [c]).status === 0);
if (!chromium) console.warn('report browser test skipped: chromium is not installed');

describe('loupe view', () => {
  it('draws each trace as a waterfall with bars placed on its time axis', () => {
    const r = spawnSync('node', [CLI, 'view', CAPTURE, '--width', '20'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const bar = (needle: string) => lines.find((l) => l.includes(needle))!.match(/[·█▓░]{20}/)![0];
    expect(bar('curl CLIENT GET http://localhost:8080/factorial/5')).toBe('█'.repeat(20)); // the root spans the trace
    expect(bar('backend SERVER')).toMatch(/^·+█+·*$/); // starts later, ends before the root
    expect(bar('/factorial/abc -> 400')).toMatch(/^·+█+·+$/);
    expect(lines.find((l) => l.includes('curl CLIENT GET http://localhost:8080/factorial/abc'))).toMatch(/▓{20} .* ERROR$/);
    const one = spawnSync('node', [CLI, 'view', CAPTURE, '--trace', 'db0b'], { encoding: 'utf8' }).stdout;
    expect(one).toMatch(/^trace db0b3619/);
    expect(one).not.toContain('8bb41985');
  });
});

describe('loupe report', () => {
  it('counts calls and errors between services', () => {
    const { spans } = spansOfCapture(CAPTURE);
    expect(serviceEdges(spans).map(({ from, to, calls, errors }) => ({ from, to, calls, errors }))).toEqual([
      { from: 'curl', to: 'frontend', calls: 2, errors: 1 },
      { from: 'frontend', to: 'backend', calls: 1, errors: 0 },
    ]);
  });

  it.skipIf(!chromium)(`opens in headless Chromium and draws the services, edges and waterfalls${chromium ? '' : ' (skipped: chromium is not installed)'}`, () => {
    const dir = tempDir();
    const out = path.join(dir, 'report.html');
    const r = spawnSync('node', [CLI, 'report', CAPTURE, '-o', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).not.toMatch(/<(script|link|img)[^>]+(src|href)=/); // self-contained
    const dom = spawnSync(chromium!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', `--user-data-dir=${path.join(dir, 'profile')}`, '--dump-dom', `file://${out}`,
    ], { encoding: 'utf8', timeout: 60_000 }).stdout;
    for (const service of ['curl', 'frontend', 'backend']) expect(dom).toContain(`data-service="${service}"`);
    expect(dom).toContain('data-edge="curl-&gt;frontend"');
    expect(dom).toContain('2 calls, 1 error');
    expect((dom.match(/class="edge"/g) ?? []).length).toBe(2);
    expect(dom).toMatch(/<th>calls\/s<\/th>/);
    expect((dom.match(/data-trace="/g) ?? []).length).toBe(2);
    expect((dom.match(/class="bar client error"/g) ?? []).length).toBe(1);
  }, 90_000);
});
