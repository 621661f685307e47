/**
 * A packet capture as Loupe events. Each TCP flow is reassembled per
 * direction (out-of-order segments are held, retransmissions and overlaps are
 * trimmed, holes become loss — never glued), then shown as the kernel would
 * have shown it to the two processes: a client socket and a server socket,
 * each in its own pseudo-process named after its address. Replay then gives
 * client and server spans, joined by connection-pair matching.
 */
import type { CaptureHeader, ProcessInfo } from '../../events/capture';
import { CONSTANTS } from '../../events/layout';
import type { Endpoint, Event } from '../../events/types';
import { detectProtocol, NEED_MORE } from '../../parsers/detect';
import { FileSource, readPackets, type LinkPacket } from './file';
import { decodePacket, type TcpSegment } from './packet';

export interface PcapImportOptions {
  /** 'both': client and server sockets; 'server': only the server side (each message once, for `loupe parse`). */
  views: 'both' | 'server';
  /** Out-of-order bytes held per direction before the hole is declared lost. */
  maxPendingBytes: number;
  seed: string;
}

export const DEFAULT_PCAP_OPTIONS: PcapImportOptions = { views: 'both', maxPendingBytes: 1 << 20, seed: '0000000000000001' };

export interface PcapImportStats {
  packets: number;
  tcpSegments: number;
  flows: number;
  skipped: Record<string, number>;
  /** Packets that could not be decoded: first few, with file offsets. */
  malformed: Array<{ offset: number; reason: string }>;
  malformedCount: number;
  retransmittedBytes: number;
  gaps: number;
  gapBytes: number;
  truncatedBytes: number;
  /** The file ended inside its last record: where, and what was missing (the packets before it are all read). */
  truncatedEnd?: { offset: number; reason: string };
}

interface Held {
  seq: number;
  payload: Buffer;
  missing: number;
  ts: bigint;
}

interface Direction {
  next: number | undefined;
  pending: Held[];
  pendingBytes: number;
  fin: boolean;
}

interface Flow {
  index: number;
  client: Endpoint | undefined;
  server: Endpoint | undefined;
  dirs: Map<string, Direction>;
  clientPid: number;
  serverPid: number;
  closed: boolean;
  /** Capture time of the close: a closed flow is forgotten 2 MSL after it, so a long capture's memory is bounded by its open flows. */
  closedAt: bigint;
  /** Segments seen before we knew which side is the client. */
  early: Array<{ seg: TcpSegment; ts: bigint }>;
}

const key = (e: Endpoint) => `${e.addr}|${e.port}`;
const label = (e: Endpoint) => (e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`);

/** Is sequence number a before b (mod 2^32)? */
const seqDelta = (a: number, b: number) => (a - b) | 0;

/**
 * How long a closed flow's ports are remembered (TCP's TIME_WAIT, 2 × 60 s):
 * a late ACK or retransmitted FIN on them is not a new connection.
 */
const CLOSED_FLOW_MEMORY_NS = 120_000_000_000n;
/** Packets between sweeps of forgotten flows: a sweep walks every flow, so not per packet. */
const SWEEP_EVERY_PACKETS = 65_536;

export class PcapImporter {
  /** Events not yet taken: `take()` hands them out, so a long capture streams. */
  private events: Event[] = [];
  readonly stats: PcapImportStats = {
    packets: 0,
    tcpSegments: 0,
    flows: 0,
    skipped: {},
    malformed: [],
    malformedCount: 0,
    retransmittedBytes: 0,
    gaps: 0,
    gapBytes: 0,
    truncatedBytes: 0,
  };
  private readonly flows = new Map<string, Flow>();
  private readonly pids = new Map<string, number>();
  private readonly processes: ProcessInfo[] = [];
  private lastTs = 0n;

  constructor(private readonly options: PcapImportOptions = DEFAULT_PCAP_OPTIONS) {}

  addFile(buf: Buffer, file: string): void {
    for (const packet of readPackets(buf, file, (t) => (this.stats.truncatedEnd = t))) this.addPacket(packet);
  }

  addPacket(packet: LinkPacket): void {
    this.stats.packets++;
    if (packet.ts > this.lastTs) this.lastTs = packet.ts;
    if (this.stats.packets % SWEEP_EVERY_PACKETS === 0) this.forgetClosedFlows();
    const decoded = decodePacket(packet.linkType, packet.data);
    if (decoded.kind === 'skip') {
      this.stats.skipped[decoded.reason] = (this.stats.skipped[decoded.reason] ?? 0) + 1;
      return;
    }
    if (decoded.kind === 'malformed') {
      this.stats.malformedCount++;
      if (this.stats.malformed.length < 20) this.stats.malformed.push({ offset: packet.offset, reason: decoded.reason });
      return;
    }
    this.stats.tcpSegments++;
    this.onSegment(decoded.segment, packet.ts);
  }

  get pendingEvents(): number {
    return this.events.length;
  }

  /** The events made since the last call. */
  take(): Event[] {
    const taken = this.events;
    this.events = [];
    return taken;
  }

  /** The pseudo-processes named so far (complete after `finish()`); the header's list is this array. */
  get processList(): readonly ProcessInfo[] {
    return this.processes;
  }

  private forgetClosedFlows(): void {
    for (const [k, flow] of this.flows) if (flow.closed && this.lastTs - flow.closedAt > CLOSED_FLOW_MEMORY_NS) this.flows.delete(k);
  }

  /** End of input: holes still open become loss; flows left open stay open (the capture ended, they did not close). */
  finish(): { header: CaptureHeader; events: Event[] } {
    if (this.finished) return { header: this.header(), events: this.take() };
    this.finished = true;
    for (const flow of this.flows.values()) {
      if (!flow.client) this.decideByPorts(flow);
      for (const [src, dir] of flow.dirs) while (dir.pending.length > 0) this.forceGap(flow, src, dir);
    }
    return { header: this.header(), events: this.take() };
  }

  private finished = false;

  header(): CaptureHeader {
    return {
      eventsVersion: CONSTANTS.LOUPE_EVENTS_VERSION,
      seed: this.options.seed,
      host: { hostname: 'pcap', kernel: 'unknown', arch: 'unknown' },
      bootTimeNs: '0',
      processes: this.processes,
      config: { source: 'pcap', views: this.options.views },
      createdBy: 'loupe import',
    };
  }

  private pidFor(name: string): number {
    let pid = this.pids.get(name);
    if (pid === undefined) {
      pid = 1000 + this.pids.size;
      this.pids.set(name, pid);
      this.processes.push({ pid, exe: name, service: name });
    }
    return pid;
  }

  private onSegment(seg: TcpSegment, ts: bigint): void {
    const a = key(seg.src);
    const b = key(seg.dst);
    const flowKey = a < b ? `${a}>${b}` : `${b}>${a}`;
    let flow = this.flows.get(flowKey);
    if (!flow || (flow.closed && seg.flags.syn && !seg.flags.ack)) {
      // A new SYN on a finished flow's ports is a new connection (port reuse).
      flow = {
        index: ++this.stats.flows,
        client: undefined,
        server: undefined,
        dirs: new Map(),
        clientPid: 0,
        serverPid: 0,
        closed: false,
        closedAt: 0n,
        early: [],
      };
      this.flows.set(flowKey, flow);
    }
    if (flow.closed) return;
    if (!flow.client) {
      if (seg.flags.syn) this.decide(flow, seg.flags.ack ? seg.dst : seg.src, seg.flags.ack ? seg.src : seg.dst, ts);
      else if (seg.payload.length > 0) {
        const v = detectProtocol(seg.payload);
        const sender = v !== NEED_MORE && v !== undefined ? v.sender : undefined;
        if (sender === 'client') this.decide(flow, seg.src, seg.dst, ts);
        else if (sender === 'server') this.decide(flow, seg.dst, seg.src, ts);
        else this.decideByPorts(flow, seg, ts);
      } else {
        flow.early.push({ seg, ts });
        return;
      }
    }
    this.segment(flow, seg, ts);
  }

  /** No handshake and nothing recognisable: the lower (well-known) port is the server's. */
  private decideByPorts(flow: Flow, seg?: TcpSegment, ts?: bigint): void {
    const first = seg ?? flow.early[0]?.seg;
    if (!first) return;
    const srcIsServer = first.src.port < first.dst.port;
    if (srcIsServer) this.decide(flow, first.dst, first.src, ts ?? flow.early[0]!.ts);
    else this.decide(flow, first.src, first.dst, ts ?? flow.early[0]!.ts);
  }

  private decide(flow: Flow, client: Endpoint, server: Endpoint, ts: bigint): void {
    flow.client = client;
    flow.server = server;
    flow.serverPid = this.pidFor(label(server));
    flow.clientPid = this.pidFor(client.addr);
    const family = client.addr.includes(':') ? 6 : 4;
    const base = { ts, cpu: 0, fd: flow.index, family, protocol: 6, cookie: BigInt(flow.index) } as const;
    if (this.options.views === 'both') {
      this.events.push({ ...base, type: 'sock_open', pid: flow.clientPid, tid: flow.clientPid, role: 'client', local: client, remote: server });
    }
    this.events.push({ ...base, type: 'sock_open', pid: flow.serverPid, tid: flow.serverPid, role: 'server', local: server, remote: client });
    const early = flow.early;
    flow.early = [];
    for (const e of early) this.segment(flow, e.seg, e.ts);
  }

  private direction(flow: Flow, src: string): Direction {
    let d = flow.dirs.get(src);
    if (!d) {
      d = { next: undefined, pending: [], pendingBytes: 0, fin: false };
      flow.dirs.set(src, d);
    }
    return d;
  }

  private segment(flow: Flow, seg: TcpSegment, ts: bigint): void {
    const src = key(seg.src);
    const dir = this.direction(flow, src);
    if (seg.flags.syn) {
      dir.next = (seg.seq + 1) >>> 0;
      return;
    }
    if (seg.flags.ack) this.acknowledged(flow, key(seg.dst), seg.ack);
    const length = seg.payload.length + seg.missing;
    if (length > 0) {
      if (dir.next === undefined) dir.next = seg.seq; // joined mid-connection
      this.place(flow, src, dir, { seq: seg.seq, payload: seg.payload, missing: seg.missing, ts });
    }
    if (seg.flags.rst) this.close(flow, ts);
    else if (seg.flags.fin) {
      dir.fin = true;
      if ([...flow.dirs.values()].filter((d) => d.fin).length === 2) this.close(flow, ts);
    }
  }

  private place(flow: Flow, src: string, dir: Direction, held: Held): void {
    const delta = seqDelta(held.seq, dir.next!);
    if (delta > 0) {
      // A hole before this segment: hold it until the hole fills or we give up on it.
      // A copy: the packet's bytes view the file reader's window, which moves on.
      dir.pending.push({ ...held, payload: Buffer.from(held.payload) });
      dir.pendingBytes += held.payload.length + held.missing;
      if (dir.pendingBytes > this.options.maxPendingBytes) this.forceGap(flow, src, dir);
      return;
    }
    this.deliver(flow, src, dir, held);
    this.drain(flow, src, dir);
  }

  /** Deliver what of `held` lies at or after dir.next (retransmitted bytes are dropped). */
  private deliver(flow: Flow, src: string, dir: Direction, held: Held): void {
    const skip = -seqDelta(held.seq, dir.next!);
    const length = held.payload.length + held.missing;
    if (skip >= length) {
      this.stats.retransmittedBytes += length;
      return;
    }
    this.stats.retransmittedBytes += skip;
    let payload = held.payload;
    let missing = held.missing;
    if (skip <= payload.length) payload = payload.subarray(skip);
    else {
      missing -= skip - payload.length;
      payload = payload.subarray(payload.length);
    }
    this.stats.truncatedBytes += missing;
    this.emitData(flow, src, payload, missing, held.ts);
    dir.next = (dir.next! + length - skip) >>> 0;
  }

  private drain(flow: Flow, src: string, dir: Direction): void {
    for (;;) {
      const i = dir.pending.findIndex((h) => seqDelta(h.seq, dir.next!) <= 0);
      if (i < 0) return;
      const [held] = dir.pending.splice(i, 1);
      dir.pendingBytes -= held!.payload.length + held!.missing;
      this.deliver(flow, src, dir, held!);
    }
  }

  /**
   * The peer acknowledged up to `ack`: bytes before it that we hold a hole for
   * were received by the peer and missed by the capture. Declare them lost now,
   * so messages come out in the order they happened, not at close.
   */
  private acknowledged(flow: Flow, src: string, ack: number): void {
    const dir = flow.dirs.get(src);
    if (!dir || dir.next === undefined || dir.pending.length === 0) return;
    while (dir.pending.length > 0 && seqDelta(ack, dir.next) > 0) {
      let earliest = dir.pending[0]!;
      for (const h of dir.pending) if (seqDelta(h.seq, earliest.seq) < 0) earliest = h;
      if (seqDelta(earliest.seq, ack) > 0) {
        // Lost up to ack for sure; what lies between ack and the held bytes may still come.
        this.gapTo(flow, src, dir, ack, earliest.ts);
        return;
      }
      this.forceGap(flow, src, dir);
    }
  }

  private gapTo(flow: Flow, src: string, dir: Direction, seq: number, ts: bigint): void {
    const hole = seqDelta(seq, dir.next!);
    if (hole <= 0) return;
    this.stats.gaps++;
    this.stats.gapBytes += hole;
    this.emitData(flow, src, Buffer.alloc(0), hole, ts);
    dir.next = seq >>> 0;
  }

  /** Give up on the earliest hole: report its bytes as lost and go on after it. */
  private forceGap(flow: Flow, src: string, dir: Direction): void {
    let earliest = dir.pending[0]!;
    for (const h of dir.pending) if (seqDelta(h.seq, earliest.seq) < 0) earliest = h;
    this.gapTo(flow, src, dir, earliest.seq, earliest.ts);
    this.drain(flow, src, dir);
  }

  /** Data as the two sockets saw it, in records no larger than a kernel payload copy. */
  private emitData(flow: Flow, src: string, payload: Buffer, missing: number, ts: bigint): void {
    const fromClient = src === key(flow.client!);
    const views: Array<{ pid: number; direction: 'egress' | 'ingress' }> = [];
    if (this.options.views === 'both') views.push({ pid: flow.clientPid, direction: fromClient ? 'egress' : 'ingress' });
    views.push({ pid: flow.serverPid, direction: fromClient ? 'ingress' : 'egress' });
    const max = CONSTANTS.LOUPE_MAX_PAYLOAD;
    const pieces: Array<[Buffer, number]> = [];
    for (let i = 0; i < payload.length; i += max) pieces.push([payload.subarray(i, i + max), 0]);
    if (missing > 0 || pieces.length === 0) pieces.push([Buffer.alloc(0), missing]);
    for (const [data, lost] of pieces) {
      for (const v of views) {
        this.events.push({
          type: 'data',
          ts,
          pid: v.pid,
          tid: v.pid,
          cpu: 0,
          fd: flow.index,
          direction: v.direction,
          source: v.direction === 'egress' ? 'write' : 'read',
          flags: lost > 0 ? CONSTANTS.LOUPE_DATA_F_TRUNCATED : 0,
          cookie: BigInt(flow.index),
          bytes: data.length + lost,
          data,
        });
      }
    }
  }

  private close(flow: Flow, ts: bigint): void {
    if (flow.closed || !flow.client) return;
    for (const [src, dir] of flow.dirs) while (dir.pending.length > 0) this.forceGap(flow, src, dir);
    flow.closed = true;
    flow.closedAt = ts;
    flow.dirs.clear();
    const base = { type: 'sock_close' as const, ts, cpu: 0, fd: flow.index, cookie: BigInt(flow.index) };
    if (this.options.views === 'both') this.events.push({ ...base, pid: flow.clientPid, tid: flow.clientPid });
    this.events.push({ ...base, pid: flow.serverPid, tid: flow.serverPid });
  }
}

export function importPcap(buf: Buffer, file: string, options: Partial<PcapImportOptions> = {}) {
  const importer = new PcapImporter({ ...DEFAULT_PCAP_OPTIONS, ...options });
  importer.addFile(buf, file);
  return { ...importer.finish(), stats: importer.stats };
}

/** Events handed out per batch while streaming a pcap file. */
const STREAM_BATCH_EVENTS = 4096;

export interface PcapStream {
  /** The header's process list fills as the file is read: complete once `batches` is exhausted. */
  header: CaptureHeader;
  batches: Iterable<Event[]>;
  stats: PcapImportStats;
}

/**
 * A pcap file as a stream of event batches, read through a window: memory is
 * bounded by the open flows and their held out-of-order bytes, not the file
 * (measured in BENCHMARKS.md).
 */
export function streamPcapFile(fd: number, file: string, options: Partial<PcapImportOptions> = {}): PcapStream {
  const importer = new PcapImporter({ ...DEFAULT_PCAP_OPTIONS, ...options });
  const header = importer.header();
  function* batches(): Generator<Event[]> {
    try {
      for (const packet of readPackets(new FileSource(fd), file, (t) => (importer.stats.truncatedEnd = t))) {
        importer.addPacket(packet);
        if (importer.pendingEvents >= STREAM_BATCH_EVENTS) yield importer.take();
      }
    } catch (e) {
      yield importer.take(); // every packet before the fault is handed on before the error
      throw e;
    }
    yield importer.finish().events;
  }
  return { header, batches: batches(), stats: importer.stats };
}
