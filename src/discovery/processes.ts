/**
 * What we know of each process: from the capture header's process table and
 * from exec records. Gives each process its service name.
 */
import type { ProcessInfo } from '../events/capture';
import type { ProcExecEvent } from '../events/types';
import { serviceByRules } from './config';

export class ProcessTable {
  private readonly byPid = new Map<number, ProcessInfo>();
  /** serviceOf's answers: asked once per span, and a rule is a regular expression. Forgotten when the pid's entry changes. */
  private readonly services = new Map<number, string>();

  /** `rules`: service names by executable (discovery config), applied when a process has none of its own. */
  constructor(initial: ProcessInfo[] = [], private readonly rules: ReadonlyArray<{ exe: string; name: string }> = []) {
    for (const p of initial) this.byPid.set(p.pid, p);
  }

  onExec(ev: ProcExecEvent): void {
    const known = this.byPid.get(ev.pid);
    // exec replaces the program; a configured service name for the pid stays.
    this.byPid.set(ev.pid, { pid: ev.pid, ppid: ev.ppid, exe: ev.filename, comm: ev.comm, ...(known?.service ? { service: known.service } : {}) });
    this.services.delete(ev.pid);
  }

  /** A process learnt outside exec records (a live run looking it up in /proc); what is known stays. */
  learn(info: ProcessInfo): void {
    if (this.byPid.has(info.pid)) return;
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
    const ruled = p?.exe ? serviceByRules(p.exe, this.rules) : undefined;
    if (ruled) return ruled;
    const base = p?.exe.split('/').pop();
    if (base) return base;
    if (p?.comm) return p.comm;
    return `pid-${pid}`;
  }
}
