/**
 * Redaction of raw payload bytes before they reach a capture file or the
 * pipeline: credential header values and URL query values in HTTP/1 text are
 * overwritten with '*', byte for byte. Lengths never change, so message
 * framing (Content-Length, chunk sizes) still holds and a live run and the
 * replay of its recording see the very same bytes.
 *
 * It works on one record's payload: a secret split across two records is
 * masked only in the part whose line start is in the record (see the notes in
 * docs/formats.md).
 */
import { isSecretHeader } from './redact';

const MASK = 0x2a; // '*'
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;

const REQUEST_LINE = /^[A-Z][A-Z_-]* (\S+) HTTP\/\d\.\d$/;

/** Mask secrets in place; returns how many bytes were masked. */
export function maskHttpSecrets(payload: Uint8Array): number {
  let masked = 0;
  let start = 0;
  while (start < payload.length) {
    let end = payload.indexOf(LF, start);
    if (end < 0) end = payload.length;
    let lineEnd = end;
    if (lineEnd > start && payload[lineEnd - 1] === CR) lineEnd--;
    masked += maskLine(payload, start, lineEnd);
    start = end + 1;
  }
  return masked;
}

function maskLine(buf: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len < 3 || len > 16384) return 0;
  const colon = buf.indexOf(COLON, start);
  if (colon > start && colon < end && colon - start <= 64) {
    const name = Buffer.from(buf.buffer, buf.byteOffset + start, colon - start).toString('latin1');
    if (isSecretHeader(name)) {
      let v = colon + 1;
      while (v < end && buf[v] === SPACE) v++;
      buf.fill(MASK, v, end);
      return end - v;
    }
  }
  const first = buf[start]!;
  if (first < 0x41 || first > 0x5a) return 0; // request lines start with an upper-case method
  const line = Buffer.from(buf.buffer, buf.byteOffset + start, len).toString('latin1');
  const m = REQUEST_LINE.exec(line);
  if (!m) return 0;
  const targetAt = start + line.indexOf(' ') + 1;
  const target = m[1]!;
  const q = target.indexOf('?');
  if (q < 0) return 0;
  let count = 0;
  let inValue = false;
  for (let i = q + 1; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x23) break; // '#'
    if (c === 0x26) inValue = false; // '&'
    else if (c === 0x3d && !inValue) inValue = true; // '='
    else if (inValue) {
      buf[targetAt + i] = MASK;
      count++;
    }
  }
  return count;
}
