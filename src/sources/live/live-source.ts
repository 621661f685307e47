/**
 * The live source: Loupe's BPF objects loaded through the addon, configured
 * from the options, and drained in batches of raw records. It hands records
 * on exactly as the kernel wrote them; deciding what they mean is the core's.
 */
import { randomBytes } from 'node:crypto';
import { layoutOf, offsetOf } from '../../events/layout';
import { BPF_OBJECTS, liveSupport, loadAddon, type Lockdown, type NativeAgent } from './system';

export interface LiveOptions {
  /** Watch only these processes (and children they fork). */
  pids?: number[];
  /** Watch only connections with one of these ports at either end. */
  ports?: number[];
  /** Payload bytes copied per data record (at most LOUPE_MAX_PAYLOAD). */
  maxPayload: number;
  /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
  ringBytes: number;
  /** OpenSSL libraries whose SSL_read/SSL_write give HTTPS plaintext; [] for none. */
  tlsLibraries: string[];
}

/** The TLS probes of bpf/tls.bpf.c, by the library function each goes on. */
const TLS_PROBES: Array<[string, string]> = [
  ['ssl_write', 'SSL_write'], ['ssl_write_ret', 'SSL_write'],
  ['ssl_read', 'SSL_read'], ['ssl_read_ret', 'SSL_read'],
  ['ssl_write_ex', 'SSL_write_ex'], ['ssl_write_ex_ret', 'SSL_write_ex'],
  ['ssl_read_ex', 'SSL_read_ex'], ['ssl_read_ex_ret', 'SSL_read_ex'],
];

export interface LiveStarted {
  programs: string[];
  lockdown: Lockdown;
  /** Kernel monotonic and wall-clock time read together, in ns. */
  clocks: { realtime: bigint; monotonic: bigint };
}

export class LiveError extends Error {}

function encodeConfig(fields: Record<string, number | bigint>): Buffer {
  const buf = Buffer.alloc(layoutOf('loupe_config').size);
  for (const [name, value] of Object.entries(fields)) {
    const at = offsetOf('loupe_config', name);
    const size = layoutOf('loupe_config').members[name]!.size;
    if (size === 8) buf.writeBigUInt64LE(BigInt(value), at);
    else if (size === 4) buf.writeUInt32LE(Number(value), at);
    else buf.writeUInt16LE(Number(value), at);
  }
  return buf;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

/** Split an addon batch (u32 length + bytes, repeated) into records; views, no copies. */
export function splitBatch(batch: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let at = 0;
  while (at + 4 <= batch.length) {
    const len = batch.readUInt32LE(at);
    if (at + 4 + len > batch.length) throw new LiveError(`ring-buffer batch cut inside a record at byte ${at}`);
    records.push(batch.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return records;
}

export class LiveSource {
  private agent: NativeAgent | undefined;
  private ended: Promise<void> | undefined;

  constructor(
    private readonly options: LiveOptions,
    private readonly onRecords: (records: Buffer[]) => void,
  ) {}

  /** Load, configure, attach and start draining. Throws a LiveError that names what is missing. */
  start(): LiveStarted {
    const support = liveSupport();
    if (!support.ok) throw new LiveError(support.reason);
    const addon = loadAddon();
    const agent = new addon.Agent();
    this.agent = agent;
    try {
      agent.load(BPF_OBJECTS, this.options.ringBytes);
      const filterPids = (this.options.pids?.length ?? 0) > 0;
      const filterPorts = (this.options.ports?.length ?? 0) > 0;
      for (const pid of this.options.pids ?? []) this.watchPid(pid);
      for (const port of this.options.ports ?? []) agent.mapUpdate('loupe_ports', u16(port), Buffer.from([1]));
      agent.mapUpdate('loupe_config', u32(0), encodeConfig({
        agent_pid: process.pid,
        max_payload: this.options.maxPayload,
        filter_pids: filterPids ? 1 : 0,
        filter_ports: filterPorts ? 1 : 0,
        // Secret per run: cookies stay stable within a capture and say nothing about kernel addresses.
        cookie_key: randomBytes(8).readBigUInt64LE(),
      }));
      let resolveEnd!: () => void;
      this.ended = new Promise((resolve) => (resolveEnd = resolve));
      agent.start((batch) => {
        if (batch === null) {
          resolveEnd();
          return;
        }
        this.onRecords(splitBatch(batch));
      });
      agent.attach();
      for (const lib of this.options.tlsLibraries) {
        for (const [program, fn] of TLS_PROBES) agent.attachUprobe(program, lib, fn, -1);
      }
    } catch (e) {
      this.agent = undefined;
      agent.stop();
      agent.close();
      throw e instanceof LiveError ? e : new LiveError((e as Error).message);
    }
    return { programs: agent.programs(), lockdown: support.lockdown, clocks: addon.clocks() };
  }

  /** Add a process to the kernel's filter (used when --exe matches an exec). */
  watchPid(pid: number): void {
    this.agent?.mapUpdate('loupe_pids', u32(pid), Buffer.from([1]));
  }

  /** Detach at once, then deliver every record still in the ring buffer before resolving. */
  async stop(): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    this.agent = undefined;
    agent.stop();
    await this.ended;
    agent.close();
  }
}
