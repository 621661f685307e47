/**
 * pcap and pcapng files -> link-layer packets with nanosecond timestamps.
 * Written here rather than taken from npm: the packages found read classic
 * pcap only or are unmaintained, and none reports byte offsets on bad input.
 */
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

export function* readPackets(buf: Buffer, file: string, onTruncatedEnd: (t: TruncatedEnd) => void = (t) => {
  throw new CaptureError(file, `byte ${t.offset}`, t.reason);
}): Generator<LinkPacket> {
  if (buf.length < 4) throw new CaptureError(file, 'byte 0', 'too short to be a pcap or pcapng file');
  if (buf.readUInt32LE(0) === PCAPNG_SHB) yield* readPcapng(buf, file, onTruncatedEnd);
  else yield* readPcap(buf, file, onTruncatedEnd);
}

function* readPcap(buf: Buffer, file: string, onTruncatedEnd: (t: TruncatedEnd) => void): Generator<LinkPacket> {
  if (buf.length < 24) throw new CaptureError(file, 'byte 0', 'truncated: the pcap file header needs 24 bytes');
  const magicLE = buf.readUInt32LE(0);
  const little = magicLE === PCAP_MAGIC_US || magicLE === PCAP_MAGIC_NS;
  const magic = little ? magicLE : buf.readUInt32BE(0);
  if (magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) {
    throw new CaptureError(file, 'byte 0', `not a pcap file: magic 0x${buf.readUInt32BE(0).toString(16)}`);
  }
  const u32 = (at: number) => (little ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const fractionNs = magic === PCAP_MAGIC_NS ? 1n : 1000n;
  const linkType = u32(20) & 0x0fffffff; // the upper bits carry FCS information
  let at = 24;
  while (at < buf.length) {
    if (buf.length - at < 16) return onTruncatedEnd({ offset: at, reason: `truncated: a packet record header needs 16 bytes, the file has ${buf.length - at} left` });
    const seconds = BigInt(u32(at));
    const fraction = BigInt(u32(at + 4));
    const captured = u32(at + 8);
    const original = u32(at + 12);
    if (captured > 256 * 1024) throw new CaptureError(file, `byte ${at}`, `packet record claims ${captured} captured bytes: the file is corrupt`);
    if (buf.length - at - 16 < captured) return onTruncatedEnd({ offset: at, reason: `truncated: the packet needs ${captured} bytes, the file has ${buf.length - at - 16} left` });
    yield { ts: seconds * 1_000_000_000n + fraction * fractionNs, linkType, data: buf.subarray(at + 16, at + 16 + captured), originalLength: Math.max(original, captured), offset: at };
    at += 16 + captured;
  }
}

interface Interface {
  linkType: number;
  snapLength: number;
  /** Timestamp units per second. */
  unitsPerSecond: bigint;
}

function* readPcapng(buf: Buffer, file: string, onTruncatedEnd: (t: TruncatedEnd) => void): Generator<LinkPacket> {
  let little = true;
  let interfaces: Interface[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 12) return onTruncatedEnd({ offset: at, reason: `truncated: a pcapng block needs at least 12 bytes, the file has ${buf.length - at} left` });
    const typeLE = buf.readUInt32LE(at);
    if (typeLE === PCAPNG_SHB) {
      const order = buf.readUInt32LE(at + 8);
      if (order === PCAPNG_BYTE_ORDER) little = true;
      else if (buf.readUInt32BE(at + 8) === PCAPNG_BYTE_ORDER) little = false;
      else throw new CaptureError(file, `byte ${at + 8}`, 'pcapng section header has no valid byte-order magic');
      interfaces = []; // interface ids are per section
    }
    const u32 = (o: number) => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const u16 = (o: number) => (little ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
    const type = u32(at);
    const length = u32(at + 4);
    if (length < 12 || length % 4 !== 0) throw new CaptureError(file, `byte ${at}`, `pcapng block length ${length} is invalid (must be a multiple of 4, at least 12)`);
    if (buf.length - at < length) return onTruncatedEnd({ offset: at, reason: `truncated: the pcapng block needs ${length} bytes, the file has ${buf.length - at} left` });
    if (u32(at + length - 4) !== length) throw new CaptureError(file, `byte ${at + length - 4}`, `pcapng block trailer length ${u32(at + length - 4)} differs from its header (${length}): the file is corrupt`);
    const body = at + 8;
    const bodyEnd = at + length - 4;
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
        yield { ts: (ts * 1_000_000_000n) / iface.unitsPerSecond, linkType: iface.linkType, data: buf.subarray(body + 20, body + 20 + captured), originalLength: Math.max(original, captured), offset: at };
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
