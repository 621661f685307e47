import { describe, expect, it } from 'vitest';
import type { ContainerInfo } from './containers';
import { ProcessSelection, type KernelFilter, type ProcessView } from './selection';

/** A host of processes (pid -> exe, parent) and listening sockets (inode -> port, holders), and a kernel filter that logs. */
function host(
  processes: Record<number, { exe: string; ppid?: number; container?: ContainerInfo }>,
  sockets: Record<string, { port: number; listening: boolean; holders: number[] }> = {},
) {
  const proc: ProcessView = {
    allPids: () => Object.keys(processes).map(Number),
    childrenOf: (pid) =>
      Object.entries(processes)
        .filter(([, p]) => p.ppid === pid)
        .map(([c]) => Number(c)),
    processInfo: (pid) => (processes[pid] ? { pid, exe: processes[pid]!.exe } : undefined),
    listeningInodes: (ports) =>
      new Set(
        Object.entries(sockets)
          .filter(([, s]) => s.listening && ports.includes(s.port))
          .map(([i]) => i),
      ),
    portInodes: (ports) =>
      new Set(
        Object.entries(sockets)
          .filter(([, s]) => ports.includes(s.port))
          .map(([i]) => i),
      ),
    holdersOf: (inodes, except) => [...new Set([...inodes].flatMap((i) => sockets[i]?.holders ?? []))].filter((p) => p !== except),
    containerOf: (pid) => processes[pid]?.container,
  };
  const log: string[] = [];
  const pending = new Set<number>();
  const reexec = new Set<number>();
  const kernel: KernelFilter = {
    watchPid: (pid) => void log.push(`watch ${pid}`),
    unwatchPid: (pid) => (log.push(`unwatch ${pid}`), 1_000n),
    takePending: (pid) => pending.delete(pid),
    takeReexec: (pid) => reexec.delete(pid),
    markPending: (pid) => void pending.add(pid),
  };
  return { proc, kernel, log, pending, reexec, processes, sockets };
}

const AGENT = 99;

describe('process selection', () => {
  it("--pid: the process and its children running at start, and a child exec'd later", () => {
    const h = host({
      10: { exe: '/usr/sbin/nginx' },
      11: { exe: '/usr/sbin/nginx', ppid: 10 },
      12: { exe: '/bin/sh', ppid: 11 },
      20: { exe: '/bin/other' },
      [AGENT]: { exe: '/usr/bin/node' },
    });
    const s = new ProcessSelection({ pids: [10] }, h.proc, AGENT);
    expect(s.filtering).toBe(true);
    expect(s.kernelPids).toEqual([10, 11, 12]);
    expect([...s.initialPids].sort()).toEqual([10, 11, 12]);
    expect(s.onExec(13, { ppid: 12, exe: '/bin/ls' }, h.kernel)).toBe(true);
    expect(h.log).toEqual(['watch 13']);
    expect(s.onExec(21, { ppid: 20, exe: '/bin/ls' }, h.kernel)).toBe(false);
    s.onExit(13);
    expect(s.isSelected(13)).toBe(false);
  });

  it("--exe: a matching exec is chosen; one that does not leaves the filter, its records until then and its sockets' states dropped", () => {
    const h = host({ 30: { exe: '/srv/api' }, 31: { exe: '/usr/bin/curl' } });
    const s = new ProcessSelection({ exe: /\/srv\/api$/ }, h.proc, AGENT);
    const chosen: string[] = [];
    s.onChosen = (pid, by) => chosen.push(`${pid} ${by}`);
    expect(s.kernelPids).toEqual([30]);
    h.pending.add(40).add(41);
    expect(s.onExec(40, { ppid: 1, exe: '/srv/api' }, h.kernel)).toBe(true);
    expect(h.log).toEqual([]); // pending: in the kernel's filter already
    expect(s.onExec(41, { ppid: 1, exe: '/usr/bin/wget' }, h.kernel)).toBe(false);
    expect(h.log).toEqual(['unwatch 41']);
    // It left the filter at 1000 ns: records up to 10 ms later may still have passed it.
    expect(s.dropsRecord(41, 900n, 77n)).toBe(true);
    expect(s.dropsSocketState(77n, false)).toBe(true);
    expect(s.dropsSocketState(77n, true)).toBe(true);
    expect(s.dropsSocketState(77n, false)).toBe(false); // closed: forgotten
    expect(s.dropsRecord(40, 900n)).toBe(false);
    expect(s.dropsRecord(41, 20_000_000n)).toBe(false); // past the margin: the pid is another process's
    expect(s.onExec(40, { ppid: 1, exe: '/srv/api' }, h.kernel)).toBe(true); // it execs itself again: chosen already
    expect(chosen, 'said once, for the process chosen after the start').toEqual(['40 exe']);
  });

  it("--exe: a pending process that exec'd again before the decision stays pending for its next program's record (ip netns exec curl)", () => {
    const h = host({});
    const s = new ProcessSelection({ exe: /\/curl$/ }, h.proc, AGENT);
    // The kernel side: `ip` exec'd (pending), then exec'd curl before the agent read ip's record.
    h.pending.add(90);
    h.reexec.add(90);
    expect(s.onExec(90, { ppid: 1, exe: '/usr/sbin/ip' }, h.kernel)).toBe(false);
    expect(h.log, 'still in the filter').toEqual([]);
    expect(s.dropsRecord(90, 900n), "what it did is curl's").toBe(false);
    expect(s.onExec(90, { ppid: 1, exe: '/usr/bin/curl' }, h.kernel)).toBe(true);
    expect(s.isSelected(90)).toBe(true);
    expect(h.log).toEqual([]);
    // Without the second exec in between, "no" takes it out.
    h.pending.add(91);
    expect(s.onExec(91, { ppid: 1, exe: '/usr/sbin/ip' }, h.kernel)).toBe(false);
    expect(h.log).toEqual(['unwatch 91']);
  });

  it("--exe: an exec record lost, the decision is made at the process's first record from /proc", () => {
    const h = host({});
    const s = new ProcessSelection({ exe: /api/ }, h.proc, AGENT);
    h.processes[50] = { exe: '/srv/api' }; // started after the agent
    h.pending.add(50);
    const chosen: string[] = [];
    s.onChosen = (pid, by) => chosen.push(`${pid} ${by}`);
    expect(s.decideLate(50, 5n, h.kernel)).toBe(true);
    expect(chosen).toEqual(['50 exe-late']);
    expect(s.decideLate(50, 6n, h.kernel)).toBe(false); // no longer pending
    // Exec'd twice with both records lost (pyenv's python3 shim execs the real python): /proc names the
    // program it runs now, so a "no" takes it out, re-exec or not.
    h.processes[51] = { exe: '/usr/bin/python3.11' };
    h.pending.add(51);
    h.reexec.add(51);
    expect(s.decideLate(51, 7n, h.kernel)).toBe(false);
    expect(h.log).toEqual(['unwatch 51']);
    expect(h.reexec.has(51), 'the mark taken').toBe(false);
  });

  it('nothing given: every process but the agent, and no exec is refused', () => {
    const h = host({ 1: { exe: '/sbin/init' }, 2: { exe: '/bin/x' }, [AGENT]: { exe: '/usr/bin/node' } });
    const s = new ProcessSelection({}, h.proc, AGENT);
    expect(s.filtering).toBe(false);
    expect(s.initialPids).toEqual([1, 2]);
    expect(s.onExec(3, { exe: '/bin/y' }, h.kernel)).toBe(true);
    expect(s.listenPorts).toBeUndefined();
  });

  it('--port alone: probes for the programs on the port, never a change to the filter', () => {
    const h = host({ 60: { exe: '/srv/a' }, 61: { exe: '/srv/b' } }, { i1: { port: 8080, listening: true, holders: [60] } });
    const s = new ProcessSelection({ ports: [8080] }, h.proc, AGENT);
    expect(s.portSelecting).toBe(true);
    expect(s.initialPids).toEqual([60]);
    s.begin();
    h.sockets.i2 = { port: 8080, listening: true, holders: [61] };
    expect(s.newListeners(h.kernel)).toEqual([61]);
    expect(s.newListeners(h.kernel)).toEqual([]);
    expect(h.log).toEqual([]);
  });

  it('--open-port: the listeners are watched, and new ones once', () => {
    const h = host({ 70: { exe: '/srv/a' }, 71: { exe: '/srv/b' } }, { i1: { port: 9000, listening: true, holders: [70] } });
    const s = new ProcessSelection({ openPorts: [9000] }, h.proc, AGENT);
    expect(s.kernelPids).toEqual([70]);
    const chosen: string[] = [];
    s.onChosen = (pid, by) => chosen.push(`${pid} ${by}`);
    h.sockets.i2 = { port: 9000, listening: true, holders: [71, 70] };
    expect(s.newListeners(h.kernel)).toEqual([71]);
    expect(h.log).toEqual(['watch 71']);
    expect(chosen).toEqual(['71 open-port']);
  });

  it('--container: the processes of containers whose name, image or id matches, at start and as they appear', () => {
    const id = (c: string) => c.repeat(64);
    const shop = { id: id('a'), runtime: 'podman' as const, name: 'shop', image: 'localhost/shop:1' };
    const db = { id: id('b'), runtime: 'podman' as const, name: 'db', image: 'localhost/postgres:15' };
    const h = host({ 10: { exe: '/app', container: shop }, 11: { exe: '/usr/bin/postgres', container: db }, 12: { exe: '/usr/bin/bash' }, [AGENT]: { exe: '/node' } });
    const byName = new ProcessSelection({ container: /^shop$/ }, h.proc, AGENT);
    expect(byName.filtering).toBe(true);
    expect(byName.kernelPids).toEqual([10]);
    expect(new ProcessSelection({ container: /postgres/ }, h.proc, AGENT).kernelPids).toEqual([11]); // by image
    expect(new ProcessSelection({ container: /^b+$/ }, h.proc, AGENT).kernelPids).toEqual([11]); // by id
    expect(new ProcessSelection({ container: /nothing/ }, h.proc, AGENT).kernelPids).toEqual([0]); // filter on, nothing yet
    // A `podman exec` into shop, and a second shop container started later: found at the next look, once.
    h.processes[13] = { exe: '/bin/sh', container: shop };
    h.processes[14] = { exe: '/app', container: { ...shop, id: id('c'), name: 'shop' } };
    expect(byName.newContainerProcesses(h.kernel)).toEqual([13, 14]);
    expect(h.log).toEqual(['watch 13', 'watch 14']);
    expect(byName.newContainerProcesses(h.kernel)).toEqual([]);
    expect(byName.isSelected(12)).toBe(false);
  });
});
