/**
 * Scenario services that run in containers (`container: true`): each is built
 * from local sources into a `FROM scratch` image holding one static program
 * (nothing is pulled), run on a network of the scenario's own with its port
 * published on 127.0.0.1 under the same number, and removed at the end with
 * its image and the network. podman, or docker where podman is missing; the
 * runtime's own configuration applies (the tests point podman at theirs with
 * CONTAINERS_CONF).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScenarioError } from './scenario';

/** The container CLI on PATH, podman first; undefined when there is none. */
export function containerCli(): string | undefined {
  return ['podman', 'docker'].find((cli) => !spawnSync(cli, ['--version'], { stdio: 'ignore' }).error);
}

export class ScenarioContainers {
  readonly cli: string;
  readonly network: string;
  private readonly tag: string;
  private readonly images: string[] = [];
  private readonly names: string[] = [];
  private networkMade = false;

  constructor(private readonly scenario: string) {
    const cli = containerCli();
    if (!cli) throw new ScenarioError('a service runs in a container, but neither podman nor docker is on PATH');
    this.cli = cli;
    this.tag = `${process.pid}`;
    this.network = `loupe-${scenario}-${this.tag}`;
  }

  private run(args: string[]): string {
    try {
      return execFileSync(this.cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (e) {
      const stderr = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
      throw new ScenarioError(`${this.cli} ${args.join(' ')}: ${stderr.split('\n').pop()}`);
    }
  }

  /**
   * The image of one service: `build` (its `{out}` already replaced) writes a
   * static program to `out`, which becomes the image's one file and entry point.
   */
  build(service: string, buildArgv: (out: string) => string[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-image-'));
    try {
      const argv = buildArgv(path.join(dir, 'app'));
      const built = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      if (built.status !== 0) throw new ScenarioError(`service ${service}: the build ${argv.join(' ')} failed: ${(built.stderr || String(built.error ?? '')).trim().slice(-500)}`);
      fs.writeFileSync(path.join(dir, 'Containerfile'), 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n');
      const image = `localhost/loupe-scenario-${this.scenario}-${service}:${this.tag}`;
      this.images.push(image);
      this.run(['build', '-q', '-f', path.join(dir, 'Containerfile'), '-t', image, dir]);
      return image;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The command that runs a service's container in the foreground (its output is the service's), port published on loopback. */
  runArgv(service: string, image: string, port: number, args: string[]): string[] {
    if (!this.networkMade) {
      this.run(['network', 'create', this.network]);
      this.networkMade = true;
    }
    const name = this.nameOf(service);
    this.names.push(name);
    return [this.cli, 'run', '--rm', '--name', name, '--network', this.network, '-p', `127.0.0.1:${port}:${port}`, '-e', `OTEL_SERVICE_NAME=${service}`, image, ...args];
  }

  private nameOf(service: string): string {
    return `loupe-${this.scenario}-${service}-${this.tag}`;
  }

  /** The host pid of a running service's program. */
  pid(service: string): number {
    return Number(this.run(['inspect', '-f', '{{.State.Pid}}', this.nameOf(service)]));
  }

  /** A running service's address on the scenario's network: what `{addr:SERVICE}` becomes. */
  addr(service: string): string {
    const addr = this.run(['inspect', '-f', `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, this.nameOf(service)]);
    if (!addr) throw new ScenarioError(`service ${service} has no address on network ${this.network}`);
    return addr;
  }

  /** Containers, images and the network, all gone; what cannot be removed is left and said. */
  down(): string[] {
    const left: string[] = [];
    const remove = (args: string[], what: string) => {
      if (spawnSync(this.cli, args, { stdio: 'ignore' }).status !== 0) left.push(what);
    };
    for (const name of this.names.splice(0)) spawnSync(this.cli, ['rm', '-f', '-t', '0', name], { stdio: 'ignore' });
    for (const image of this.images.splice(0)) remove(['rmi', '-f', image], `image ${image}`);
    if (this.networkMade) remove(['network', 'rm', '-f', this.network], `network ${this.network}`);
    this.networkMade = false;
    return left;
  }
}
