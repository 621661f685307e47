/**
 * podman for the container tests: run with the project's containers.conf
 * (CONTAINERS_CONF), images built locally from static binaries (no image can
 * be pulled here), everything a test makes removed by `cleanup`, also when it
 * fails.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tempDir } from './helpers';

const ENV = { ...process.env, CONTAINERS_CONF: path.join(ROOT, 'test/containers/containers.conf') };

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

export class Containers {
  private readonly images: string[] = [];
  private readonly containers: string[] = [];
  private api: ChildProcess | undefined;

  /** A FROM scratch image of one static Go program (Go source text, standard library only), tagged localhost/NAME. */
  buildGoImage(name: string, source: string, args: string[]): string {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'main.go'), source);
    fs.writeFileSync(path.join(dir, 'go.mod'), `module ${name}\n\ngo 1.19\n`);
    execFileSync('go', ['build', '-o', 'app', '.'], { cwd: dir, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOCACHE: path.join(dir, 'cache') } });
    fs.writeFileSync(path.join(dir, 'Containerfile'), `FROM scratch\nCOPY app /app\nENTRYPOINT ${JSON.stringify(['/app', ...args])}\n`);
    const tag = `localhost/${name}`;
    this.images.push(tag);
    podman(['build', '-q', '-t', tag, dir]);
    return tag;
  }

  /** Run an image detached; its name, full id and host pid. */
  run(image: string, name: string, publish: string[]): { name: string; id: string; pid: number } {
    this.containers.push(name);
    const id = podman(['run', '-d', '--name', name, ...publish.flatMap((p) => ['-p', p]), image]);
    const pid = Number(podman(['inspect', '-f', '{{.State.Pid}}', name]));
    return { name, id, pid };
  }

  /** podman's Docker-compatible API on a socket of the test's own (what testcontainers and the agent talk to). */
  async startApi(): Promise<string> {
    const socket = path.join(tempDir(), 'podman.sock');
    this.api = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: ENV, stdio: 'ignore' });
    for (let i = 0; i < 300 && spawnSync('curl', ['-sf', '--unix-socket', socket, 'http://d/_ping']).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    return socket;
  }

  cleanup(): void {
    for (const c of this.containers.splice(0)) spawnSync('podman', ['rm', '-f', '-t', '0', c], { env: ENV });
    for (const i of this.images.splice(0)) spawnSync('podman', ['rmi', '-f', i], { env: ENV });
    this.api?.kill();
    this.api = undefined;
  }
}
