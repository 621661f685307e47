/**
 * A seeded generator of event streams for a service topology, with the truth
 * about every call: which request it was made for. Tests replay the events and
 * compare the spans against the truth, over random topologies, interleavings
 * and lost events.
 *
 * What it models: a load generator calling an entry service; Go services
 * (handlers on goroutines that hop threads, fan-out through child goroutines,
 * fire-and-forget calls after the response, runtime events with fds) and
 * thread-per-request services (calls made on the handler's thread); a new
 * connection per call with ephemeral ports that wrap and get reused; overlapping
 * requests; failures answered with 503 and retried once.
 */
import type { CaptureHeader, ProcessInfo } from '../../events/capture';
import type { Endpoint, Event } from '../../events/types';

export interface ServiceSpec {
  name: string;
  kind: 'go' | 'threaded';
}

export interface CallSpec {
  to: string;
  /** Go only: made from a new goroutine the handler starts (else on the handler's own goroutine). */
  childGoroutine?: boolean;
  /** Go only: made after the response was sent, from a goroutine that outlives the handler. */
  async?: boolean;
  /** Chance the call fails with 503 and is retried once. */
  failRate?: number;
}

export interface Topology {
  services: ServiceSpec[];
  /** The calls a service's handler makes, in order. */
  calls: Record<string, CallSpec[]>;
  entry: string;
}

export interface SimOptions {
  seed: number;
  /** Requests the load generator sends to the entry service. */
  requests: number;
  /** Mean gap between request starts, ns; smaller means more overlap. */
  meanGapNs: number;
  /** Ephemeral client ports cycle through this many values (small: ports get reused). */
  portRange: number;
  /** Go client events name the connection's fd (as a probe that sees the conn would). */
  goClientFd: boolean;
}

export const DEFAULT_SIM_OPTIONS: SimOptions = { seed: 1, requests: 20, meanGapNs: 2_000_000, portRange: 2000, goClientFd: true };

/** One call as the simulator made it: its id is in the URL path, `/svc/<to>/c<id>`. */
export interface TrueCall {
  id: number;
  from: string;
  to: string;
  /** The call whose request the caller was serving; undefined for the load generator's calls. */
  parent: number | undefined;
  /** The load generator call this one descends from. */
  root: number;
  status: number;
}

export interface Simulation {
  header: CaptureHeader;
  events: Event[];
  calls: Map<number, TrueCall>;
}

/** mulberry32: small, fast and seeded; not for anything secret. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Proc {
  spec: ServiceSpec | { name: string; kind: 'threaded' };
  pid: number;
  addr: string;
  port: number;
  nextFd: number;
  nextGoid: number;
  nextTid: number;
}

interface Caller {
  proc: Proc;
  tid: number;
  goid?: bigint;
  /** The call being served (undefined for the load generator). */
  serving: number | undefined;
  root: number;
}

type Timed = { ev: Event; order: number };

const µs = 1000n;

export function simulate(topology: Topology, options: Partial<SimOptions> = {}): Simulation {
  const opts = { ...DEFAULT_SIM_OPTIONS, ...options };
  const random = rng(opts.seed);
  const between = (lo: number, hi: number) => BigInt(Math.floor(lo + random() * (hi - lo)));
  const procs = new Map<string, Proc>();
  const processes: ProcessInfo[] = [];
  const add = (spec: Proc['spec'], index: number) => {
    const p: Proc = { spec, pid: 100 + index, addr: '127.0.0.1', port: 8000 + index, nextFd: 10, nextGoid: 100, nextTid: 0 };
    procs.set(spec.name, p);
    processes.push({ pid: p.pid, exe: `/srv/${spec.name}/${spec.name}`, service: spec.name });
  };
  add({ name: 'loadgen', kind: 'threaded' }, 0);
  topology.services.forEach((s, i) => add(s, i + 1));
  for (const [from, list] of Object.entries(topology.calls)) {
    if (!procs.has(from)) throw new Error(`simulator: calls from unknown service ${from}`);
    for (const c of list) if (!procs.has(c.to)) throw new Error(`simulator: ${from} calls unknown service ${c.to}`);
  }
  if (!procs.has(topology.entry)) throw new Error(`simulator: unknown entry service ${topology.entry}`);

  const timed: Timed[] = [];
  let order = 0;
  let nextCall = 1;
  let nextPort = 0;
  const calls = new Map<number, TrueCall>();
  /**
   * Ephemeral ports: reused, as a kernel does, but never while an earlier use
   * of the same port might still be open. Calls are generated depth-first, not
   * in time order, so a port is free at `t` only if every use so far began and
   * ended before `t`.
   */
  const portUse = new Map<number, { lastStart: bigint; lastEnd: bigint | undefined }>();
  const takePort = (t: bigint): number => {
    for (let tries = 0; ; tries++) {
      const port = 30000 + (nextPort++ % opts.portRange) + Math.floor(tries / opts.portRange) * opts.portRange;
      const use = portUse.get(port);
      if (!use || (use.lastEnd !== undefined && use.lastEnd < t && use.lastStart < t)) {
        portUse.set(port, { lastStart: t, lastEnd: undefined });
        return port;
      }
    }
  };
  const emit = (ev: Event) => timed.push({ ev, order: order++ });
  const base = (ts: bigint, pid: number, tid: number) => ({ ts, pid, tid, cpu: 0 });
  const goThread = (p: Proc) => p.pid * 10 + 1 + Math.floor(random() * 4); // goroutines hop over 4 threads
  const data = (ts: bigint, pid: number, tid: number, fd: number, direction: 'egress' | 'ingress', text: string): Event => {
    const bytes = Buffer.from(text);
    return { ...base(ts, pid, tid), type: 'data', fd, direction, source: direction === 'egress' ? 'write' : 'read', flags: 0, cookie: 0n, bytes: bytes.length, data: bytes };
  };

  /** Emits one call and everything it causes; returns when the caller has its answer. */
  const call = (caller: Caller, spec: CallSpec, start: bigint, attempt = 0): bigint => {
    const callee = procs.get(spec.to)!;
    const id = nextCall++;
    const fails = attempt === 0 && random() < (spec.failRate ?? 0);
    calls.set(id, { id, from: caller.proc.spec.name, to: spec.to, parent: caller.serving, root: caller.root || id, status: fails ? 503 : 200 });
    const root = caller.root || id;
    const path = `/svc/${spec.to}/c${id}`;
    const clientFd = caller.proc.nextFd++;
    const serverFd = callee.nextFd++;
    const clientEp: Endpoint = { addr: caller.proc.addr, port: takePort(start) };
    const serverEp: Endpoint = { addr: callee.addr, port: callee.port };
    const callerTid = caller.goid !== undefined ? goThread(caller.proc) : caller.tid;
    let t = start;
    if (caller.goid !== undefined) {
      emit({
        ...base(t, caller.proc.pid, callerTid),
        type: 'go_request_start',
        goid: caller.goid,
        kind: 'http_client',
        status: 0,
        fd: opts.goClientFd ? clientFd : -1,
        startNs: 0n,
        method: 'GET',
        path,
        traceparent: '',
        host: '',
      });
    }
    t += between(5_000, 20_000);
    emit({ ...base(t, caller.proc.pid, callerTid), type: 'sock_open', fd: clientFd, family: 4, role: 'client', protocol: 6, local: clientEp, remote: serverEp, cookie: 0n });
    const acceptTid = callee.spec.kind === 'go' ? goThread(callee) : callee.pid * 10 + 1;
    t += between(1_000, 5_000);
    emit({ ...base(t, callee.pid, acceptTid), type: 'sock_open', fd: serverFd, family: 4, role: 'server', protocol: 6, local: serverEp, remote: clientEp, cookie: 0n });
    const request = `GET ${path} HTTP/1.1\r\nHost: ${spec.to}\r\n\r\n`;
    t += between(1_000, 5_000);
    emit(data(t, caller.proc.pid, callerTid, clientFd, 'egress', request));
    // the server's side: a handler thread (threaded) or a handler goroutine (Go)
    const handler: Caller = { proc: callee, tid: callee.pid * 1000 + callee.nextTid++, serving: id, root };
    if (callee.spec.kind === 'go') handler.goid = BigInt(callee.nextGoid++);
    const readTid = handler.goid !== undefined ? goThread(callee) : handler.tid;
    t += between(10_000, 100_000);
    emit(data(t, callee.pid, readTid, serverFd, 'ingress', request));
    if (handler.goid !== undefined) {
      emit({ ...base(t + 1n, callee.pid, goThread(callee)), type: 'go_goroutine_create', goid: handler.goid, parentGoid: 1n });
      t += between(20_000, 300_000); // waiting for the handler: the "in queue" time
      emit({
        ...base(t, callee.pid, goThread(callee)),
        type: 'go_request_start',
        goid: handler.goid,
        kind: 'http_server',
        status: 0,
        fd: serverFd,
        startNs: 0n,
        method: 'GET',
        path,
        traceparent: '',
        host: '',
      });
    }
    const later: Array<() => void> = [];
    let served = 0n; // when the response went out: async work starts after it
    if (!fails) {
      for (const child of topology.calls[spec.to] ?? []) {
        t += between(20_000, 200_000);
        let from = handler;
        if (handler.goid !== undefined && (child.childGoroutine || child.async)) {
          const goid = BigInt(callee.nextGoid++);
          emit({ ...base(t, callee.pid, goThread(callee)), type: 'go_goroutine_create', goid, parentGoid: handler.goid });
          from = { ...handler, goid };
        }
        if (child.async && handler.goid !== undefined) {
          const caller2 = from;
          later.push(() => {
            const end = call(caller2, child, served + between(50_000, 500_000));
            emit({ ...base(end + 1n, callee.pid, goThread(callee)), type: 'go_goroutine_exit', goid: caller2.goid!, parentGoid: 0n });
          });
          continue;
        }
        t = call(from, child, t);
        if (from !== handler) emit({ ...base(t + 1n, callee.pid, goThread(callee)), type: 'go_goroutine_exit', goid: from.goid!, parentGoid: 0n });
        t += 2n;
      }
    }
    t += between(20_000, 200_000);
    const response = fails ? 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy' : `HTTP/1.1 200 OK\r\nContent-Length: ${String(id).length}\r\n\r\n${id}`;
    const writeTid = handler.goid !== undefined ? goThread(callee) : handler.tid;
    emit(data(t, callee.pid, writeTid, serverFd, 'egress', response));
    if (handler.goid !== undefined) {
      emit({
        ...base(t + 1n, callee.pid, writeTid),
        type: 'go_request_end',
        goid: handler.goid,
        kind: 'http_server',
        status: fails ? 503 : 200,
        fd: serverFd,
        startNs: 0n,
        method: 'GET',
        path,
        traceparent: '',
        host: '',
      });
    }
    served = t;
    t += between(10_000, 100_000);
    emit(data(t, caller.proc.pid, caller.goid !== undefined ? goThread(caller.proc) : caller.tid, clientFd, 'ingress', response));
    if (caller.goid !== undefined) {
      emit({
        ...base(t + 1n, caller.proc.pid, goThread(caller.proc)),
        type: 'go_request_end',
        goid: caller.goid,
        kind: 'http_client',
        status: fails ? 503 : 200,
        fd: clientFd,
        startNs: 0n,
        method: 'GET',
        path,
        traceparent: '',
        host: '',
      });
    }
    t += 3n;
    emit({ ...base(t, caller.proc.pid, callerTid), type: 'sock_close', fd: clientFd, cookie: 0n });
    portUse.get(clientEp.port)!.lastEnd = t > served + 5n * µs ? t : served + 5n * µs;
    emit({ ...base(served + 5n * µs, callee.pid, writeTid), type: 'sock_close', fd: serverFd, cookie: 0n });
    if (handler.goid !== undefined) emit({ ...base(served + 6n * µs, callee.pid, goThread(callee)), type: 'go_goroutine_exit', goid: handler.goid, parentGoid: 0n });
    for (const run of later) run();
    if (fails) return call(caller, spec, t + between(10_000, 50_000), attempt + 1);
    return t;
  };

  const loadgen = procs.get('loadgen')!;
  let start = 1_000_000_000n;
  for (let i = 0; i < opts.requests; i++) {
    start += between(0, opts.meanGapNs * 2);
    call({ proc: loadgen, tid: loadgen.pid * 1000 + i, serving: undefined, root: 0 }, { to: topology.entry }, start);
  }
  // Interleave all requests by time; ties keep the order they were made in.
  timed.sort((a, b) => (a.ev.ts < b.ev.ts ? -1 : a.ev.ts > b.ev.ts ? 1 : a.order - b.order));
  const header: CaptureHeader = {
    eventsVersion: 1,
    seed: (opts.seed >>> 0).toString(16).padStart(16, '0'),
    host: { hostname: 'simulated', kernel: 'simulated', arch: 'x86_64' },
    bootTimeNs: '1700000000000000000',
    processes,
    config: { source: 'simulator', topology, options: opts },
    createdBy: 'loupe simulator',
  };
  return { header, events: timed.map((t) => t.ev), calls };
}
