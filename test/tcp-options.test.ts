/**
 * Trace context across hosts in TCP header options (bpf/tcpopt.bpf.c), with
 * an agent per host as a user deploys Loupe: three network namespaces
 * ("client", "web", "api"), each watched by a `loupe run` of its own (its own
 * process, hostname and recording, selecting only its host's programs). No
 * agent sees another host's programs, so every join across hosts below is
 * the option's: curl on client calls a Flask service on web, whose handler
 * calls Redis on api over a socket of its own; a Python grpcio client on web
 * calls grpc-go's greeter_server on api. Every program is third-party.
 * Skipped with the reason where the live agent, `ip`, Go, Flask, grpcio or
 * Redis is missing.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HostNetwork } from '../src/scenarios/hosts';
import { liveSupport } from '../src/sources/live/system';
import { ROOT, spanLines, tempDir, until, type SpanLine } from './helpers';
import { onHosts, runAgent } from './live-agent';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const GRPC_EXAMPLES = path.join(ROOT, 'scenarios/services/grpc-examples.sh');
const FLASK_APP = path.join(ROOT, 'test/fixtures/stock-flask.py');
const GREETER_CLIENT = path.join(ROOT, 'test/fixtures/greeter-client.py');
// Debian's interpreter, whose python3-flask and python3-grpcio scripts/system-deps.sh installs (a python3 on PATH may be another).
const PYTHON = '/usr/bin/python3';
const support = liveSupport();
const missing = (cmd: string, args: string[]) => (spawnSync(cmd, args).status === 0 ? '' : `${cmd} ${args.join(' ')} fails`);
const skipReason = !support.ok
  ? support.reason
  : missing('ip', ['-V']) ||
    missing('go', ['version']) ||
    missing('redis-server', ['--version']) ||
    missing(PYTHON, ['-c', 'import flask, grpc']) ||
    (!fs.existsSync('/usr/share/doc/golang-google-grpc-dev/examples') ? 'golang-google-grpc-dev is not installed' : '');
if (skipReason) console.warn(`TCP-option tests skipped: ${skipReason}`);

type Host = 'client' | 'web' | 'api';
const HOSTS: Host[] = ['client', 'web', 'api'];

describe.skipIf(Boolean(skipReason))(`trace context in TCP options, an agent per host${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const net = new HostNetwork(HOSTS, `o${process.pid % 10000}`);
  const children: ChildProcess[] = [];
  const dir = tempDir();
  const pids: Record<Host, number[]> = { client: [], web: [], api: [] };
  /**
   * This test's spans: an agent that selects by executable (curl, python3) also sees the curls and
   * Pythons other tests run on this machine meanwhile. Ours name an address of these hosts (a Go
   * server's internal phase spans name none, and are not looked at).
   */
  const subnet = net.subnet.replace(/0\/24$/, '');
  const ours = (s: SpanLine) => Object.values(s.attributes).some((v) => typeof v === 'string' && (v.startsWith(subnet) || v.includes(`//${subnet}`)));
  /** What the hosts' programs said on stderr, for a failure to show. */
  const logs: Record<Host, string> = { client: '', web: '', api: '' };
  const { run: onHost, daemon } = onHosts(net, children, logs);
  const FLASK_PORT = 8080;
  const REDIS_PORT = 6379;
  const GREETER_PORT = 50051; // the example's, fixed: each host is a namespace of its own

  /** An agent for a host, attached; its spans are this test's (see ours). `hostname`: in a UTS namespace of that name. */
  async function agentFor(host: Host, args: string[], hostname?: string) {
    // The option alone: where the kernel lets header injection on by default, curl's calls would carry a traceparent too.
    const run = runAgent([...args, '--no-inject'], hostname);
    children.push(run.child);
    agentsOfTest.push(run);
    await until(() => /loupe: attached/.test(run.stderr()), `the ${host} agent to attach`, 60_000);
    return { ...run, host, spans: () => run.spans().filter(ours) };
  }

  /** A capture's records as JSON lines cut to 240 characters, for a failure message: what the kernel said when a join did not hold. */
  function recordsCut(capture: string): string {
    const records = `${capture}.jsonl`;
    spawnSync('node', [CLI, 'convert', capture, records]);
    return fs.existsSync(records)
      ? fs
          .readFileSync(records, 'utf8')
          .split('\n')
          .map((l) => l.slice(0, 240))
          .join('\n')
      : `(no records: ${capture} could not be converted)`;
  }

  /** SIGINT, and wait until each has exited: one still stopping would tag the next test's calls (its programs stay attached until then). */
  async function stopAgents(agents: Array<{ child: ChildProcess }>) {
    for (const a of agents) a.child.kill('SIGINT');
    await Promise.all(agents.map((a) => new Promise((r) => (a.child.exitCode !== null || a.child.signalCode !== null ? r(null) : a.child.once('exit', r)))));
  }

  beforeAll(async () => {
    expect(spawnSync(GRPC_EXAMPLES, ['--build', 'helloworld/greeter_server'], { encoding: 'utf8' }).status).toBe(0);
    net.up();
    const api = net.addr('api');
    pids.api.push(
      await daemon('api', ['redis-server', '--bind', api, '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
        stream: 'stdout',
        shows: /Ready to accept/,
      }),
    );
    pids.api.push(await daemon('api', [GRPC_EXAMPLES, 'helloworld/greeter_server'], { port: GREETER_PORT }));
    pids.web.push(await daemon('web', [PYTHON, FLASK_APP, net.addr('web'), String(FLASK_PORT), api, String(REDIS_PORT)], { stream: 'stderr', shows: /Running on/ }));
  }, 300_000);

  /** The agents a test started: stopped after it, also when it failed before it stopped them (CI: one failure then failed the next two). */
  const agentsOfTest: Array<{ child: ChildProcess }> = [];
  afterEach(() => stopAgents(agentsOfTest.splice(0)));

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    net.down();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('joins curl -> Flask -> Redis and grpcio -> grpc-go across three agents live by the option alone, every byte as sent, and the recordings replayed as one give the same traces', async () => {
    const agents = new Map<Host, Awaited<ReturnType<typeof agentFor>> & { capture: string }>();
    for (const host of HOSTS) {
      const capture = path.join(dir, `${host}.loupe`);
      const select =
        host === 'client' ? ['--exe', '/curl$'] : host === 'web' ? ['--pid', String(pids.web[0]), '--exe', '/python3[.0-9]*$'] : pids.api.flatMap((p) => ['--pid', String(p)]);
      const agent = { ...(await agentFor(host, [...select, '--record', capture], host)), capture };
      agents.set(host, agent);
      expect(agent.stderr()).toMatch(/TCP header options: on/);
      if (host === 'api') await until(() => /Go probes in place on \S+greeter/.test(agent.stderr()), 'the api agent to probe greeter_server', 120_000);
    }

    const requests = 3;
    for (let i = 1; i <= requests; i++) {
      const curl = onHost('client', ['curl', '-sS', `http://${net.addr('web')}:${FLASK_PORT}/stock/apple`]);
      // Redis counted each call once and Flask sent its answer whole: the bytes went as written.
      expect(curl.stdout, `${curl.stderr}\n${logs.web}`).toBe(`apple ${i}\n`);
    }
    const calls = 3;
    const grpc = onHost('web', [PYTHON, GREETER_CLIENT, `${net.addr('api')}:${GREETER_PORT}`, 'loupe', String(calls)]);
    expect(grpc.stdout, grpc.stderr).toBe('Hello loupe\n'.repeat(calls));

    const of = (host: Host, pred: (s: SpanLine) => boolean) => agents.get(host)!.spans().filter(pred);
    const isRedis = (s: SpanLine) => s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis';
    const isGrpc = (s: SpanLine) => s.attributes['rpc.system'] === 'grpc';
    const seen = () => [
      of('client', (s) => s.kind === 'client').length,
      of('web', (s) => s.kind === 'server' && !isGrpc(s)).length,
      of('api', (s) => s.kind === 'server' && isRedis(s)).length,
      of('web', (s) => s.kind === 'client' && isGrpc(s)).length,
      of('api', (s) => s.kind === 'server' && isGrpc(s)).length,
    ];
    await until(
      () => seen().join() === [requests, requests, requests, calls, calls].join(),
      () =>
        `every agent to see every request (curl, Flask, Redis, grpcio, greeter spans seen: ${seen().join(', ')}); agents said:\n${[...agents.values()].map((a) => `${a.host}: ${a.stderr()}`).join('\n')}`,
    );
    await stopAgents([...agents.values()]);
    for (const [host, a] of agents) expect(a.child.exitCode, `${host}: ${a.stderr()}`).toBe(0);

    // Live, each agent alone: the server span of every hop is the child of the client span another agent made.
    const curls = of('client', (s) => s.kind === 'client');
    const flask = of('web', (s) => s.kind === 'server' && !isGrpc(s));
    const flaskCalls = of('web', (s) => s.kind === 'client' && isRedis(s));
    const redis = of('api', (s) => s.kind === 'server' && isRedis(s));
    expect(flaskCalls).toHaveLength(requests);
    const byId = (list: SpanLine[]) => new Map(list.map((s) => [s.spanId, s]));
    const curlById = byId(curls);
    const flaskById = byId(flask);
    const callById = byId(flaskCalls);
    for (const s of flask) {
      expect(s.attributes['loupe.context']).toBe('tcp-option');
      expect(curlById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
    }
    for (const c of flaskCalls) {
      expect(c.attributes['loupe.context']).toBe('thread');
      expect(flaskById.get(c.parentSpanId)?.traceId).toBe(c.traceId);
    }
    for (const s of redis) {
      expect(s.attributes['loupe.context']).toBe('tcp-option');
      expect(callById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
    }
    // Three traces, each curl -> Flask -> Flask's call -> Redis, over three agents' outputs.
    expect(new Set(redis.map((s) => s.traceId))).toEqual(new Set(curls.map((s) => s.traceId)));
    expect(new Set(curls.map((s) => s.traceId)).size).toBe(requests);

    const grpcClients = of('web', (s) => s.kind === 'client' && isGrpc(s));
    const grpcServers = of('api', (s) => s.kind === 'server' && isGrpc(s));
    const grpcById = byId(grpcClients);
    // The api agent's records, cut short, should one call ever come without its option again (once in a fresh clone's run).
    const untagged = grpcServers.filter((s) => s.attributes['loupe.context'] !== 'tcp-option');
    if (untagged.length > 0)
      expect(
        untagged.map((s) => [s.name, s.attributes['loupe.context'], s.startTimeUnixNano]),
        recordsCut(agents.get('api')!.capture),
      ).toEqual([]);
    for (const s of grpcServers) {
      expect(s.attributes['loupe.context']).toBe('tcp-option');
      expect(s.attributes['rpc.method']).toBe('SayHello');
      expect(grpcById.get(s.parentSpanId)?.traceId).toBe(s.traceId);
    }

    // The three recordings replayed as one: the same traces as the three live outputs together — each span in
    // the same trace under the same parent — and the client spans, whose ids went on the wire, with the same ids
    // (a server span's id is the replay's to choose: one generator for all hosts, where live each agent had its own).
    const files = [...agents.values()].map((a) => a.capture);
    // LOUPE_KEEP_CAPTURES=DIR keeps the three recordings (captures/tcp-options-*.loupe, which CI replays, came from here).
    if (process.env.LOUPE_KEEP_CAPTURES) for (const [host, a] of agents) fs.copyFileSync(a.capture, path.join(process.env.LOUPE_KEEP_CAPTURES, `tcp-options-${host}.loupe`));
    const merged = spawnSync('node', [CLI, 'replay', ...files, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(merged.status, merged.stderr).toBe(0);
    const shape = (spans: SpanLine[]) => {
      const ids = byId(spans);
      return spans
        .map((s) => {
          const parent = ids.get(s.parentSpanId);
          return `${s.traceId} ${s.kind} ${s.name} ${s.kind === 'client' ? s.spanId : ''} <- ${parent ? `${parent.kind} ${parent.name}` : 'root'}`;
        })
        .sort();
    };
    const live = [...agents.values()].flatMap((a) => a.spans()).filter((s) => s.kind !== 'internal');
    expect(shape(spanLines(merged.stdout).filter((s) => s.kind !== 'internal' && ours(s)))).toEqual(shape(live));
  }, 600_000);

  it('puts no option on the calls of a service whose rule says propagate: false, and still on the calls of others', async () => {
    const config = path.join(dir, 'no-propagation.yaml');
    fs.writeFileSync(config, 'services:\n  - { exe: "/python3[.0-9]*$", name: stock, propagate: false }\n');
    // Recorded, so that a join that does not hold shows what each kernel side said (stopped first: the recordings then end whole).
    const captures = { client: path.join(dir, 'norule-client.loupe'), web: path.join(dir, 'norule-web.loupe') };
    const running = [
      await agentFor('client', ['--exe', '/curl$', '--record', captures.client]),
      await agentFor('web', ['--pid', String(pids.web[0]), '--config', config, '--record', captures.web]),
      await agentFor('api', ['--pid', String(pids.api[0])]),
    ];
    const [client, web, api] = running;
    const before = api!.spans().length;
    for (let i = 1; i <= 2; i++) {
      const curl = onHost('client', ['curl', '-sS', `http://${net.addr('web')}:${FLASK_PORT}/stock/plum`]);
      expect(curl.stdout, curl.stderr).toBe(`plum ${i}\n`);
    }
    await until(() => api!.spans().length === before + 2 && web!.spans().filter((s) => s.kind === 'server').length === 2, 'both agents to see both requests');
    // curl's agent has no such rule: Flask's server spans are joined by its option; Flask's calls carry none.
    const servers = web!.spans().filter((x) => x.kind === 'server');
    if (servers.some((s) => s.attributes['loupe.context'] !== 'tcp-option')) {
      await stopAgents(running);
      expect(
        servers.map((s) => [s.name, s.attributes['loupe.context'], s.startTimeUnixNano]),
        `curl's agent said:\n${client!.stderr()}\ncurl's agent recorded:\n${recordsCut(captures.client)}\nFlask's agent recorded:\n${recordsCut(captures.web)}`,
      ).toEqual(servers.map((s) => [s.name, 'tcp-option', s.startTimeUnixNano]));
    }
    for (const s of api!.spans()) expect(s.attributes['loupe.context']).toBe('new');
  }, 300_000);

  it('puts no option on any call with --no-tcp-options, and says so at start', async () => {
    const running = [await agentFor('client', ['--exe', '/curl$', '--no-tcp-options']), await agentFor('web', ['--pid', String(pids.web[0])])];
    const [client, web] = running;
    expect(client!.stderr()).toMatch(/TCP header options: off \(turned off by configuration\)/);
    const curl = onHost('client', ['curl', '-sS', `http://${net.addr('web')}:${FLASK_PORT}/stock/fig`]);
    expect(curl.stdout, curl.stderr).toBe('fig 1\n');
    await until(() => web!.spans().some((s) => s.kind === 'server'), 'the web agent to see the request');
    expect(web!.spans().find((s) => s.kind === 'server')!.attributes['loupe.context']).toBe('new');
  }, 300_000);

  it('puts no option on the call of a program --exe has not decided on yet, unless it runs a file --exe matches', async () => {
    const client = await agentFor('client', ['--exe', '/curl$']);
    const web = await agentFor('web', ['--pid', String(pids.web[0])]);
    // curl's own bytes under another name: --exe does not match it, so until the agent says no, it is only pending.
    const renamed = path.join(dir, 'kurl');
    fs.copyFileSync(spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim(), renamed);
    fs.chmodSync(renamed, 0o755);
    const served = () => web.spans().filter((s) => s.kind === 'server');
    const contextOf = (item: string) => served().find((s) => String(s.attributes['url.path']).endsWith(`/${item}`))?.attributes['loupe.context'];
    // Stopped, the agent decides on nothing: both programs make their call while pending.
    client.child.kill('SIGSTOP');
    try {
      for (const [program, item] of [
        [renamed, 'kiwi'],
        ['curl', 'lime'],
      ] as const) {
        const call = onHost('client', [program, '-sS', `http://${net.addr('web')}:${FLASK_PORT}/stock/${item}`]);
        expect(call.stdout, call.stderr).toBe(`${item} 1\n`);
      }
    } finally {
      client.child.kill('SIGCONT');
    }
    await until(() => served().length === 2, 'the web agent to see both requests');
    expect(contextOf('kiwi'), 'the renamed program, not chosen').toBe('new');
    expect(contextOf('lime'), 'curl, a file --exe matches').toBe('tcp-option');
    // The agent, let go, chose curl and dropped the other.
    await until(() => client.spans().some((s) => s.kind === 'client'), "the client agent to report curl's call");
    expect(
      client.spans().map(
        (s) =>
          `${s.kind} ${String(s.attributes['url.full'] ?? s.attributes['url.path'])
            .split('/')
            .pop()}`,
      ),
    ).toEqual(['client lime']);
  }, 300_000);

  it("leaves the calls of a program whose agent was killed with SIGKILL flowing, whole, and with no option: the server's agent sees none after", async () => {
    const web = await agentFor('web', ['--pid', String(pids.web[0])]);
    const api = await agentFor('api', ['--pid', String(pids.api[0])]);
    const redisSpans = () => api.spans().filter((s) => s.kind === 'server');
    const order = async (item: string, expected: number) => {
      const before = redisSpans().length;
      const curl = onHost('client', ['curl', '-sS', `http://${net.addr('web')}:${FLASK_PORT}/stock/${item}`]);
      expect(curl.stdout, curl.stderr).toBe(`${item} ${expected}\n`);
      await until(() => redisSpans().length === before + 1, 'the api agent to see the Redis call');
      return redisSpans().at(-1)!;
    };
    expect((await order('pear', 1)).attributes['loupe.context']).toBe('tcp-option');
    const held = new Set<string>();
    for (const fd of fs.readdirSync(`/proc/${web.child.pid}/fdinfo`)) {
      const id = /^prog_id:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${web.child.pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (id) held.add(id);
    }
    web.child.kill('SIGKILL');
    // Its programs go as the kernel frees the dead process's fds (each link's release waits out an RCU grace period).
    const loaded = () => new Set((JSON.parse(spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }).stdout) as Array<{ id: number }>).map((p) => String(p.id)));
    await until(() => [...held].every((id) => !loaded().has(id)), "the killed agent's programs to be gone");
    // Flask's handler opens a new connection per call; on each, Redis counted once and answered whole, with no option come.
    for (const n of [2, 3]) expect((await order('pear', n)).attributes['loupe.context']).toBe('new');
  }, 300_000);
});
