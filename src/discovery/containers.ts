/**
 * Which container a process runs in, from the cgroup the kernel put it in
 * (/proc/PID/cgroup), the way Beyla, Pixie and the OpenTelemetry collector's
 * resource detectors find it: every container runtime names the container's
 * cgroup after its 64-hex id, each in its own words. Its name, image and
 * Kubernetes pod come from the runtime (sources/live/container-runtime.ts),
 * when one answers; what was found is kept in the capture's process records, so a
 * replay names spans as the live run did.
 */
import type { ContainerInfo } from '../events/capture';

export type { ContainerInfo };

const ID = '([0-9a-f]{64})';
/** Cgroup path segments, most specific first; conmon's own scopes (libpod-conmon-, crio-conmon-) name no container process. */
const PATTERNS: Array<[RegExp, ContainerInfo['runtime']]> = [
  [new RegExp(`(?:^|/)libpod-${ID}\\.scope(?:/|$)`), 'podman'],
  [new RegExp(`(?:^|/)libpod-${ID}(?:/|$)`), 'podman'],
  [new RegExp(`(?:^|/)docker-${ID}\\.scope(?:/|$)`), 'docker'],
  [new RegExp(`(?:^|/)docker/${ID}(?:/|$)`), 'docker'],
  [new RegExp(`(?:^|/)cri-containerd-${ID}\\.scope(?:/|$)`), 'containerd'],
  [new RegExp(`(?:^|/)crio-${ID}\\.scope(?:/|$)`), 'cri-o'],
  // kubelet's cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>
  [new RegExp(`(?:^|/)kubepods[^/]*/(?:[^/]+/)*pod[0-9a-f_-]+(?:\\.slice)?/${ID}(?:/|$)`), 'kubernetes'],
];

/** The container of a process whose /proc/PID/cgroup reads `text`, or undefined for a process in none. */
export function containerOfCgroup(text: string): ContainerInfo | undefined {
  for (const line of text.split('\n')) {
    // hierarchy-ID:controller-list:cgroup-path (the path may hold colons)
    const path = line.split(':').slice(2).join(':');
    if (!path) continue;
    for (const [pattern, runtime] of PATTERNS) {
      const m = pattern.exec(path);
      if (!m) continue;
      const info: ContainerInfo = { id: m[1]!, runtime };
      // systemd's driver writes the pod uid with underscores: kubepods-besteffort-pod1a2b_3c4d.slice
      const pod = /(?:^|[/-])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/.exec(path);
      if (pod) info.k8s = { podUid: pod[1]!.replace(/_/g, '-') };
      return info;
    }
  }
  return undefined;
}

/** A runtime's answer to GET /containers/ID/json (Docker's API, which podman serves too), cut to what spans carry. */
export function fromInspect(container: ContainerInfo, inspect: unknown): ContainerInfo {
  const o = inspect as { Name?: unknown; Config?: { Image?: unknown; Labels?: Record<string, unknown> | null }; ImageName?: unknown };
  const out: ContainerInfo = { ...container };
  if (typeof o.Name === 'string' && o.Name) out.name = o.Name.replace(/^\//, '');
  const image = typeof o.ImageName === 'string' && o.ImageName ? o.ImageName : o.Config?.Image;
  if (typeof image === 'string' && image) out.image = image;
  const labels = o.Config?.Labels ?? {};
  const label = (k: string) => (typeof labels[k] === 'string' && labels[k] ? (labels[k] as string) : undefined);
  const k8s = {
    ...container.k8s,
    ...(label('io.kubernetes.pod.name') ? { podName: label('io.kubernetes.pod.name') } : {}),
    ...(label('io.kubernetes.pod.namespace') ? { namespace: label('io.kubernetes.pod.namespace') } : {}),
    ...(label('io.kubernetes.container.name') ? { containerName: label('io.kubernetes.container.name') } : {}),
    ...(label('io.kubernetes.pod.uid') ? { podUid: label('io.kubernetes.pod.uid') } : {}),
  };
  if (Object.keys(k8s).length) out.k8s = k8s;
  return out;
}

/** The span attributes a container gives (OpenTelemetry's container.* and k8s.* resource conventions). */
/** Every attribute containerAttributes may set: RED metrics carry them too, as Beyla's carry a pod's. */
export const CONTAINER_ATTRIBUTE_KEYS = [
  'container.id',
  'container.runtime',
  'container.name',
  'container.image.name',
  'k8s.pod.name',
  'k8s.namespace.name',
  'k8s.container.name',
  'k8s.pod.uid',
] as const;

export function containerAttributes(c: ContainerInfo): Record<string, string> {
  const out: Record<string, string> = { 'container.id': c.id, 'container.runtime': c.runtime };
  if (c.name) out['container.name'] = c.name;
  if (c.image) {
    // The name without its tag (container.image.tags is a list, which span attributes here cannot hold).
    const at = c.image.lastIndexOf(':');
    out['container.image.name'] = at > c.image.lastIndexOf('/') ? c.image.slice(0, at) : c.image;
  }
  if (c.k8s?.podName) out['k8s.pod.name'] = c.k8s.podName;
  if (c.k8s?.namespace) out['k8s.namespace.name'] = c.k8s.namespace;
  if (c.k8s?.containerName) out['k8s.container.name'] = c.k8s.containerName;
  if (c.k8s?.podUid) out['k8s.pod.uid'] = c.k8s.podUid;
  return out;
}
