/**
 * The Go release matrix (scenarios/go-releases/releases.tsv): Debian's Go
 * 1.19 and Go 1.21 to 1.26 from the module proxy, each with the newest grpc-go
 * its go.mod accepts. For every release: the gofactorial scenario (curl ->
 * frontend -> backend -> HTTP and gRPC workers) gives the same trace shapes,
 * in-queue and processing spans, the injected traceparent joining each HTTP
 * hop; and the injection guarantees hold on its header map (buckets to 1.23,
 * a swiss table from 1.24): one header on a request without one, POST
 * included, never a second one on a request that has its own, with a map
 * grown past one group. Builds are cached per release (build/go-releases).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { liveSupport } from '../src/sources/live/system';
import { throughAgent, traceparentsOf } from './go-agent';
import { ROOT, tempDir } from './helpers';

const SCRIPT = path.join(ROOT, 'scripts/go-releases.sh');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const releases = execFileSync(SCRIPT, ['list'], { encoding: 'utf8' }).trim().split('\n');
const support = liveSupport();
const reason = !support.ok
  ? support.reason
  : spawnSync('go', ['version']).status !== 0
    ? 'go is not installed'
    : spawnSync('curl', ['--version']).status !== 0
      ? 'curl is not installed'
      : '';
if (reason) console.warn(`Go release matrix skipped: ${reason}`);

const OWN = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;

describe.skipIf(Boolean(reason))(`the Go release matrix${reason ? ` (skipped: ${reason})` : ''}`, () => {
  for (const release of releases) {
    describe(release, () => {
      it('the gofactorial scenario gives its trace shapes: goroutine tree, injected traceparent, gRPC by the connection pair, in-queue and processing spans', () => {
        const built = spawnSync(SCRIPT, ['build', release, 'exe'], { encoding: 'utf8' });
        expect(built.status, built.stderr).toBe(0);
        const out = path.join(tempDir(), `${release}.loupe`);
        const r = spawnSync('node', [CLI, 'scenario', 'run', 'gofactorial', '--record', out], {
          encoding: 'utf8',
          cwd: ROOT,
          env: { ...process.env, GOFACTORIAL_RELEASE: release },
        });
        expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      }, 600_000);

      it('puts one traceparent on requests without one (GET, POST; 26 headers from Go 1.24) and never a second on one with its own, 27 headers too', async () => {
        const swiss = Number(release.split('.')[1]) >= 24;
        const run = await throughAgent(
          true,
          [['/plain'], ['POST /posted'], ['/own', OWN], ['/own-grown', OWN, 26], ['/grown', undefined, 26]],
          [],
          'exe',
          {},
          { GOFACTORIAL_RELEASE: release },
        );
        expect(run.go && 'goVersion' in run.go ? run.go.goVersion : run.go).toMatch(new RegExp(`^${release.replace('.', '\\.')}(\\.|$)`));
        expect(run.go && 'goVersion' in run.go ? [run.go.injects, run.go.headerMap] : run.go).toEqual([true, swiss ? 'swiss table' : 'buckets']);
        const got = (url: string) => traceparentsOf(run.received.find((x) => x.url === url)!.raw);
        expect(got('/plain')).toHaveLength(1);
        expect(got('/posted')).toHaveLength(1);
        expect(got('/own')).toEqual([OWN]);
        expect(got('/own-grown')).toEqual([OWN]);
        // 26 keys: a bucket map (to 1.23) of 4 buckets overflows one of them or not as its random hash seed falls,
        // and a map with overflow buckets is not searched (no header: never a second); a swiss table (1.24+) is
        // one table of groups the search reads whole.
        if (swiss) expect(got('/grown')).toHaveLength(1);
        else expect(got('/grown').length).toBeLessThanOrEqual(1);
        // Each injected header names the client span the agent reported for it.
        for (const url of ['/plain', '/posted']) {
          const [, traceId, spanId] = got(url)[0]!.split('-');
          const call = run.spans.find((s) => s.kind === 'client' && s.pid === run.clientPid && String(s.attributes['url.full']).endsWith(url))!;
          expect({ traceId: call.traceId, spanId: call.spanId }).toEqual({ traceId, spanId });
        }
        expect(run.replayText).toBe(run.liveText);
      }, 600_000);
    });
  }

  const current = releases[releases.length - 1]!;
  for (const [how, mode, env] of [
    ['position-independent (-buildmode=pie)', 'pie', {}],
    ['stripped of symbols and DWARF (-ldflags=-s -w): functions from .gopclntab, offsets from the table', 'stripped', {}],
    ['started in a mount namespace of its own, from a path only that namespace has, as in a container: found through /proc/PID/exe', 'exe', { GOFACTORIAL_PRIVATE_MOUNT: '1' }],
  ] as const) {
    it(`${current}, ${how}: probed, and its request carries the header naming its client span`, async () => {
      const built = spawnSync(SCRIPT, ['build', current, mode], { encoding: 'utf8' });
      expect(built.status, built.stderr).toBe(0);
      const run = await throughAgent(true, [['/plain'], ['/own', OWN]], [], mode, {}, { GOFACTORIAL_RELEASE: current, ...env });
      expect(run.go && 'goVersion' in run.go ? run.go.offsetsFrom : run.go).toBe(mode === 'stripped' ? 'table' : 'dwarf');
      const plain = traceparentsOf(run.received.find((x) => x.url === '/plain')!.raw);
      expect(plain).toHaveLength(1);
      expect(traceparentsOf(run.received.find((x) => x.url === '/own')!.raw)).toEqual([OWN]);
      const call = run.spans.find((s) => s.kind === 'client' && s.pid === run.clientPid && String(s.attributes['url.full']).endsWith('/plain'))!;
      expect(plain[0]).toBe(`00-${call.traceId}-${call.spanId}-01`);
      expect(run.replayText).toBe(run.liveText);
    }, 600_000);
  }
});
