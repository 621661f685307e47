/**
 * What we know of each process: from the capture header's process table and
 * from exec records. Gives each process its service name.
 *
 * A pid can name several processes in one capture: one exits and the kernel
 * hands its pid to a new one. The header lists each in the order the run
 * learnt them; the first is current, and each exit record makes the next one
 * current, so a replay names every incarnation as the live run did.
 */
import type { ProcessInfo } from '../events/capture';
import type { ProcExecEvent } from '../events/types';
import { serviceByRules, type ServiceRule } from './config';

export class ProcessTable {
  private readonly byPid = new Map<number, ProcessInfo>();
  /** Later processes under a pid (from the header), in order, for after the current one exits. */
  private readonly later = new Map<number, ProcessInfo[]>();
  /** serviceOf's answers: asked once per span, and a rule is a regular expression. Forgotten when the pid's entry changes. */
  private readonly services = new Map<number, string>();

  /** `rules`: service names by executable or container (discovery config), applied when a process has none of its own. */
  constructor(
    initial: ProcessInfo[] = [],
    private readonly rules: readonly ServiceRule[] = [],
  ) {
    for (const p of initial) {
      if (!this.byPid.has(p.pid)) this.byPid.set(p.pid, p);
      else {
        const queue = this.later.get(p.pid);
        if (queue) queue.push(p);
        else this.later.set(p.pid, [p]);
      }
    }
  }

  /** The process exited: its pid names nothing until the next process the header has for it, or one learnt later. */
  onExit(pid: number): void {
    this.services.delete(pid);
    const queue = this.later.get(pid);
    const next = queue?.shift();
    if (queue?.length === 0) this.later.delete(pid);
    if (next) this.byPid.set(pid, next);
    else this.byPid.delete(pid);
  }

  onExec(ev: ProcExecEvent): void {
    const known = this.byPid.get(ev.pid);
    // exec replaces the program; a configured service name for the pid stays.
    // It stays in its container too.
    this.byPid.set(ev.pid, {
      pid: ev.pid,
      ppid: ev.ppid,
      exe: ev.filename,
      comm: ev.comm,
      ...(known?.service ? { service: known.service } : {}),
      ...(known?.container ? { container: known.container } : {}),
    });
    this.services.delete(ev.pid);
  }

  /** `parent` forked `child`: until it execs, the child runs the parent's program under the parent's service. */
  onFork(child: number, parent: number): void {
    const p = this.byPid.get(parent);
    if (!p || this.byPid.has(child)) return;
    this.byPid.set(child, { ...p, pid: child, ppid: parent });
    this.services.delete(child);
  }

  /** A process learnt outside exec records (a live run looking it up in /proc); what is known of a live pid stays. */
  learn(info: ProcessInfo): void {
    const known = this.byPid.get(info.pid);
    // The runtime named a container after its process was first described (SpanFactory reads it per span).
    if (known && info.container && known.container?.id === info.container.id) {
      this.byPid.set(info.pid, { ...known, container: info.container });
      this.services.delete(info.pid); // a rule may name it by its container
      return;
    }
    if (known) return;
    this.byPid.set(info.pid, info);
    this.services.delete(info.pid);
  }

  get(pid: number): ProcessInfo | undefined {
    return this.byPid.get(pid);
  }

  /** service.name: the process's own (OTEL_SERVICE_NAME), else a configured rule, else the executable's base name, else the command name, else the pid. */
  serviceOf(pid: number): string {
    let service = this.services.get(pid);
    if (service === undefined) this.services.set(pid, (service = this.serviceNow(pid)));
    return service;
  }

  private serviceNow(pid: number): string {
    const p = this.byPid.get(pid);
    if (p?.service) return p.service;
    const ruled = p ? serviceByRules(p, this.rules) : undefined;
    if (ruled) return ruled;
    const base = p?.exe.split('/').pop();
    if (base) return base;
    if (p?.comm) return p.comm;
    return `pid-${pid}`;
  }
}
