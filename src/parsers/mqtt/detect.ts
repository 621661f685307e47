/**
 * MQTT from a connection's start (the client's CONNECT names the protocol:
 * `MQTT` level 4 or 5, `MQIsdp` level 3), or mid-connection from whole
 * packets back to back among which a PUBLISH or SUBSCRIBE names a printable
 * topic: a fixed header alone is two bytes any binary protocol could start with.
 */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';
import { validFlags, varint } from './wire';

const CONNECT_NAMES = [Buffer.from('\x00\x04MQTT', 'latin1'), Buffer.from('\x00\x06MQIsdp', 'latin1')];

/** A printable topic (or filter) at `at`, two bytes of length first, within `end`. */
function topicAt(b: Buffer, at: number, end: number): boolean {
  if (at + 2 > end) return false;
  const n = b.readUInt16BE(at);
  if (n === 0 || at + 2 + n > end) return false;
  for (let i = at + 2; i < at + 2 + n; i++) if (b[i]! < 0x20 || b[i] === 0x7f) return false;
  return true;
}

/** Walk whole packets; with `evidence`, at least one must name a topic. */
function packets(b: Buffer, evidence: boolean): boolean | 'more' {
  let at = 0;
  let named = false;
  while (at < b.length) {
    const type = b[at]! >> 4;
    if (type === 0 || !validFlags(type, b[at]! & 15)) return false;
    const length = varint(b, at + 1);
    if (length === 'more') return 'more';
    if (length === undefined) return false;
    const start = at + 1 + length[1];
    const end = start + length[0];
    if (end > b.length) return 'more';
    if ((type === 12 || type === 13) && length[0] !== 0) return false;
    if ((type === 3 || type === 8 || type === 10) && topicAt(b, type === 3 ? start : start + 2, end)) named = true;
    at = end;
  }
  return !evidence || named;
}

export function detectMqtt(b: Buffer): ModuleVerdict {
  if (b.length === 0) return undefined;
  if (b[0] === 0x10) {
    const length = varint(b, 1);
    if (length === 'more') return NEED_MORE;
    if (length === undefined) return undefined;
    const at = 1 + length[1];
    for (const name of CONNECT_NAMES) {
      const held = b.subarray(at, at + name.length);
      if (held.length < name.length) {
        if (name.subarray(0, held.length).equals(held)) return NEED_MORE;
      } else if (held.equals(name)) return seenFrom('client', true);
    }
    return undefined;
  }
  const verdict = packets(b, true);
  if (verdict === true) return seenFrom(b[0]! >> 4 === 8 || b[0]! >> 4 === 10 ? 'client' : undefined, false);
  return undefined;
}

/** Whole MQTT packets, once the other direction named the protocol. */
export const mqttFrames = (b: Buffer): boolean => b.length > 0 && packets(b, false) === true;
