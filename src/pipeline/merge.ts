/**
 * Captures recorded on several hosts, replayed as one: `loupe replay a.loupe
 * b.loupe c.loupe`. Each host stamps its records on its own boot clock, so
 * the captures are put on one timeline first: a first guess from the wall
 * clocks in their headers, then for every pair of hosts that talked, the
 * offset the traffic allows. A byte cannot be read before it was written:
 * on a connection seen from both ends (host i's client socket is host j's
 * server socket, the 4-tuple reversed), each client write bounds the offset
 * from below and each server write from above, NTP's reasoning without its
 * symmetric-delay guess; the estimate is the middle of what remains, its
 * bound half the width. Hosts are then chained to the reference host along
 * the best-bounded pairs.
 *
 * Deterministic: the same files give the same output in any order of
 * arguments (hosts are taken in the order of their names, then boot time and
 * seed), and no wall clock is read. Pids are made distinct per host (the
 * n-th host's are offset by n × 4,194,304, the kernel's pid_max limit), so a
 * process keeps its own identity; socket cookies likewise.
 *
 * Every capture is decoded into memory: meant for the captures of a test or
 * an incident, not for hours of traffic.
 */
import { CaptureError, type CaptureHeader, type ProcessInfo } from '../events/capture';
import { decodeRecord, RecordError } from '../events/codec';
import type { DataEvent, Event, SockOpenEvent } from '../events/types';
import { openCapture } from '../sources/capture-file';
import { tupleKey } from '../correlator/connection-pairs';

/** Linux's PID_MAX_LIMIT: no pid reaches it, so a host's pids offset by multiples of it never meet another's. */
export const PID_SPACE = 4_194_304;

export interface HostClock {
  file: string;
  hostname: string;
  /** Added to this host's record times to put them on the reference host's clock, ns. */
  offsetNs: bigint;
  /** Half the width of the offsets the traffic allows, ns; undefined where only wall clocks said it. */
  boundNs: bigint | undefined;
  /** Connections this host shares with the host its offset was measured against. */
  pairs: number;
  /** The host the offset was measured against (undefined for the reference, and for wall clocks only). */
  against: string | undefined;
  /** The traffic's bounds contradicted each other (a lower bound above the upper): the middle is still taken. */
  inconsistent: boolean;
}

export interface MergedCaptures {
  header: CaptureHeader;
  events: Event[];
  hosts: HostClock[];
}

interface Loaded {
  file: string;
  header: CaptureHeader;
  events: Event[];
}

function load(file: string): Loaded {
  const source = openCapture(file);
  const events: Event[] = [];
  for (const batch of source.batches()) {
    for (const record of batch) {
      let decoded;
      try {
        decoded = decodeRecord(record.bytes);
      } catch (e) {
        if (e instanceof RecordError) throw new CaptureError(file, record.where, e.reason);
        throw e;
      }
      if (decoded.type !== 'unknown') events.push(decoded);
    }
  }
  return { file, header: source.header, events };
}

/** A socket's data in order, with the byte offset each record's bytes start at, per direction. */
interface SocketData {
  open: SockOpenEvent;
  egress: Array<{ ts: bigint; from: number; to: number }>;
  ingress: Array<{ ts: bigint; from: number; to: number }>;
}

/**
 * A host's sockets with their syscall data records (TLS plaintext is another byte stream), each open a
 * socket of its own; and from its `nat` records, a server's 4-tuple seen from its peer -> the tuple its
 * client used.
 */
interface HostSockets {
  sockets: SocketData[];
  nat: Map<string, string>;
}

function socketsOf(events: Event[]): HostSockets {
  const all: SocketData[] = [];
  const nat = new Map<string, string>();
  const open = new Map<string, SocketData>();
  const key = (ev: { pid: number; fd: number; cookie: bigint }) => `${ev.pid}|${ev.fd}|${ev.cookie}`;
  for (const ev of events) {
    if (ev.type === 'sock_open') {
      const s = { open: ev, egress: [], ingress: [] };
      all.push(s);
      open.set(key(ev), s);
    } else if (ev.type === 'nat') {
      nat.set(tupleKey(ev.serverRemote, ev.serverLocal), tupleKey(ev.clientLocal, ev.clientRemote));
    } else if (ev.type === 'data' && !ev.source.startsWith('ssl_')) {
      const s = open.get(key(ev));
      if (!s) continue;
      const list = s[(ev as DataEvent).direction];
      const from = list.length ? list[list.length - 1]!.to : 0;
      list.push({ ts: ev.ts, from, to: from + ev.bytes });
    }
  }
  return { sockets: all, nat };
}

/**
 * One byte stream's [write time, read time] pairs: each read that returns bytes from x on, with
 * the write that carried byte x (a reader cannot return a byte before it was written).
 */
function streamBounds(writes: SocketData['egress'], reads: SocketData['ingress']): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  let w = 0;
  for (const r of reads) {
    while (w < writes.length && writes[w]!.to <= r.from) w++;
    if (w >= writes.length) break;
    if (writes[w]!.from <= r.from) out.push([writes[w]!.ts, r.ts]);
  }
  return out;
}

interface PairBounds {
  low: bigint | undefined;
  high: bigint | undefined;
  pairs: number;
}

/**
 * What host j's traffic with host i says of j's offset against i. A server is found by its client's
 * tuple: its own reversed, or the one a `nat` record of either host names (a Service's DNAT on the
 * client's host, a published port on the server's).
 */
function pairBounds(a: HostSockets, b: HostSockets): PairBounds {
  const servers = new Map<string, SocketData>();
  for (const s of b.sockets) {
    if (s.open.role !== 'server') continue;
    const seen = tupleKey(s.open.remote, s.open.local);
    servers.set(b.nat.get(seen) ?? a.nat.get(seen) ?? seen, s);
  }
  let low: bigint | undefined;
  let high: bigint | undefined;
  let pairs = 0;
  for (const client of a.sockets) {
    if (client.open.role !== 'client') continue;
    const server = servers.get(tupleKey(client.open.local, client.open.remote));
    if (!server) continue;
    pairs++;
    // Client (on i) writes, server (on j) reads: read_j + d >= write_i.
    for (const [write, read] of streamBounds(client.egress, server.ingress)) if (low === undefined || write - read > low) low = write - read;
    // Server (on j) writes, client (on i) reads: read_i >= write_j + d.
    for (const [write, read] of streamBounds(server.egress, client.ingress)) if (high === undefined || read - write < high) high = read - write;
  }
  return { low, high, pairs };
}

/** The order hosts are taken in, whatever the order of the arguments. */
function canonical(a: Loaded, b: Loaded): number {
  const key = (l: Loaded) => [l.header.host.hostname, l.header.bootTimeNs.padStart(24, '0'), l.header.seed, l.file] as const;
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return 0;
}

export function mergeCaptures(files: string[]): MergedCaptures {
  const loaded = files.map(load).sort(canonical);
  const sockets = loaded.map((l) => socketsOf(l.events));
  const wall = (i: number) => BigInt(loaded[i]!.header.bootTimeNs) - BigInt(loaded[0]!.header.bootTimeNs);
  // Offsets onto host 0's clock: host 0 first, then the host best bounded against one already placed.
  const placed = new Map<number, HostClock>();
  placed.set(0, { file: loaded[0]!.file, hostname: loaded[0]!.header.host.hostname, offsetNs: 0n, boundNs: 0n, pairs: 0, against: undefined, inconsistent: false });
  for (;;) {
    let best: { j: number; clock: HostClock } | undefined;
    for (const [i, from] of placed) {
      for (let j = 0; j < loaded.length; j++) {
        if (placed.has(j)) continue;
        // Both directions: j's clients of i's servers, and i's clients of j's servers.
        const ij = pairBounds(sockets[i]!, sockets[j]!);
        const ji = pairBounds(sockets[j]!, sockets[i]!);
        const lows = [ij.low, ji.high === undefined ? undefined : -ji.high].filter((v): v is bigint => v !== undefined);
        const highs = [ij.high, ji.low === undefined ? undefined : -ji.low].filter((v): v is bigint => v !== undefined);
        if (lows.length === 0 || highs.length === 0) continue;
        const low = lows.reduce((m, v) => (v > m ? v : m));
        const high = highs.reduce((m, v) => (v < m ? v : m));
        const bound = (high > low ? high - low : low - high) / 2n + (from.boundNs ?? 0n);
        const clock: HostClock = {
          file: loaded[j]!.file,
          hostname: loaded[j]!.header.host.hostname,
          offsetNs: from.offsetNs + (low + high) / 2n,
          boundNs: bound,
          pairs: ij.pairs + ji.pairs,
          against: from.hostname,
          inconsistent: low > high,
        };
        if (!best || bound < best.clock.boundNs! || (bound === best.clock.boundNs && j < best.j)) best = { j, clock };
      }
    }
    if (!best) break;
    placed.set(best.j, best.clock);
  }
  const hosts = loaded.map(
    (l, i): HostClock =>
      placed.get(i) ?? { file: l.file, hostname: l.header.host.hostname, offsetNs: wall(i), boundNs: undefined, pairs: 0, against: undefined, inconsistent: false },
  );
  const events: Array<{ ev: Event; host: number; at: number }> = [];
  loaded.forEach((l, host) => l.events.forEach((ev, at) => events.push({ ev: onHost(ev, host, hosts[host]!.offsetNs), host, at })));
  events.sort((x, y) => (x.ev.ts < y.ev.ts ? -1 : x.ev.ts > y.ev.ts ? 1 : x.host - y.host || x.at - y.at));
  const processes: ProcessInfo[] = loaded.flatMap((l, host) =>
    l.header.processes.map((p) => ({ ...p, pid: p.pid + host * PID_SPACE, ...(p.ppid !== undefined ? { ppid: p.ppid + host * PID_SPACE } : {}) })),
  );
  const ref = loaded[0]!.header;
  const header: CaptureHeader = {
    ...ref,
    host: { ...ref.host, hostname: loaded.map((l) => l.header.host.hostname).join('+') },
    processes,
  };
  return { header, events: events.map((e) => e.ev), hosts };
}

/** An event of the n-th host on the merged timeline: its times shifted, its pids and cookies made that host's. */
function onHost(ev: Event, host: number, offsetNs: bigint): Event {
  if (host === 0 && offsetNs === 0n) return ev;
  const shift = BigInt(host) << 56n;
  const out = { ...ev, ts: ev.ts + offsetNs, pid: ev.pid + host * PID_SPACE, tid: ev.tid + host * PID_SPACE } as Event;
  if ('cookie' in out) out.cookie = out.cookie ^ shift;
  if (out.type === 'proc_exec') out.ppid += host * PID_SPACE;
  if (out.type === 'proc_fork') out.childPid += host * PID_SPACE;
  if (out.type === 'proc_info')
    out.info = { ...out.info, pid: out.info.pid + host * PID_SPACE, ...(out.info.ppid !== undefined ? { ppid: out.info.ppid + host * PID_SPACE } : {}) };
  if (out.type === 'go_request_start' || out.type === 'go_request_end') out.startNs = out.startNs === 0n ? 0n : out.startNs + offsetNs;
  return out;
}

/** The summary line of a merged replay: each host's offset and how well the traffic bounds it. */
export function describeHosts(hosts: HostClock[]): string {
  const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(3);
  return hosts
    .map((h, i) =>
      i === 0
        ? `${h.hostname} (reference clock)`
        : h.boundNs === undefined
          ? `${h.hostname} ${Number(h.offsetNs) >= 0 ? '+' : ''}${ms(h.offsetNs)} ms by wall clocks (no connection shared with a placed host)`
          : `${h.hostname} ${Number(h.offsetNs) >= 0 ? '+' : ''}${ms(h.offsetNs)} ms ± ${ms(h.boundNs)} ms from ${h.pairs} connection${h.pairs === 1 ? '' : 's'} with ${h.against}${h.inconsistent ? ' (the bounds disagree: a reader returned before its writer)' : ''}`,
    )
    .join('; ');
}
