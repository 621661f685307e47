/**
 * A real Prometheus (Debian's) scrapes a live `loupe run --prometheus-port`
 * while a Node server is driven by curl; a PromQL query then returns the RED
 * series with the route as a label, and the agent's own counters (records,
 * records lost, spans). Needs root and BPF (live capture) and the
 * prometheus binary; skips with the reason otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { liveSupport } from '../src/sources/live/system';
import { freePort, ROOT, tempDir, waitFor } from './helpers';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const support = liveSupport();
const reason = !support.ok
  ? support.reason
  : spawnSync('which', ['prometheus']).status !== 0
    ? 'prometheus is not installed'
    : spawnSync('which', ['curl']).status !== 0
      ? 'curl is not installed'
      : '';
if (reason) console.warn(`Prometheus test skipped: ${reason}`);

async function promql(port: number, query: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  return body.data?.result ?? [];
}

describe.skipIf(Boolean(reason))(`Prometheus scraping loupe run${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGINT');
  });

  it('a PromQL query returns the request count per route from /metrics', async () => {
    const dir = tempDir();
    const [appPort, metricsPort, promPort] = [await freePort(), await freePort(), await freePort()];
    const agent = spawn('node', [CLI, 'run', '--port', String(appPort), '--prometheus-port', String(metricsPort), '--format', 'jsonl', '--quiet'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(agent);
    await waitFor(agent, 'stderr', /attached/);
    const app = spawn(
      process.execPath,
      ['-e', `require('http').createServer((q, r) => r.writeHead(q.url.endsWith('7') ? 500 : 200).end('ok')).listen(${appPort}, '127.0.0.1', () => console.log('ready'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(app);
    await waitFor(app, 'stdout', /ready/);
    for (let i = 1; i <= 7; i++) spawnSync('curl', ['-s', `http://127.0.0.1:${appPort}/items/${i}`]);
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: loupe\n    static_configs:\n      - targets: ['127.0.0.1:${metricsPort}']\n`,
    );
    const prom = spawn(
      'prometheus',
      [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      { stdio: 'ignore' },
    );
    children.push(prom);
    const query = 'sum by (http_route, http_response_status_code) (http_server_request_duration_seconds_count{service_name="node"})';
    let result: Awaited<ReturnType<typeof promql>> = [];
    for (let tries = 0; tries < 60 && result.length < 2; tries++) {
      await new Promise((r) => setTimeout(r, 500));
      result = await promql(promPort, query).catch(() => []);
    }
    const counts = Object.fromEntries(result.map((r) => [`${r.metric.http_route} ${r.metric.http_response_status_code}`, Number(r.value[1])]));
    expect(counts).toEqual({ '/items/{id} 200': 6, '/items/{id} 500': 1 });
    const buckets = await promql(promPort, 'count(http_server_request_duration_seconds_bucket{service_name="node", http_response_status_code="200"})');
    expect(Number(buckets[0]?.value[1])).toBe(16); // Beyla's 15 boundaries and +Inf
    // The agent's own counters: both ends of 7 requests watched (curl's and the server's spans), nothing lost.
    const own = async (name: string) => Number((await promql(promPort, name))[0]?.value[1]);
    let spans = 0;
    for (let tries = 0; tries < 20 && spans < 14; tries++) {
      spans = await own('loupe_agent_spans_total');
      if (spans < 14) await new Promise((r) => setTimeout(r, 500));
    }
    expect(spans).toBe(14);
    expect(await own('loupe_agent_records_total')).toBeGreaterThanOrEqual(4 * 7); // a write and a read at each end
    expect(await own('loupe_agent_records_lost_total')).toBe(0);
    expect(await own('loupe_agent_spans_dropped_total')).toBe(0);
  }, 90_000);
});
