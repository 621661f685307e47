/**
 * `loupe scenario run`: the live agent watches the scenario's services (by
 * their ports) while they start and the load runs; the recording is then
 * replayed and checked. A live run and its replay give the same spans, so
 * checking the replay checks the run, and the recording can be committed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { LiveSession } from '../pipeline/live';
import { spansOfCapture } from '../pipeline/replay';
import { systemLibssl } from '../sources/live/system';
import { DEFAULT_MAX_PAYLOAD } from '../discovery/config';
import type { Span } from '../correlator/span';
import { checkScenario, missingRequirements, ScenarioError, type CheckResult, type Scenario } from './scenario';
import { HostNetwork } from './hosts';
import { ScenarioContainers } from './containers';

const ROOT = path.resolve(__dirname, '../..');

/** Ports this process has handed out: the kernel may give a port it just had back to the next ask. */
const handedOut = new Set<number>();

/** A free port on loopback, never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await anyFreePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** A TCP port free on loopback right now. */
function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function substitute(args: string[], ports: Map<string, number>, hosts?: HostNetwork, containers?: ScenarioContainers, started = new Set<string>()): string[] {
  return args.map((a) =>
    a
      .replace(/\{root\}/g, ROOT)
      .replace(/\{port:([^}]+)\}/g, (_, name: string) => {
        const p = ports.get(name);
        if (p === undefined) throw new ScenarioError(`{port:${name}} names no service of the scenario`);
        return String(p);
      })
      .replace(/\{addr:([^}]+)\}/g, (_, host: string) => {
        if (containers && started.has(host)) return containers.addr(host);
        if (!hosts) throw new ScenarioError(`{addr:${host}}: the scenario has no hosts, and no container service of that name started before`);
        return hosts.addr(host);
      }),
  );
}

function waitReady(child: ChildProcess, text: string, name: string, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new ScenarioError(`service ${name} did not print ${JSON.stringify(text)} within ${ms / 1000} s; it printed: ${seen.slice(0, 300)}`)), ms);
    child.stdout!.on('data', (c: Buffer) => {
      seen += c;
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new ScenarioError(`service ${name} exited with ${code} before it was ready: ${seen.slice(0, 300)}`));
    });
  });
}

/** SIGTERM to a service's whole process group. */
function stopGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}

function runToEnd(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
    child.on('error', () => resolve(-1));
    child.on('close', resolve);
  });
}

export async function runScenario(scenario: Scenario, options: { record?: string; log: (line: string) => void }): Promise<{ spans: Span[]; result: CheckResult; capture: string }> {
  const missing = missingRequirements(scenario);
  if (missing.length) throw new ScenarioError(`needs ${missing.join(', ')}, not found (programs on PATH, paths under the project)`);
  const ports = new Map<string, number>();
  for (const s of scenario.services) ports.set(s.name, await freePort());
  const capture = options.record ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-scenario-')), `${scenario.name}.loupe`);
  const hosts = scenario.hosts.length ? new HostNetwork(scenario.hosts) : undefined;
  const onHost = (host: string | undefined, argv: string[]) => (host && hosts ? [...hosts.exec(host), ...argv] : argv);
  const containers = scenario.services.some((s) => s.container) ? new ScenarioContainers(scenario.name) : undefined;
  const startedContainers = new Set<string>();
  // Images first, with no agent running yet: a build takes up to minutes, and the agent's event loop waits on none.
  const images = new Map<string, string>();
  try {
    for (const s of scenario.services)
      if (s.container && containers)
        images.set(
          s.name,
          containers.build(s.name, (out) => substitute(s.build!, ports).map((a) => a.replace(/\{out\}/g, out))),
        );
  } catch (e) {
    containers?.down();
    throw e;
  }
  const session = new LiveSession({
    ports: [...ports.values()],
    maxPayload: DEFAULT_MAX_PAYLOAD,
    ringBytes: 16 << 20,
    tlsLibraries: systemLibssl(),
    redact: true,
    format: 'jsonl',
    write: () => {},
    capturePath: capture,
    goProbes: true,
    goInject: scenario.go_inject,
    onGo: (r) =>
      options.log(
        `loupe: scenario ${scenario.name}: ${'error' in r ? `Go program ${r.exe} (pid ${r.pid}) not instrumented: ${r.error}` : `Go probes in place on ${path.basename(r.exe)} (pid ${r.pid}, ${r.goVersion}, offsets from ${r.offsetsFrom}${r.injects ? `, header map: ${r.headerMap}` : ''})`}`,
      ),
  });
  let started: ReturnType<LiveSession['start']>;
  try {
    started = session.start();
  } catch (e) {
    containers?.down();
    throw e;
  }
  if (scenario.go_inject)
    options.log(`loupe: scenario ${scenario.name}: traceparent injection ${started.propagation.inject ? 'on (sk_msg)' : `off: ${started.propagation.reason}`}`);
  try {
    hosts?.up();
  } catch (e) {
    await session.stop();
    containers?.down();
    throw new ScenarioError((e as Error).message);
  }
  if (hosts)
    options.log(`loupe: scenario ${scenario.name}: hosts ${scenario.hosts.map((h) => `${h}=${hosts.addr(h)}`).join(', ')} on ${hosts.subnet} (blackholed in the root namespace)`);
  options.log(`loupe: scenario ${scenario.name}: watching ports ${[...ports.entries()].map(([n, p]) => `${n}=${p}`).join(', ')}`);
  const children: ChildProcess[] = [];
  try {
    for (const s of scenario.services) {
      const runArgs = substitute(s.run, ports, hosts, containers, startedContainers);
      const argv = s.container && containers ? containers.runArgv(s.name, images.get(s.name)!, ports.get(s.name)!, runArgs) : onHost(s.host, runArgs);
      const [cmd, ...args] = argv;
      // Its own process group: a service may be a script whose children (a database) must stop with it.
      const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: s.name }, detached: true });
      children.push(child);
      await waitReady(child, s.ready, s.name, s.ready_seconds * 1000);
      // Read on and dropped, not closed: a service writes on after its ready line (Python's print wrote "ready" and its
      // newline apart, and the closed pipe killed the order service with EPIPE). Unreferenced: it keeps this process alive no longer.
      child.stdout!.removeAllListeners('data').resume();
      (child.stdout as net.Socket).unref();
      if (s.container && containers) {
        startedContainers.add(s.name);
        session.considerGo(containers.pid(s.name)); // the program is the container's first process
      } else if (child.pid !== undefined) session.considerGo(child.pid); // services exec their program: the pid stays
      await session.goSettled(); // a Go service gets its probes before any load reaches it
    }
    for (const l of scenario.load) {
      const argv = onHost(l.host, substitute(l.run, ports, hosts));
      for (let i = 0; i < l.times; i++) {
        const code = await runToEnd(argv);
        if (code !== 0) throw new ScenarioError(`load ${argv.join(' ')} exited with ${code}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200)); // the last records reach the ring buffer
  } finally {
    await session.stop();
    for (const c of children.reverse()) stopGroup(c);
    await new Promise((r) => setTimeout(r, 100)); // let them go before their namespaces do
    hosts?.down();
    for (const what of containers?.down() ?? []) options.log(`loupe: scenario ${scenario.name}: could not remove ${what}`);
  }
  const { spans } = spansOfCapture(capture);
  return { spans, result: checkScenario(scenario, spans), capture };
}
