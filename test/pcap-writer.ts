/** Builds pcap and pcapng files packet by packet, for tests that need exact TCP layouts. */
import { parseAddr } from '../src/events/addr';

export interface Seg {
  src: string; // "ip:port" or "[v6]:port"
  dst: string;
  seq: number;
  ack?: number;
  flags?: string; // letters of S A F R P
  payload?: Buffer | string;
  /** Bytes of the payload the capture keeps (snap length effect). */
  keep?: number;
  ts?: bigint;
}

function parseEp(s: string): { addr: Uint8Array; port: number; v6: boolean } {
  const m = /^(?:\[(.+)\]|([\d.]+)):(\d+)$/.exec(s)!;
  const v6 = m[1] !== undefined;
  return { addr: parseAddr((m[1] ?? m[2])!, v6 ? 6 : 4), port: Number(m[3]), v6 };
}

export type Link = 'ethernet' | 'sll' | 'null' | 'raw';
export const LINK_TYPE: Record<Link, number> = { ethernet: 1, sll: 113, null: 0, raw: 101 };

export interface WriterOptions {
  vlan?: boolean;
  bigEndian?: boolean;
  link?: Link;
  /** Bytes on the wire the capture did not keep after the IP packet (an Ethernet FCS, say). */
  trailerNotCaptured?: number;
}

function linkHeader(link: Link, v6: boolean, vlan: boolean): Buffer {
  const ethertype = v6 ? 0x86dd : 0x0800;
  switch (link) {
    case 'sll': {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(0, 0); // packet sent to us
      h.writeUInt16BE(772, 2); // ARPHRD_LOOPBACK
      h.writeUInt16BE(6, 4);
      h.writeUInt16BE(ethertype, 14);
      return h;
    }
    case 'null': {
      const h = Buffer.alloc(4);
      h.writeUInt32LE(v6 ? 24 : 2, 0); // host byte order of the capturing machine
      return h;
    }
    case 'raw':
      return Buffer.alloc(0);
    default: {
      const h = Buffer.alloc(vlan ? 18 : 14);
      if (vlan) {
        h.writeUInt16BE(0x8100, 12);
        h.writeUInt16BE(42, 14);
        h.writeUInt16BE(ethertype, 16);
      } else h.writeUInt16BE(ethertype, 12);
      return h;
    }
  }
}

export function tcpPacket(seg: Seg, opts: WriterOptions = {}): { frame: Buffer; originalLength: number } {
  const src = parseEp(seg.src);
  const dst = parseEp(seg.dst);
  const payload = Buffer.from(seg.payload ?? '');
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(src.port, 0);
  tcp.writeUInt16BE(dst.port, 2);
  tcp.writeUInt32BE(seg.seq >>> 0, 4);
  tcp.writeUInt32BE((seg.ack ?? 0) >>> 0, 8);
  tcp[12] = 5 << 4;
  const f = seg.flags ?? 'A';
  tcp[13] = (f.includes('F') ? 1 : 0) | (f.includes('S') ? 2 : 0) | (f.includes('R') ? 4 : 0) | (f.includes('P') ? 8 : 0) | (f.includes('A') ? 16 : 0);
  tcp.writeUInt16BE(65535, 14);
  let ip: Buffer;
  if (src.v6) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(20 + payload.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    Buffer.from(src.addr).copy(ip, 8);
    Buffer.from(dst.addr).copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + payload.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from(src.addr.subarray(0, 4)).copy(ip, 12);
    Buffer.from(dst.addr.subarray(0, 4)).copy(ip, 16);
  }
  const whole = Buffer.concat([linkHeader(opts.link ?? 'ethernet', src.v6, opts.vlan ?? false), ip, tcp, payload]);
  const kept = seg.keep === undefined ? whole : whole.subarray(0, whole.length - payload.length + seg.keep);
  return { frame: kept, originalLength: whole.length + (opts.trailerNotCaptured ?? 0) };
}

export function pcapFile(segs: Seg[], opts: WriterOptions = {}): Buffer {
  const le = !opts.bigEndian;
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return b;
  };
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    if (le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  };
  const parts: Buffer[] = [u32(0xa1b2c3d4), u16(2), u16(4), u32(0), u32(0), u32(65535), u32(LINK_TYPE[opts.link ?? 'ethernet'])];
  segs.forEach((seg, i) => {
    const { frame, originalLength } = tcpPacket(seg, opts);
    const ts = seg.ts ?? 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n;
    parts.push(u32(Number(ts / 1_000_000_000n)), u32(Number((ts % 1_000_000_000n) / 1000n)), u32(frame.length), u32(originalLength), frame);
  });
  return Buffer.concat(parts);
}

/** pcapng with one Ethernet interface whose timestamps are in nanoseconds (if_tsresol 9). */
export function pcapngFile(segs: Seg[]): Buffer {
  const block = (type: number, body: Buffer) => {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const b = Buffer.alloc(12 + padded.length);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(b.length, 4);
    padded.copy(b, 8);
    b.writeUInt32LE(b.length, b.length - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeBigInt64LE(-1n, 8);
  const idb = Buffer.alloc(8 + 8 + 4);
  idb.writeUInt16LE(1, 0);
  idb.writeUInt32LE(0, 4);
  idb.writeUInt16LE(9, 8); // if_tsresol
  idb.writeUInt16LE(1, 10);
  idb[12] = 9;
  // end of options
  const parts = [block(0x0a0d0d0a, shb), block(1, idb)];
  segs.forEach((seg, i) => {
    const { frame, originalLength } = tcpPacket(seg);
    const ts = seg.ts ?? 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n;
    const epb = Buffer.alloc(20);
    epb.writeUInt32LE(0, 0);
    epb.writeUInt32LE(Number(ts >> 32n), 4);
    epb.writeUInt32LE(Number(ts & 0xffffffffn), 8);
    epb.writeUInt32LE(frame.length, 12);
    epb.writeUInt32LE(originalLength, 16);
    parts.push(block(6, Buffer.concat([epb, frame])));
  });
  return Buffer.concat(parts);
}

/** A whole TCP conversation: handshake, the client's bytes and the server's bytes in segments of `mss`, FIN. */
export function conversation(client: string, server: string, exchanges: Array<[string, string]>, mss = 1000): Seg[] {
  let cseq = 1000;
  let sseq = 50000;
  const segs: Seg[] = [
    { src: client, dst: server, seq: cseq++, flags: 'S' },
    { src: server, dst: client, seq: sseq++, ack: cseq, flags: 'SA' },
    { src: client, dst: server, seq: cseq, ack: sseq, flags: 'A' },
  ];
  for (const [req, res] of exchanges) {
    for (let i = 0; i < req.length; i += mss) {
      const p = req.slice(i, i + mss);
      segs.push({ src: client, dst: server, seq: cseq, ack: sseq, flags: 'PA', payload: p });
      cseq += Buffer.byteLength(p);
    }
    for (let i = 0; i < res.length; i += mss) {
      const p = res.slice(i, i + mss);
      segs.push({ src: server, dst: client, seq: sseq, ack: cseq, flags: 'PA', payload: p });
      sseq += Buffer.byteLength(p);
    }
  }
  segs.push({ src: client, dst: server, seq: cseq, ack: sseq, flags: 'FA' }, { src: server, dst: client, seq: sseq, ack: cseq + 1, flags: 'FA' });
  return segs;
}
