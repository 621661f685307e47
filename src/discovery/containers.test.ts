import { describe, expect, it } from 'vitest';
import { containerAttributes, containerOfCgroup, fromInspect } from './containers';

const ID = '731f717d7eac8a0c339a79fc9532ba3002773e77bf1558a43a8052b9d7c21cf6';

describe('containerOfCgroup', () => {
  it('reads the container id each runtime writes into the cgroup path, cgroup v1 and v2', () => {
    const cases: Array<[string, string]> = [
      // podman 4.3 on this machine (cgroupfs manager, hybrid hierarchy), read from a running container's /proc/PID/cgroup
      [`9:name=systemd:/libpod_parent/libpod-${ID}\n8:pids:/libpod_parent/libpod-${ID}\n0::/`, 'podman'],
      [`0::/machine.slice/libpod-${ID}.scope/container`, 'podman'],
      [`0::/system.slice/docker-${ID}.scope`, 'docker'],
      [`12:cpu,cpuacct:/docker/${ID}`, 'docker'],
      [`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-${ID}.scope`, 'containerd'],
      [`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/crio-${ID}.scope`, 'cri-o'],
      [`11:memory:/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/${ID}`, 'kubernetes'],
    ];
    for (const [text, runtime] of cases) expect(containerOfCgroup(text), text).toMatchObject({ id: ID, runtime });
    expect(containerOfCgroup(cases[4]![0])!.k8s).toEqual({ podUid: '1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d' });
    expect(containerOfCgroup(cases[6]![0])!.k8s).toEqual({ podUid: '1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d' });
  });

  it('finds none for a process on the host, a user session, or conmon watching a container', () => {
    for (const text of [
      '0::/',
      '0::/user.slice/user-1000.slice/session-2.scope',
      '12:pids:/system.slice/ssh.service\n0::/system.slice/ssh.service',
      `0::/machine.slice/libpod-conmon-${ID}.scope`,
      `0::/system.slice/crio-conmon-${ID}.scope`,
      `0::/docker/${ID.slice(0, 12)}`, // a short id is not a cgroup name any runtime writes
      '',
      'garbage without colons',
    ])
      expect(containerOfCgroup(text), text).toBeUndefined();
  });
});

describe('fromInspect and containerAttributes', () => {
  it("takes the name, image and Kubernetes labels from the runtime's answer, and makes OTel's resource attributes of them", () => {
    const found = containerOfCgroup(`0::/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/${ID}`)!;
    const c = fromInspect(found, {
      Id: ID,
      Name: '/k8s_shop_shop-7d4b9_default_1a2b3c4d_0',
      Config: {
        Image: 'registry.local/shop:1.4.2',
        Labels: { 'io.kubernetes.pod.name': 'shop-7d4b9', 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.container.name': 'shop' },
      },
    });
    expect(containerAttributes(c)).toEqual({
      'container.id': ID,
      'container.runtime': 'kubernetes',
      'container.name': 'k8s_shop_shop-7d4b9_default_1a2b3c4d_0',
      'container.image.name': 'registry.local/shop',
      'k8s.pod.name': 'shop-7d4b9',
      'k8s.namespace.name': 'default',
      'k8s.container.name': 'shop',
      'k8s.pod.uid': '1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d',
    });
    // podman's compat API: an image name with a registry port and no tag keeps its port; no labels, no k8s.
    const podman = fromInspect({ id: ID, runtime: 'podman' }, { Name: 'front', Config: { Image: 'localhost:5000/front', Labels: null } });
    expect(containerAttributes(podman)).toEqual({ 'container.id': ID, 'container.runtime': 'podman', 'container.name': 'front', 'container.image.name': 'localhost:5000/front' });
    // Not the JSON expected: what the cgroup said stays.
    expect(fromInspect({ id: ID, runtime: 'docker' }, { message: 'no such container' })).toEqual({ id: ID, runtime: 'docker' });
  });
});
