/**
 * A body whose length its header stated, read (skipped) as it arrives: a
 * memcached data block or binary value, a NATS payload. A text protocol's body
 * ends with CRLF, which is checked; its first bytes (headers) may be kept.
 */
import type { Side } from '../types';
import type { StreamBuffer } from './stream-buffer';

const CR = 0x0d;
const LF = 0x0a;

export interface FramedBody {
  /** Bytes left, the CRLF included when `crlf`. */
  left: number;
  crlf: boolean;
  /** Leading bytes still to keep, and those kept. */
  keep: number;
  kept: Buffer[];
  /** Bytes of it lost (framed over by its length). */
  lost: number;
  /** At the body's end, with the bytes kept. */
  then: (kept: Buffer) => void;
}

export function framedBody(length: number, crlf: boolean, then: (kept: Buffer) => void, keep = 0): FramedBody {
  return { left: length + (crlf ? 2 : 0), crlf, keep, kept: [], lost: 0, then };
}

/** Skip what is held of the body: `more` while its end is not held, `end` at it, `no-crlf` when a CRLF should end it and does not. */
export function drainBody(buf: StreamBuffer, body: FramedBody): 'more' | 'end' | 'no-crlf' {
  const before = body.left - (body.crlf ? 2 : 0);
  if (before > 0) {
    const n = Math.min(before, buf.available);
    const keep = Math.min(n, body.keep);
    if (keep > 0) {
      body.kept.push(Buffer.from(buf.peek(keep)!));
      body.keep -= keep;
    }
    buf.skip(n);
    body.left -= n;
    if (n < before) return 'more';
  }
  if (!body.crlf) return 'end';
  const tail = buf.peek(2);
  if (!tail) return 'more';
  if (tail[0] !== CR || tail[1] !== LF) return 'no-crlf';
  buf.skip(2);
  body.left = 0;
  return 'end';
}

/**
 * `bytes` of the stream were lost inside the body, as far as it reaches: its
 * length frames them (kept headers lost with them are not read). Returns how
 * many of the bytes fell inside; the body has ended when `left` is 0.
 */
export function loseInBody(buf: StreamBuffer, body: FramedBody, bytes: number): number {
  const inside = Math.min(bytes, body.left);
  buf.lose(inside, inside);
  body.left -= inside;
  body.lost += inside;
  body.keep = Math.max(0, body.keep - inside);
  if (body.crlf && body.left < 2) body.crlf = false; // the CRLF went with the loss
  return inside;
}

/** A side's body under way has ended: forget it, then do what its end does (with the bytes kept). */
export function endBody(bodies: Record<Side, FramedBody | undefined>, side: Side): void {
  const body = bodies[side]!;
  bodies[side] = undefined;
  body.then(Buffer.concat(body.kept));
}

/**
 * `bytes` of a side were lost: those that fall inside its body under way are framed over by the body's
 * length (the body ends when it is reached). Returns how many fell outside any body: for those the caller
 * clears what it holds and resynchronises (0: nothing more to do).
 */
export function loseIntoBody(buf: StreamBuffer, bodies: Record<Side, FramedBody | undefined>, side: Side, bytes: number): number {
  const body = bodies[side];
  if (!body) return bytes;
  const inside = loseInBody(buf, body, bytes);
  if (body.left === 0) endBody(bodies, side);
  return bytes - inside;
}
