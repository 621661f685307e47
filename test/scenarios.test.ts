/**
 * Scenarios: every committed capture is checked against its scenario (what CI
 * replays), a broken expectation fails with exit 4 and says which, a bad
 * scenario file names its key, and — where the live agent can run — the
 * scenario runs live end to end.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { ROOT, tempDir } from './helpers';
import { liveSupport } from '../src/sources/live/system';
import { loadScenario, missingRequirements } from '../src/scenarios/scenario';
import { podmanUnavailable } from './podman';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const SCENARIOS = fs
  .readdirSync(path.join(ROOT, 'scenarios'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''));
// Container services run on podman with the project's settings (test/podman.ts).
const loupe = (...args: string[]) =>
  spawnSync('node', [CLI, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, CONTAINERS_CONF: path.join(ROOT, 'test/containers/containers.conf') } });

describe('scenarios', () => {
  it('has at least one scenario with a committed capture', () => {
    const withCapture = SCENARIOS.filter((s) => (parseYaml(fs.readFileSync(path.join(ROOT, 'scenarios', `${s}.yaml`), 'utf8')) as { capture?: string }).capture);
    expect(withCapture.length).toBeGreaterThan(0);
  });

  for (const name of SCENARIOS) {
    it(`${name}: its committed capture replays into the shapes it expects`, () => {
      const r = loupe('scenario', 'check', name);
      expect(r.stdout, r.stderr).toMatch(new RegExp(`scenario ${name}: ok`));
      expect(r.status).toBe(0);
    });
  }

  it('fails with exit 4 and says which expectation did not hold', () => {
    const scenario = parseYaml(fs.readFileSync(path.join(ROOT, 'scenarios/factorial.yaml'), 'utf8')) as {
      expect: Array<{ traces: number; attributes: Record<string, Record<string, unknown>> }>;
      capture: string;
    };
    scenario.expect[0]!.traces = 4;
    scenario.expect[1]!.attributes['frontend SERVER GET /factorial/x']!['http.response.status_code'] = 500;
    const file = path.join(tempDir(), 'broken.yaml');
    fs.writeFileSync(file, stringify(scenario));
    const r = loupe('scenario', 'check', file, '--capture', path.join(ROOT, scenario.capture));
    expect(r.status).toBe(4);
    expect(r.stdout).toMatch(/^FAIL curl CLIENT > frontend SERVER .*: 3 traces \(expected 4\)$/m);
    expect(r.stdout).toMatch(/FAIL {3}frontend SERVER GET \/factorial\/x: http.response.status_code is 404, expected 500/);
    expect(r.stdout).toMatch(/scenario factorial: FAILED/);
  });

  it('rejects a bad scenario file naming the key, with exit 2', () => {
    const file = path.join(tempDir(), 'bad.yaml');
    fs.writeFileSync(file, 'name: x\nservices: []\nexpect:\n  - path: "curl CLIENT"\n    traces: 1\n');
    const r = loupe('scenario', 'check', file, '--capture', path.join(ROOT, 'captures/factorial.loupe'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml: services: Array must contain at least 1 element/);
    fs.writeFileSync(file, 'name: x\nservices: [{ name: a, run: ["true"] }]\nexpect:\n  - path: "curl SERVES > x"\n    traces: 1\n');
    expect(loupe('scenario', 'check', file, '--capture', 'x').stderr).toMatch(/hop "curl SERVES" is not "service KIND \[name\]"/);
    fs.writeFileSync(file, 'name: x\nservices: [{ name: a, container: true, run: ["8080"] }]\nexpect:\n  - path: "curl CLIENT"\n    traces: 1\n');
    expect(loupe('scenario', 'check', file, '--capture', 'x').stderr).toMatch(/service a: a container needs build \(argv writing a static program to \{out\}\)/);
    fs.writeFileSync(file, 'name: x\nservices: [{ name: a, build: [make], run: ["true"] }]\nexpect:\n  - path: "curl CLIENT"\n    traces: 1\n');
    expect(loupe('scenario', 'check', file, '--capture', 'x').stderr).toMatch(/service a: build is for container services/);
  });

  const support = liveSupport();
  const reason = !support.ok ? support.reason : spawnSync('which', ['curl']).status !== 0 ? 'curl is not installed' : '';
  for (const name of SCENARIOS) {
    const scenario = loadScenario(name);
    const missing = missingRequirements(scenario);
    const skip =
      reason ||
      (missing.length ? `needs ${missing.join(', ')}, not found (programs on PATH, paths under the project)` : '') ||
      (scenario.services.some((s) => s.container) ? podmanUnavailable() : '');
    it.skipIf(Boolean(skip))(
      `${name}: runs live — services, load, agent — and its expectations hold${skip ? ` (skipped: ${skip})` : ''}`,
      () => {
        const out = path.join(tempDir(), 'run.loupe');
        const r = loupe('scenario', 'run', name, '--record', out);
        expect(r.stdout, r.stderr).toMatch(new RegExp(`scenario ${name}: ok`));
        expect(r.status).toBe(0);
        expect(fs.statSync(out).mode & 0o777).toBe(0o600);
        expect(loupe('scenario', 'check', name, '--capture', out).status).toBe(0);
      },
      scenario.services.some((s) => s.container) ? 300_000 : 90_000, // images are built first: Go and Rust from a cold cache
    );
  }
});
