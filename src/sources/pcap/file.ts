/**
 * pcap and pcapng files -> link-layer packets with nanosecond timestamps.
 * Written here rather than taken from npm: the packages found read classic
 * pcap only or are unmaintained, and none reports byte offsets on bad input.
 */
import * as fs from 'node:fs';
import { CaptureError } from '../../events/capture';

export interface LinkPacket {
  /** Unix time in ns. */
  ts: bigint;
  linkType: number;
  data: Buffer;
  /** Length of the packet on the wire; more than data.length when the capture cut it. */
  originalLength: number;
  /** File byte offset of the record, for messages. */
  offset: number;
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER = 0x1a2b3c4d;

export function isPcap(head: Buffer): boolean {
  if (head.length < 4) return false;
  const le = head.readUInt32LE(0);
  const be = head.readUInt32BE(0);
  return [PCAP_MAGIC_US, PCAP_MAGIC_NS].includes(le) || [PCAP_MAGIC_US, PCAP_MAGIC_NS].includes(be) || le === PCAPNG_SHB;
}

/**
 * The file ended inside its last record: the capture was cut (a tcpdump
 * killed, a copy interrupted, a full disk). As tcpdump and Wireshark do, every
 * complete packet before it is read and the cut is said, not made an error.
 */
export interface TruncatedEnd {
  offset: number;
  reason: string;
}

/**
 * Bytes of a pcap by absolute offset. A file is read through a window, so a
 * multi-gigabyte capture is parsed in bounded memory: the window holds the
 * record being read, and a packet's bytes are a view of it (a consumer that
 * keeps them past the next packet copies them).
 */
export interface ByteSource {
  readonly size: number;
  read(at: number, length: number): Buffer;
}

export class BufferSource implements ByteSource {
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(at: number, length: number): Buffer {
    return this.buf.subarray(at, at + length);
  }
}

/** 1 MiB reads: a 4-record-per-syscall minimum at the 256 KiB record bound; larger reads measured no faster. */
const WINDOW_BYTES = 1 << 20;

export class FileSource implements ByteSource {
  readonly size: number;
  private window = Buffer.alloc(0);
  private base = 0;
  constructor(private readonly fd: number) {
    this.size = fs.fstatSync(fd).size;
  }
  read(at: number, length: number): Buffer {
    if (at < this.base || at + length > this.base + this.window.length) {
      // A fresh window each time: packets handed out earlier still view the old one.
      const want = Math.min(Math.max(length, WINDOW_BYTES), this.size - at);
      const window = Buffer.allocUnsafe(want);
      let n = 0;
      while (n < want) {
        const got = fs.readSync(this.fd, window, n, want - n, at + n);
        if (got === 0) break;
        n += got;
      }
      this.window = window.subarray(0, n);
      this.base = at;
    }
    return this.window.subarray(at - this.base, at - this.base + length);
  }
}

/** A pcapng block longer than this is corrupt (a packet is at most 256 KiB; this bounds what one block may make us read). */
const MAX_PCAPNG_BLOCK = 16 << 20;

export function* readPackets(
  input: Buffer | ByteSource,
  file: string,
  onTruncatedEnd: (t: TruncatedEnd) => void = (t) => {
    throw new CaptureError(file, `byte ${t.offset}`, t.reason);
  },
): Generator<LinkPacket> {
  const src = Buffer.isBuffer(input) ? new BufferSource(input) : input;
  if (src.size < 4) throw new CaptureError(file, 'byte 0', 'too short to be a pcap or pcapng file');
  if (src.read(0, 4).readUInt32LE(0) === PCAPNG_SHB) yield* readPcapng(src, file, onTruncatedEnd);
  else yield* readPcap(src, file, onTruncatedEnd);
}

function* readPcap(src: ByteSource, file: string, onTruncatedEnd: (t: TruncatedEnd) => void): Generator<LinkPacket> {
  if (src.size < 24) throw new CaptureError(file, 'byte 0', 'truncated: the pcap file header needs 24 bytes');
  const head = Buffer.from(src.read(0, 24));
  const magicLE = head.readUInt32LE(0);
  const little = magicLE === PCAP_MAGIC_US || magicLE === PCAP_MAGIC_NS;
  const magic = little ? magicLE : head.readUInt32BE(0);
  if (magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) {
    throw new CaptureError(file, 'byte 0', `not a pcap file: magic 0x${head.readUInt32BE(0).toString(16)}`);
  }
  const u32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const fractionNs = magic === PCAP_MAGIC_NS ? 1n : 1000n;
  const linkType = u32(head, 20) & 0x0fffffff; // the upper bits carry FCS information
  const size = src.size;
  let at = 24;
  while (at < size) {
    if (size - at < 16) return onTruncatedEnd({ offset: at, reason: `truncated: a packet record header needs 16 bytes, the file has ${size - at} left` });
    const record = src.read(at, 16);
    const seconds = BigInt(u32(record, 0));
    const fraction = BigInt(u32(record, 4));
    const captured = u32(record, 8);
    const original = u32(record, 12);
    if (captured > 256 * 1024) throw new CaptureError(file, `byte ${at}`, `packet record claims ${captured} captured bytes: the file is corrupt`);
    if (size - at - 16 < captured) return onTruncatedEnd({ offset: at, reason: `truncated: the packet needs ${captured} bytes, the file has ${size - at - 16} left` });
    yield { ts: seconds * 1_000_000_000n + fraction * fractionNs, linkType, data: src.read(at + 16, captured), originalLength: Math.max(original, captured), offset: at };
    at += 16 + captured;
  }
}

interface Interface {
  linkType: number;
  snapLength: number;
  /** Timestamp units per second. */
  unitsPerSecond: bigint;
}

function* readPcapng(src: ByteSource, file: string, onTruncatedEnd: (t: TruncatedEnd) => void): Generator<LinkPacket> {
  let little = true;
  let interfaces: Interface[] = [];
  const size = src.size;
  let at = 0;
  while (at < size) {
    if (size - at < 12) return onTruncatedEnd({ offset: at, reason: `truncated: a pcapng block needs at least 12 bytes, the file has ${size - at} left` });
    const head = src.read(at, 12);
    const typeLE = head.readUInt32LE(0);
    if (typeLE === PCAPNG_SHB) {
      const order = head.readUInt32LE(8);
      if (order === PCAPNG_BYTE_ORDER) little = true;
      else if (head.readUInt32BE(8) === PCAPNG_BYTE_ORDER) little = false;
      else throw new CaptureError(file, `byte ${at + 8}`, 'pcapng section header has no valid byte-order magic');
      interfaces = []; // interface ids are per section
    }
    const type = little ? head.readUInt32LE(0) : head.readUInt32BE(0);
    const length = little ? head.readUInt32LE(4) : head.readUInt32BE(4);
    if (length < 12 || length % 4 !== 0) throw new CaptureError(file, `byte ${at}`, `pcapng block length ${length} is invalid (must be a multiple of 4, at least 12)`);
    if (length > MAX_PCAPNG_BLOCK)
      throw new CaptureError(file, `byte ${at}`, `pcapng block claims ${length} bytes, more than the ${MAX_PCAPNG_BLOCK} a block may hold here: the file is corrupt`);
    if (size - at < length) return onTruncatedEnd({ offset: at, reason: `truncated: the pcapng block needs ${length} bytes, the file has ${size - at} left` });
    // Offsets below are within the block: `buf` is the block.
    const buf = src.read(at, length);
    const u32 = (o: number) => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number) => (little ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    if (u32(length - 4) !== length)
      throw new CaptureError(file, `byte ${at + length - 4}`, `pcapng block trailer length ${u32(length - 4)} differs from its header (${length}): the file is corrupt`);
    const body = 8;
    const bodyEnd = length - 4;
    switch (type) {
      case 1: {
        // Interface Description Block
        const iface: Interface = { linkType: u16(body), snapLength: u32(body + 4), unitsPerSecond: 1_000_000n };
        for (const [code, value] of options(buf, body + 8, bodyEnd, u16)) {
          if (code === 9 && value.length >= 1) {
            const r = value[0]!;
            iface.unitsPerSecond = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r);
          }
        }
        interfaces.push(iface);
        break;
      }
      case 6:
      case 2: {
        // Enhanced Packet Block (6) / obsolete Packet Block (2)
        const id = type === 6 ? u32(body) : u16(body);
        const iface = interfaces[id];
        if (!iface) throw new CaptureError(file, `byte ${at}`, `packet refers to interface ${id}, which no interface block described`);
        const ts = (BigInt(u32(body + 4)) << 32n) | BigInt(u32(body + 8));
        const captured = u32(body + 12);
        const original = u32(body + 16);
        if (body + 20 + captured > bodyEnd) throw new CaptureError(file, `byte ${at}`, `packet claims ${captured} captured bytes but its block holds ${bodyEnd - body - 20}`);
        yield {
          ts: (ts * 1_000_000_000n) / iface.unitsPerSecond,
          linkType: iface.linkType,
          data: buf.subarray(body + 20, body + 20 + captured),
          originalLength: Math.max(original, captured),
          offset: at,
        };
        break;
      }
      case 3: {
        // Simple Packet Block: interface 0, no timestamp
        const iface = interfaces[0];
        if (!iface) throw new CaptureError(file, `byte ${at}`, 'simple packet block before any interface block');
        const original = u32(body);
        const captured = Math.min(original, bodyEnd - body - 4, iface.snapLength || Infinity);
        yield { ts: 0n, linkType: iface.linkType, data: buf.subarray(body + 4, body + 4 + captured), originalLength: original, offset: at };
        break;
      }
      default:
        break; // name resolution, statistics, custom blocks: not needed
    }
    at += length;
  }
}

function* options(buf: Buffer, from: number, to: number, u16: (o: number) => number): Generator<[number, Buffer]> {
  let at = from;
  while (at + 4 <= to) {
    const code = u16(at);
    const length = u16(at + 2);
    if (code === 0) return;
    if (at + 4 + length > to) return;
    yield [code, buf.subarray(at + 4, at + 4 + length)];
    at += 4 + ((length + 3) & ~3);
  }
}
