/** The live side of container identity (discovery/containers.ts): asking the container runtime. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fromInspect, type ContainerInfo } from '../../discovery/containers';

/** Docker-API sockets to ask, in order (podman serves the same API): DOCKER_HOST's first. */
function runtimeSockets(): string[] {
  const fromEnv = /^unix:\/\/(.+)$/.exec(process.env.DOCKER_HOST ?? '')?.[1];
  return [...(fromEnv ? [fromEnv] : []), '/run/podman/podman.sock', '/var/run/docker.sock'];
}

/** Answers by container id, the misses too: asked once per container, not per process. */
const inspected = new Map<string, ContainerInfo>();

/**
 * The container named by its runtime: GET /containers/ID/json on the first
 * Docker-API socket that answers (curl, synchronously, 1 s at most: once per
 * container, while its first process is described), else `podman inspect` or
 * `docker inspect` for a container of theirs. As found in the cgroup when
 * neither answers.
 */
export function containerRuntimeInfo(container: ContainerInfo): ContainerInfo {
  const known = inspected.get(container.id);
  if (known) return known;
  let found = container;
  for (const socket of runtimeSockets()) {
    if (!fs.existsSync(socket)) continue;
    const r = spawnSync('curl', ['-sf', '--max-time', '1', '--unix-socket', socket, `http://runtime/containers/${container.id}/json`], { encoding: 'utf8', timeout: 2000 });
    if (r.status !== 0 || !r.stdout) continue;
    try {
      found = fromInspect(container, JSON.parse(r.stdout));
      break;
    } catch {
      /* not the API's JSON: the next socket */
    }
  }
  // No API socket answered (podman's service is not always running): the runtime's own CLI reads its local state.
  const cli = container.runtime === 'podman' ? 'podman' : container.runtime === 'docker' ? 'docker' : undefined;
  if (found === container && cli) {
    const r = spawnSync(cli, ['inspect', container.id], { encoding: 'utf8', timeout: 5000 });
    try {
      const [first] = r.status === 0 ? (JSON.parse(r.stdout) as unknown[]) : [];
      if (first) found = fromInspect(container, first);
    } catch {
      /* not inspect's JSON: as the cgroup says */
    }
  }
  inspected.set(container.id, found);
  return found;
}
