/**
 * Containers for the tests: testcontainers (the npm package) on podman's
 * Docker-compatible API, served on a socket of the test's own by `podman
 * system service` with the project's containers.conf (CONTAINERS_CONF).
 * Images are built locally from static programs (`FROM scratch`: no image can
 * be pulled here, so no Ryuk either); everything a test makes — containers,
 * networks, images, the API service — goes in `cleanup`, also when it fails.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GenericContainer, Network, Wait, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { ROOT, tempDir } from './helpers';

const CONTAINERS_CONF = path.join(ROOT, 'test/containers/containers.conf');
const ENV = { ...process.env, CONTAINERS_CONF };

/** Why podman cannot run containers here, or '' when it can. */
export function podmanUnavailable(): string {
  if (spawnSync('podman', ['--version']).error) return 'podman is not installed (make test installs it as root: scripts/system-deps.sh)';
  if (process.getuid?.() !== 0) return 'the container tests run podman as root';
  const info = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], { env: ENV, encoding: 'utf8' });
  return info.status === 0 ? '' : `podman info failed: ${(info.stderr || '').trim().split('\n').pop()}`;
}

export function podman(args: string[]): string {
  return execFileSync('podman', args, { env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A static Go program from one source file (standard library only). */
export function goBinary(file: string): string {
  const out = path.join(tempDir(), 'app');
  execFileSync('go', ['build', '-o', out, file], { cwd: path.dirname(file), env: { ...process.env, CGO_ENABLED: '0', GO111MODULE: 'off' } });
  return out;
}

/** A static Rust program from one source file (std only). */
export function rustBinary(file: string): string {
  const out = path.join(tempDir(), 'app');
  execFileSync('rustc', ['-O', '-C', 'target-feature=+crt-static', '-o', out, file]);
  return out;
}

export interface RunningContainer {
  container: StartedTestContainer;
  name: string;
  id: string;
  /** The program's pid in the host's /proc. */
  pid: number;
  /** The host port its first exposed port is published on. */
  port: number;
}

export class Containers {
  private readonly images: string[] = [];
  private readonly started: StartedTestContainer[] = [];
  private readonly networks: StartedNetwork[] = [];
  private api: ChildProcess | undefined;
  private readonly savedEnv = new Map<string, string | undefined>();

  /**
   * podman's Docker-compatible API on a socket of the test's own, and the
   * environment testcontainers and the agent read: DOCKER_HOST names the
   * socket, as for the docker CLI; no Ryuk (its image cannot be pulled); and
   * localhost for mapped ports (this machine has a /.dockerenv, which would
   * send test traffic to the bridge gateway instead).
   */
  async startApi(): Promise<string> {
    const socket = path.join(tempDir(), 'podman.sock');
    this.api = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: ENV, stdio: 'ignore' });
    for (let i = 0; i < 300 && spawnSync('curl', ['-sf', '--unix-socket', socket, 'http://d/_ping']).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    this.setEnv({ DOCKER_HOST: `unix://${socket}`, TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: 'localhost', CONTAINERS_CONF });
    return socket;
  }

  private setEnv(values: Record<string, string>): void {
    for (const [name, value] of Object.entries(values)) {
      if (!this.savedEnv.has(name)) this.savedEnv.set(name, process.env[name]);
      process.env[name] = value;
    }
  }

  /** A FROM scratch image of one static program, tagged localhost/NAME, built through the API. */
  async buildImage(name: string, program: string, args: string[] = []): Promise<string> {
    const dir = tempDir();
    fs.copyFileSync(program, path.join(dir, 'app'));
    fs.chmodSync(path.join(dir, 'app'), 0o755);
    fs.writeFileSync(path.join(dir, 'Containerfile'), `FROM scratch\nCOPY app /app\nENTRYPOINT ${JSON.stringify(['/app', ...args])}\n`);
    const tag = `localhost/${name}`;
    this.images.push(tag);
    await GenericContainer.fromDockerfile(dir, 'Containerfile').build(tag, { deleteOnExit: false });
    return tag;
  }

  /** A FROM scratch image of one static Go program (its source text, standard library only). */
  async buildGoImage(name: string, source: string, args: string[] = []): Promise<string> {
    const file = path.join(tempDir(), 'main.go');
    fs.writeFileSync(file, source);
    return this.buildImage(name, goBinary(file), args);
  }

  async network(): Promise<StartedNetwork> {
    const network = await new Network().start();
    this.networks.push(network);
    return network;
  }

  /**
   * Start an image with `port` exposed (published on a host port of podman's
   * choosing), waiting until its output says `ready` or, without it, until it
   * answers HTTP on `port`.
   */
  async start(
    image: string,
    options: { port: number; name?: string; command?: string[]; network?: StartedNetwork; env?: Record<string, string>; ready?: string },
  ): Promise<RunningContainer> {
    let c = new GenericContainer(image).withExposedPorts(options.port);
    if (options.name) c = c.withName(options.name);
    if (options.command) c = c.withCommand(options.command);
    if (options.network) c = c.withNetwork(options.network);
    if (options.env) c = c.withEnvironment(options.env);
    // The default wait runs /bin/sh in the container, which a scratch image does not have.
    c = c.withWaitStrategy(options.ready ? Wait.forLogMessage(options.ready) : Wait.forHttp('/', options.port).forStatusCodeMatching(() => true));
    const container = await c.start();
    this.started.push(container);
    const id = container.getId();
    return {
      container,
      name: container.getName().replace(/^\//, ''),
      id,
      pid: Number(podman(['inspect', '-f', '{{.State.Pid}}', id])),
      port: container.getMappedPort(options.port),
    };
  }

  async cleanup(): Promise<void> {
    for (const c of this.started.splice(0).reverse()) await c.stop({ timeout: 0 }).catch(() => spawnSync('podman', ['rm', '-f', '-t', '0', c.getId()], { env: ENV }));
    for (const n of this.networks.splice(0)) await n.stop().catch(() => spawnSync('podman', ['network', 'rm', '-f', n.getName()], { env: ENV }));
    for (const i of this.images.splice(0)) spawnSync('podman', ['rmi', '-f', i], { env: ENV });
    this.api?.kill();
    this.api = undefined;
    for (const [name, value] of this.savedEnv) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    this.savedEnv.clear();
  }
}
