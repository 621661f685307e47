/**
 * One trace across three hosts by header injection alone, through services
 * in three languages and a proxy, each host watched by a `loupe run` of its
 * own (`--no-tcp-options`, so no other way joins them): curl on "edge" calls
 * nginx (Debian's, a reverse proxy) on edge, which passes /py/ to a Flask
 * service (CPython, urllib), /rs/ to a Rust service on the standard library
 * alone and /js/ to a Node service (its http client, keep-alive), all on
 * "app", and each of those calls a Node `http` server on "data". nginx's
 * upstream request carries the trace of the request its worker is serving;
 * Flask's and Rust's carry the trace of the request their thread serves;
 * Node's event loop serves the one request it has open (with several open,
 * none for certain, unless it calls out right after reading one).
 * The three recordings replayed as one give the same traces.
 *
 * Injection into programs that are not Go is off by default on kernels with
 * the sockhash FIONREAD regression; none of these programs asks FIONREAD
 * (nginx 1.22 with epoll reads until EAGAIN), so the agents are told
 * --inject-despite-fionread. Skipped with the reason where the live agent,
 * `ip`, nginx, Flask, rustc or node is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostNetwork } from '../src/scenarios/hosts';
import { liveSupport } from '../src/sources/live/system';
import { ROOT, spanLines, tempDir, until, type SpanLine } from './helpers';
import { onHosts, runAgent } from './live-agent';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const PYTHON = '/usr/bin/python3';
const support = liveSupport();
const missing = (cmd: string, args: string[]) => (spawnSync(cmd, args).status === 0 ? '' : `${cmd} ${args.join(' ')} fails`);
const skipReason = !support.ok ? support.reason : missing('ip', ['-V']) || missing('nginx', ['-v']) || missing('rustc', ['--version']) || missing(PYTHON, ['-c', 'import flask']);
if (skipReason) console.warn(`injection across hosts skipped: ${skipReason}`);

type Host = 'edge' | 'app' | 'data';
const HOSTS: Host[] = ['edge', 'app', 'data'];
const NGINX_PORT = 8000;
const FLASK_PORT = 8080;
const RUST_PORT = 8081;
const NODE_CHAIN_PORT = 8082;
const NODE_PORT = 8090;

describe.skipIf(Boolean(skipReason))(`one trace across hosts by header injection: nginx -> Flask / Rust std / Node -> Node${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const net = new HostNetwork(HOSTS, `i${process.pid % 10000}`);
  const dir = tempDir();
  const children: ChildProcess[] = [];
  const pids: Record<Host, number[]> = { edge: [], app: [], data: [] };
  const logs: Record<Host, string> = { edge: '', app: '', data: '' };
  const { run: onHost, daemon } = onHosts(net, children, logs, 60_000);

  beforeAll(async () => {
    const rust = path.join(dir, 'chain-server');
    const built = spawnSync('rustc', ['-O', '-o', rust, path.join(ROOT, 'test/fixtures/chain-server.rs')], { encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
    net.up();
    const data = `${net.addr('data')}:${NODE_PORT}`;
    pids.data.push(
      await daemon('data', ['node', '-e', `require('http').createServer((q, s) => s.end('node ' + q.url.split('/').pop() + '\\n')).listen(${NODE_PORT}, '${net.addr('data')}')`], {
        port: NODE_PORT,
      }),
    );
    pids.app.push(
      await daemon('app', [PYTHON, path.join(ROOT, 'test/fixtures/chain-flask.py'), net.addr('app'), String(FLASK_PORT), data], { stream: 'stderr', shows: /Running on/ }),
    );
    pids.app.push(await daemon('app', [rust, `${net.addr('app')}:${RUST_PORT}`, data], { stream: 'stdout', shows: /listening/ }));
    pids.app.push(
      await daemon('app', ['node', path.join(ROOT, 'test/fixtures/chain-node.js'), net.addr('app'), String(NODE_CHAIN_PORT), data], { stream: 'stdout', shows: /listening/ }),
    );
    // One process, its own worker: killed at the end, it leaves no orphaned worker behind (a master killed with SIGKILL did).
    const conf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(
      conf,
      `daemon off; master_process off; error_log ${dir}/nginx-error.log; pid ${dir}/nginx.pid;
events {}
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server {
    listen ${net.addr('edge')}:${NGINX_PORT};
    location /py/ { proxy_pass http://${net.addr('app')}:${FLASK_PORT}; }
    location /rs/ { proxy_pass http://${net.addr('app')}:${RUST_PORT}; }
    location /js/ { proxy_pass http://${net.addr('app')}:${NODE_CHAIN_PORT}; }
  }
}
`,
    );
    pids.edge.push(await daemon('edge', ['nginx', '-c', conf, '-p', dir], { port: NGINX_PORT }));
  }, 300_000);

  /** An agent per host, each watching that host's services by --pid, headers alone joining them (no TCP options); attached. */
  async function attachAgents(hosts: readonly Host[]) {
    const agents = hosts.map((host) => {
      const run = runAgent([...pids[host].flatMap((p) => ['--pid', String(p)]), '--inject-despite-fionread', '--no-tcp-options'], host);
      children.push(run.child);
      return { host, ...run };
    });
    for (const a of agents) await until(() => /context across hosts/.test(a.stderr()), `the ${a.host} agent to attach`, 60_000);
    return agents;
  }

  async function stopAgents(agents: Array<{ child: ChildProcess }>) {
    for (const a of agents) a.child.kill('SIGINT');
    await Promise.all(agents.map((a) => new Promise((r) => (a.child.exitCode !== null ? r(null) : a.child.once('exit', r)))));
  }

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    net.down();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('joins every hop of curl -> nginx -> Flask, Rust or Node -> Node into one trace live, across three agents, and the recordings replayed as one give the same traces', async () => {
    const agents = new Map<Host, ReturnType<typeof runAgent> & { capture: string }>();
    for (const host of HOSTS) {
      const capture = path.join(dir, `${host}.loupe`);
      const run = runAgent([...pids[host].flatMap((p) => ['--pid', String(p)]), '--inject-despite-fionread', '--no-tcp-options', '--record', capture], host);
      children.push(run.child);
      await until(() => /context across hosts/.test(run.stderr()), `the ${host} agent to attach`, 60_000);
      expect(run.stderr()).toMatch(/header in other programs' HTTP\/1 calls: on \(/);
      expect(run.stderr()).toMatch(/TCP header options: off \(turned off by configuration\)/);
      agents.set(host, { ...run, capture });
    }
    const rounds = 3;
    for (let i = 1; i <= rounds; i++) {
      for (const [tier, item] of [
        ['py', `pear${i}`],
        ['rs', `plum${i}`],
        ['js', `fig${i}`],
      ] as const) {
        const curl = onHost('edge', ['curl', '-sS', `http://${net.addr('edge')}:${NGINX_PORT}/${tier}/${item}`]);
        // Each service got its request whole and answered: every byte went as written, plus the header.
        expect(curl.stdout, `${curl.stderr}\n${logs.app}\n${logs.edge}`).toBe(`${tier} node ${item}\n`);
      }
    }
    const requests = rounds * 3;
    const spans = (host: Host) => agents.get(host)!.spans();
    await until(
      () =>
        spans('edge').filter((s) => s.kind === 'server').length === requests &&
        spans('edge').filter((s) => s.kind === 'client').length === requests &&
        spans('app').filter((s) => s.kind === 'server').length === requests &&
        spans('app').filter((s) => s.kind === 'client').length === requests &&
        spans('data').filter((s) => s.kind === 'server').length === requests,
      `the three agents to see the ${requests} requests at each hop`,
      60_000,
    );
    const all = HOSTS.flatMap((h) => spans(h));
    const byId = new Map(all.map((s) => [s.spanId, s]));
    const parentOf = (s: SpanLine) => byId.get(s.parentSpanId);
    // Each Node request's server span leads back, hop by hop, to nginx's server span, in one trace.
    for (const leaf of spans('data').filter((s) => s.kind === 'server')) {
      const chain: SpanLine[] = [leaf];
      for (let s = parentOf(leaf); s; s = parentOf(s)) chain.push(s);
      const path = chain.map((s) => `${s.kind} ${s.service}`).reverse();
      expect(path.map((p) => p.split(' ')[0])).toEqual(['server', 'client', 'server', 'client', 'server']);
      expect(new Set(chain.map((s) => s.traceId)).size).toBe(1);
      expect(spans('edge').map((s) => s.spanId)).toContain(chain.at(-1)!.spanId); // nginx's server span, the root
      expect(chain.at(-1)!.parentSpanId).toBe('');
      // The hops between hosts are the headers' joins.
      expect(leaf.attributes['loupe.context']).toBe('traceparent');
      expect(chain[2]!.attributes['loupe.context']).toBe('traceparent');
    }
    expect(new Set(spans('data').map((s) => s.traceId)).size).toBe(requests);

    for (const a of agents.values()) a.child.kill('SIGINT');
    await Promise.all([...agents.values()].map((a) => new Promise((r) => (a.child.exitCode !== null ? r(null) : a.child.once('exit', r)))));
    // LOUPE_KEEP_CAPTURES=DIR keeps the three recordings (captures/inject-*.loupe, which CI replays, came from here).
    if (process.env.LOUPE_KEEP_CAPTURES) for (const [host, a] of agents) fs.copyFileSync(a.capture, path.join(process.env.LOUPE_KEEP_CAPTURES, `inject-${host}.loupe`));
    for (const [host, a] of agents)
      expect(a.stderr(), host).toMatch(host === 'data' ? /traceparent put on 0 requests/ : new RegExp(`traceparent put on ${requests} requests; 0 left`));
    const merged = spawnSync('node', [CLI, 'replay', ...[...agents.values()].map((a) => a.capture), '--format', 'jsonl'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(merged.status, merged.stderr).toBe(0);
    // Server span ids are made by each run's user space (a merged replay makes its own); client span ids went on the wire.
    const shape = (list: SpanLine[]) => {
      const ids = new Map(list.map((s) => [s.spanId, s]));
      return list
        .filter((s) => s.kind !== 'internal')
        .map((s) => {
          const parent = ids.get(s.parentSpanId);
          return `${s.traceId} ${s.kind} ${s.service} ${s.kind === 'client' ? s.spanId : ''} <- ${parent ? `${parent.kind} ${parent.service} ${parent.kind === 'client' ? parent.spanId : ''}` : 'root'}`;
        })
        .sort();
    };
    expect(shape(spanLines(merged.stdout))).toEqual(shape(all));
  }, 600_000);

  it("gives each upstream request nginx sends under concurrency the trace of the downstream request that caused it, and Node's calls theirs", async () => {
    const agents = await attachAgents(HOSTS);
    // 8 at a time through one nginx worker: its thread has several requests open while it connects upstream.
    const perTier = 24;
    const base = `http://${net.addr('edge')}:${NGINX_PORT}`;
    const curl = onHost('edge', [
      'curl',
      '-sS',
      '--parallel',
      '--parallel-immediate',
      '--parallel-max',
      '8',
      '-w',
      '%{http_code}\n',
      '-o',
      '/dev/null',
      `${base}/py/p[1-${perTier}]`,
      `${base}/js/j[1-${perTier}]`,
    ]);
    expect(
      curl.stdout.split('\n').filter((l) => l === '200'),
      curl.stderr,
    ).toHaveLength(2 * perTier);
    const spans = (host: Host) => agents.find((a) => a.host === host)!.spans();
    await until(() => spans('data').filter((s) => s.kind === 'server').length === 2 * perTier, `the data agent to see ${2 * perTier} requests`, 60_000);
    for (const host of ['edge', 'app'] as const) {
      for (const kind of ['server', 'client']) {
        await until(() => spans(host).filter((s) => s.kind === kind).length === 2 * perTier, `the ${host} agent to see ${2 * perTier} ${kind} spans`, 60_000);
      }
    }
    const all = HOSTS.flatMap((h) => spans(h));
    const byTrace = new Map<string, SpanLine[]>();
    for (const s of all) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
    const item = (s: SpanLine) =>
      String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? s.name)
        .split('/')
        .pop();
    for (const leaf of spans('data').filter((s) => s.kind === 'server')) {
      // Its trace holds exactly one nginx request, the one for the same item, and one of each hop.
      const trace = byTrace.get(leaf.traceId)!;
      const downstream = trace.filter((s) => s.kind === 'server' && s.service === 'nginx');
      // On failure: every span of this item on each host, with the trace it went to and why.
      const sameItem = () =>
        all
          .filter((s) => item(s) === item(leaf))
          .map((s) => `${s.kind} ${s.service} ${s.traceId.slice(0, 8)}/${s.spanId.slice(0, 8)} < ${s.parentSpanId.slice(0, 8)} ${s.attributes['loupe.context']}`)
          .join('\n');
      expect(downstream.map(item), `the trace of ${leaf.name}:\n${sameItem()}`).toEqual([item(leaf)]);
      const hops = trace.filter((s) => s.kind !== 'internal').map((s) => `${s.kind} ${s.service} ${item(s)} ${s.attributes['loupe.context']}`);
      expect(hops.sort(), `the trace of ${leaf.name}`).toHaveLength(5);
    }
    await stopAgents(agents);
  }, 600_000);
  it('gives the call of an event loop that had two requests open and answered one the trace of the one left, on the wire as in its spans', async () => {
    // Node reads /js/hold1 and holds it, reads /js/lone1, answers hold1, then calls out for lone1: one
    // request open again. User space's thread rule parents the call to lone1; the kernel must send lone1's
    // trace too, or the data host's span lands in a trace nobody else is in.
    const agents = await attachAgents(['app', 'data']);
    const base = `http://${net.addr('app')}:${NODE_CHAIN_PORT}/js`;
    const [ip, ...ipArgs] = net.exec('edge');
    const holding = spawn(ip!, [...ipArgs, 'curl', '-sS', `${base}/hold1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(holding);
    let heldReply = '';
    holding.stdout!.on('data', (c: Buffer) => (heldReply += c));
    await until(() => logs.app.includes('holding hold1'), 'Node to hold /js/hold1', 60_000);
    const lone = onHost('edge', ['curl', '-sS', `${base}/lone1`]);
    expect(lone.stdout, lone.stderr).toBe('js node lone1\n');
    await until(() => heldReply === 'held\n', 'the held request to be answered', 60_000);
    const spans = (host: Host) => agents.find((a) => a.host === host)!.spans();
    const target = (s: SpanLine) => String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? '');
    await until(() => spans('data').some((s) => s.kind === 'server' && target(s).endsWith('/item/lone1')), 'the data agent to see /item/lone1', 60_000);
    await until(() => spans('app').filter((s) => s.service === 'node' && s.kind === 'server').length === 2, "the app agent to see both of Node's requests", 60_000);
    await until(() => spans('app').some((s) => s.kind === 'client' && target(s).endsWith('/item/lone1')), "the app agent to see Node's call", 60_000);
    const server = spans('app').find((s) => s.kind === 'server' && target(s).endsWith('/js/lone1'))!;
    const call = spans('app').find((s) => s.kind === 'client' && target(s).endsWith('/item/lone1'))!;
    const leaf = spans('data').find((s) => s.kind === 'server' && target(s).endsWith('/item/lone1'))!;
    expect(call.attributes['loupe.context']).toBe('thread');
    expect(call).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId });
    // What went on the wire: the data host knows the call by the header alone.
    expect(leaf).toMatchObject({ traceId: server.traceId, parentSpanId: call.spanId });
    await stopAgents(agents);
  }, 600_000);
  it("gives a server's calls the trace of its request's traceparent when the head came in two reads, the header in the second, on the wire as in its spans", async () => {
    // nginx's injected line can come in a segment of its own, and a reader woken by the first takes only
    // the request line (one run in about twenty of the test above). Here a client sends the line, then
    // the rest 200 ms later, so Flask's first read ends at the line.
    const agents = await attachAgents(['app', 'data']);
    const [trace, parent] = ['5e'.repeat(16), '7a'.repeat(8)];
    const client = [
      'import socket, sys, time',
      `s = socket.create_connection(("${net.addr('app')}", ${FLASK_PORT}))`,
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)',
      `s.sendall(b"GET /py/split1 HTTP/1.0\\r\\n")`,
      'time.sleep(0.2)',
      `s.sendall(b"traceparent: 00-${trace}-${parent}-01\\r\\nHost: app\\r\\n\\r\\n")`,
      'reply = b""',
      'while chunk := s.recv(4096): reply += chunk',
      'sys.stdout.write(reply.decode().split("\\r\\n\\r\\n", 1)[1])',
    ].join('\n');
    const sent = onHost('edge', [PYTHON, '-c', client]);
    expect(sent.stdout, sent.stderr).toBe('py node split1\n');
    const spans = (host: Host) => agents.find((a) => a.host === host)!.spans();
    const target = (s: SpanLine) => String(s.attributes['url.path'] ?? s.attributes['url.full'] ?? '');
    await until(() => spans('data').some((s) => s.kind === 'server' && target(s).endsWith('/item/split1')), 'the data agent to see /item/split1', 60_000);
    await until(() => spans('app').some((s) => s.kind === 'client' && target(s).endsWith('/item/split1')), "the app agent to see Flask's call", 60_000);
    const server = spans('app').find((s) => s.kind === 'server' && target(s).endsWith('/py/split1'))!;
    const call = spans('app').find((s) => s.kind === 'client' && target(s).endsWith('/item/split1'))!;
    const leaf = spans('data').find((s) => s.kind === 'server' && target(s).endsWith('/item/split1'))!;
    expect(server).toMatchObject({ traceId: trace, parentSpanId: parent });
    expect(call).toMatchObject({ traceId: trace, parentSpanId: server.spanId });
    expect(leaf).toMatchObject({ traceId: trace, parentSpanId: call.spanId });
    await stopAgents(agents);
  }, 600_000);
});
