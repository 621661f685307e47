/**
 * AMQP 0-9-1 from the client's protocol header (`AMQP` 0 0 9 1), or
 * mid-connection from whole frames back to back, each ended by 0xCE, one of
 * them a method of a class the protocol defines.
 */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';
import { KNOWN_CLASSES } from './messages';

const HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

function frames(b: Buffer, evidence: boolean): boolean {
  let at = 0;
  let method = false;
  while (at + 7 <= b.length) {
    const type = b[at]!;
    const size = b.readUInt32BE(at + 3);
    if (type !== 1 && type !== 2 && type !== 3 && type !== 8) return false;
    const end = at + 7 + size;
    if (end >= b.length || b[end] !== 0xce) return false;
    if (type === 1 && size >= 4 && KNOWN_CLASSES.has(b.readUInt16BE(at + 7))) method = true;
    at = end + 1;
  }
  return at === b.length && at > 0 && (!evidence || method);
}

export function detectAmqp(b: Buffer): ModuleVerdict {
  if (b.length > 0 && b[0] === 0x41) {
    if (b.length < HEADER.length) return HEADER.subarray(0, b.length).equals(b) ? NEED_MORE : undefined;
    if (b.subarray(0, 4).equals(HEADER.subarray(0, 4)) && b[4] === 0) return seenFrom('client', true);
  }
  return frames(b, true) ? seenFrom(undefined, false) : undefined;
}

/** Whole frames, once the other direction named the protocol. */
export const amqpFrames = (b: Buffer): boolean => frames(b, false);
