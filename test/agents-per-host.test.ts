/**
 * One agent per host, as a user deploys Loupe: the gohosts scenario's three
 * hosts (network namespaces: curl on "client", the Go frontend on "web", the
 * Go backend and workers on "api"), each watched by a `loupe run` of its own
 * — its own process, hostname (a UTS namespace) and recording, selecting only
 * its host's programs. The web agent puts the traceparent on the frontend's
 * call; the api agent's recording must carry it in, and the three recordings
 * replayed as one (`loupe replay a b c`, `scenario check --capture ...`) must
 * give the scenario's traces. Skipped with the reason where the live agent,
 * Go or `ip` cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostNetwork } from '../src/scenarios/hosts';
import { liveSupport } from '../src/sources/live/system';
import { freePort, ROOT, spanLines, tempDir, until, waitFor, type SpanLine } from './helpers';
import { runAgent } from './live-agent';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const GOFACTORIAL = path.join(ROOT, 'scenarios/services/gofactorial.sh');
const support = liveSupport();
const skipReason = !support.ok
  ? support.reason
  : spawnSync('ip', ['-V']).error
    ? 'ip (iproute2) is not installed'
    : spawnSync('go', ['version']).error
      ? 'go is not installed'
      : '';
if (skipReason) console.warn(`agents-per-host tests skipped: ${skipReason}`);

type Host = 'client' | 'web' | 'api';

describe.skipIf(Boolean(skipReason))(`an agent per host${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const net = new HostNetwork(['client', 'web', 'api'], `a${process.pid % 10000}`);
  const children: ChildProcess[] = [];
  const dir = tempDir();
  const ports = { workerA: 0, workerB: 0, backend: 0, frontend: 0 };
  const pids: Record<Host, number[]> = { client: [], web: [], api: [] };

  /** A service of gofactorial's on a host, ready; its pid (the script execs the program). */
  async function service(host: Host, name: string, args: string[]): Promise<number> {
    const [ip, ...ipArgs] = net.exec(host);
    const child = spawn(ip!, [...ipArgs, GOFACTORIAL, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: name } });
    children.push(child);
    await waitFor(child, 'stdout', /ready/, 240_000);
    // `ip netns exec` execs the script, which execs the program: one pid all along.
    return child.pid!;
  }

  beforeAll(async () => {
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    net.up();
    const api = net.addr('api');
    pids.api.push(await service('api', 'worker-a', ['worker', `${api}:${ports.workerA}`]));
    pids.api.push(await service('api', 'worker-b', ['worker', `${api}:${ports.workerB}`]));
    pids.api.push(await service('api', 'backend', ['backend', `${api}:${ports.backend}`, `http://${api}:${ports.workerA}`, `http://${api}:${ports.workerB}`]));
    pids.web.push(await service('web', 'frontend', ['frontend', `${net.addr('web')}:${ports.frontend}`, `http://${api}:${ports.backend}`]));
  }, 600_000);

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    net.down();
  });

  it("records each host with an agent of its own, and the recordings replayed as one give the scenario's traces, joined across agents by the injected header", async () => {
    const agents = new Map<Host, ReturnType<typeof runAgent> & { capture: string }>();
    for (const host of ['client', 'web', 'api'] as const) {
      const capture = path.join(dir, `${host}.loupe`);
      const select = host === 'client' ? ['--exe', '/curl$'] : pids[host].flatMap((p) => ['--pid', String(p)]);
      // Its own hostname, as an agent on its own host has: the merged replay names the hosts by it.
      const agent = { ...runAgent([...select, '--record', capture], host), capture };
      children.push(agent.child);
      agents.set(host, agent);
      await until(() => /loupe: attached/.test(agent.stderr()), `the ${host} agent to attach`, 60_000);
      // The Go programs get their probes (and the header) before any request.
      await until(() => pids[host].every((p) => new RegExp(`Go probes in place on \\S+ \\(pid ${p},`).test(agent.stderr())), `the ${host} agent's Go probes`, 120_000);
    }
    const requests = 2;
    for (let i = 0; i < requests; i++) {
      const curl = spawnSync(
        net.exec('client')[0]!,
        [...net.exec('client').slice(1), 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${net.addr('web')}:${ports.frontend}/factorial/30`],
        { encoding: 'utf8' },
      );
      expect(curl.stdout, curl.stderr).toBe('200');
    }
    const count = (host: Host, service: string, kind: string) =>
      agents
        .get(host)!
        .spans()
        .filter((s) => s.service === service && s.kind === kind).length;
    await until(
      () => count('client', 'curl', 'client') === requests && count('web', 'frontend', 'server') === requests && count('api', 'worker-b', 'server') === requests,
      () =>
        `every host to see both requests (curl ${count('client', 'curl', 'client')}, frontend ${count('web', 'frontend', 'server')}, worker-b ${count('api', 'worker-b', 'server')}; ` +
        [...agents].map(([host, a]) => `${host} agent: ${a.stderr().slice(-1500)}`).join('\n') +
        ')',
    );
    for (const a of agents.values()) a.child.kill('SIGINT');
    await Promise.all([...agents.values()].map((a) => new Promise((r) => (a.child.exitCode !== null ? r(null) : a.child.once('exit', r)))));
    for (const [host, a] of agents) expect(a.child.exitCode, `${host}: ${a.stderr()}`).toBe(0);

    // Each agent saw its own host only.
    expect(
      new Set(
        agents
          .get('web')!
          .spans()
          .map((s) => s.service),
      ),
    ).toEqual(new Set(['frontend']));
    expect(
      new Set(
        agents
          .get('api')!
          .spans()
          .map((s) => s.service),
      ),
    ).toEqual(new Set(['backend', 'worker-a', 'worker-b']));
    // The api agent, alone, reads the header the web agent put on the frontend's call.
    for (const s of agents
      .get('api')!
      .spans()
      .filter((x) => x.service === 'backend' && x.kind === 'server'))
      expect(s.attributes['loupe.context']).toBe('traceparent');

    const files = [...agents.values()].map((a) => a.capture);
    const check = spawnSync('node', [CLI, 'scenario', 'check', 'gohosts', ...files.flatMap((f) => ['--capture', f])], { encoding: 'utf8' });
    const merged = spawnSync('node', [CLI, 'replay', ...files, '--format', 'jsonl'], { encoding: 'utf8' });
    // On a failed check, every span of the merged replay by trace, with its parent and how its context came
    // (it failed once in a fresh clone, a worker-a hop not joined, and passed on every rerun).
    const listing = () =>
      spanLines(merged.stdout)
        .map((x) => `${x.traceId.slice(0, 8)} ${x.spanId} <- ${x.parentSpanId || '-'} ${x.service} ${x.kind} ${x.name} ${String(x.attributes['loupe.context'] ?? '')}`)
        .sort()
        .join('\n');
    expect(check.status, check.status === 0 ? '' : `${check.stdout}${check.stderr}\nmerged replay's spans:\n${listing()}`).toBe(0);
    expect(merged.status, merged.stderr).toBe(0);
    // One kernel's clock under all three: each offset found from the traffic, within its bound of 0.
    expect(merged.stderr).toMatch(/hosts: api \(reference clock\)/);
    for (const [host, against] of [
      ['client', 'web'],
      ['web', 'api'],
    ])
      expect(merged.stderr).toMatch(new RegExp(`${host} [+-][\\d.]+ ms ± [\\d.]+ ms from \\d+ connections? with ${against}`));
    const spans = spanLines(merged.stdout);
    const traces = new Map<string, SpanLine[]>();
    for (const s of spans.filter((x) => x.kind !== 'internal')) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    expect(traces.size).toBe(requests);
    for (const trace of traces.values()) {
      expect(trace.map((s) => `${s.service} ${s.kind}`).sort()).toEqual(
        ['curl client', 'frontend server', 'frontend client', 'backend server', 'backend client', 'backend client', 'worker-a server', 'worker-b server'].sort(),
      );
      const curl = trace.find((s) => s.service === 'curl')!;
      expect(trace.find((s) => s.service === 'frontend' && s.kind === 'server')!.parentSpanId).toBe(curl.spanId);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 600_000);
});
