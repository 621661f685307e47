/**
 * Link layer -> IP -> TCP. Anything that is not TCP is counted and skipped;
 * a packet cut short by the capture keeps what was captured and says how many
 * payload bytes are missing (judged by the IP length, not the record length:
 * Ethernet padding and trailers make records longer than their IP packet).
 */
import { formatAddr } from '../../events/addr';
import type { Endpoint } from '../../events/types';

export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export interface TcpSegment {
  family: 4 | 6;
  src: Endpoint;
  dst: Endpoint;
  seq: number;
  ack: number;
  flags: { syn: boolean; ack: boolean; fin: boolean; rst: boolean };
  payload: Buffer;
  /** Payload bytes the IP header promises that the capture did not keep. */
  missing: number;
}

export type Decoded = { kind: 'tcp'; segment: TcpSegment } | { kind: 'skip'; reason: 'not-ip' | 'not-tcp' | 'fragment' | 'unknown-link' } | { kind: 'malformed'; reason: string };

const malformed = (reason: string): Decoded => ({ kind: 'malformed', reason });

export function decodePacket(linkType: number, data: Buffer): Decoded {
  let at: number;
  let ethertype: number | undefined;
  switch (linkType) {
    case LINKTYPE.ETHERNET: {
      if (data.length < 14) return malformed(`Ethernet header needs 14 bytes, packet has ${data.length}`);
      at = 12;
      ethertype = data.readUInt16BE(at);
      at += 2;
      while (ethertype === 0x8100 || ethertype === 0x88a8) {
        if (data.length < at + 4) return malformed('VLAN tag cut short');
        ethertype = data.readUInt16BE(at + 2);
        at += 4;
      }
      break;
    }
    case LINKTYPE.LINUX_SLL:
      if (data.length < 16) return malformed(`Linux cooked header needs 16 bytes, packet has ${data.length}`);
      ethertype = data.readUInt16BE(14);
      at = 16;
      break;
    case LINKTYPE.LINUX_SLL2:
      if (data.length < 20) return malformed(`Linux cooked v2 header needs 20 bytes, packet has ${data.length}`);
      ethertype = data.readUInt16BE(0);
      at = 20;
      break;
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      if (data.length < 4) return malformed('loopback header cut short');
      // NULL stores the family in the capturing host's byte order; LOOP in network order.
      const family = linkType === LINKTYPE.LOOP ? data.readUInt32BE(0) : Math.min(data.readUInt32LE(0), data.readUInt32BE(0));
      ethertype = family === 2 ? 0x0800 : [10, 24, 28, 30].includes(family) ? 0x86dd : undefined;
      at = 4;
      break;
    }
    case LINKTYPE.RAW:
    case LINKTYPE.IPV4:
    case LINKTYPE.IPV6:
    case 12:
    case 14:
      at = 0;
      ethertype = data.length > 0 && data[0]! >> 4 === 6 ? 0x86dd : 0x0800;
      break;
    default:
      return { kind: 'skip', reason: 'unknown-link' };
  }
  if (ethertype === 0x0800) return ipv4(data, at);
  if (ethertype === 0x86dd) return ipv6(data, at);
  return { kind: 'skip', reason: 'not-ip' };
}

function ipv4(data: Buffer, at: number): Decoded {
  if (data.length < at + 20) return malformed('IPv4 header cut short');
  if (data[at]! >> 4 !== 4) return malformed(`IPv4 version nibble is ${data[at]! >> 4}`);
  const headerLength = (data[at]! & 0x0f) * 4;
  if (headerLength < 20) return malformed(`IPv4 header length ${headerLength} is below 20`);
  const total = data.readUInt16BE(at + 2);
  const fragment = data.readUInt16BE(at + 6);
  if (fragment & 0x2000 || fragment & 0x1fff) return { kind: 'skip', reason: 'fragment' };
  if (data[at + 9] !== 6) return { kind: 'skip', reason: 'not-tcp' };
  if (total < headerLength) return malformed(`IPv4 total length ${total} is below its header length ${headerLength}`);
  const src = formatAddr(data.subarray(at + 12, at + 16), 4);
  const dst = formatAddr(data.subarray(at + 16, at + 20), 4);
  return tcp(data, at + headerLength, at + total, 4, src, dst);
}

function ipv6(data: Buffer, at: number): Decoded {
  if (data.length < at + 40) return malformed('IPv6 header cut short');
  const payloadLength = data.readUInt16BE(at + 4);
  let next = data[at + 6]!;
  const src = formatAddr(data.subarray(at + 8, at + 24), 6);
  const dst = formatAddr(data.subarray(at + 24, at + 40), 6);
  const end = at + 40 + payloadLength;
  let p = at + 40;
  // Walk extension headers: hop-by-hop, routing, destination options; fragments are skipped.
  while (next === 0 || next === 43 || next === 60 || next === 44) {
    if (next === 44) return { kind: 'skip', reason: 'fragment' };
    if (data.length < p + 2) return malformed('IPv6 extension header cut short');
    next = data[p]!;
    p += (data[p + 1]! + 1) * 8;
  }
  if (next !== 6) return { kind: 'skip', reason: 'not-tcp' };
  return tcp(data, p, end, 6, src, dst);
}

function tcp(data: Buffer, at: number, ipEnd: number, family: 4 | 6, src: string, dst: string): Decoded {
  if (data.length < at + 20) return malformed('TCP header cut short');
  const headerLength = (data[at + 12]! >> 4) * 4;
  if (headerLength < 20) return malformed(`TCP data offset ${headerLength} is below 20`);
  if (ipEnd < at + headerLength) return malformed('IP length ends inside the TCP header');
  const flags = data[at + 13]!;
  const start = at + headerLength;
  const capturedEnd = Math.min(ipEnd, data.length);
  const payload = start < capturedEnd ? data.subarray(start, capturedEnd) : Buffer.alloc(0);
  return {
    kind: 'tcp',
    segment: {
      family,
      src: { addr: src, port: data.readUInt16BE(at) },
      dst: { addr: dst, port: data.readUInt16BE(at + 2) },
      seq: data.readUInt32BE(at + 4),
      ack: data.readUInt32BE(at + 8),
      flags: { fin: (flags & 1) !== 0, syn: (flags & 2) !== 0, rst: (flags & 4) !== 0, ack: (flags & 16) !== 0 },
      payload,
      missing: Math.max(0, ipEnd - Math.max(start, capturedEnd)),
    },
  };
}
