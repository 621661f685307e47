/**
 * Redaction of raw payload bytes before they reach a capture file or the
 * pipeline: credential header values and URL query values in HTTP/1 text are
 * overwritten with '*', byte for byte. Lengths never change, so message
 * framing (Content-Length, chunk sizes) still holds and a live run and the
 * replay of its recording see the very same bytes.
 *
 * maskHttpSecrets works on one payload; StreamMasker keeps state across the
 * records of one socket direction, for secrets a program wrote in pieces.
 */
import { isSecretHeader, SECRET_HEADER_LENGTHS, SECRET_HEADER_MAX_LENGTH } from './redact';
import { Http2Masker, http2Start } from './redact-http2';
import { detectProtocol, isHttp2Frames } from '../streams/detect';
import { GIVE_UP_BYTES } from '../streams/connections';

const MASK = 0x2a; // '*'
/** How far into a direction met mid-stream HTTP/2 is still looked for: as far as the connection tracker looks. */
const PROBE_BYTES = GIVE_UP_BYTES;
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

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);
const HEAD_MAX = Math.max(SECRET_HEADER_MAX_LENGTH, ...[...METHODS].map((m) => m.length));
const enum Mode { LineStart, Other, SecretValue, Target, QueryKey, QueryValue }

/**
 * The same masking across record boundaries, for one direction of one
 * socket: a program may write a request line or a header in several calls
 * ("GET /compute?n=", "12", " HTTP/1.1"), and each piece is masked as it
 * arrives, so no part of a secret reaches a capture. Lines are recognised by
 * their start: an HTTP method and a space (its target's query values are
 * masked) or a credential header name and a colon (its value is masked).
 */
export class StreamMasker {
  /** Set when this direction began as HTTP/2 (its preface, or a server's first SETTINGS): HPACK-coded from then on. */
  private http2: Http2Masker | undefined;
  private decided = false;
  /** The first bytes, from records already handed on, while the protocol is not known yet. */
  private held: Buffer = Buffer.alloc(0);
  private mode = Mode.LineStart;
  /** The current line's first bytes while it is still unclassified (kept as bytes: a string per byte was most of masking's cost). */
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLength = 0;
  /** Met mid-stream on bytes no protocol claimed: records left to look at for HTTP/2 frames (bytes). */
  private probeLeft = 0;
  /** A secret value's first non-space byte was seen (the spaces after the colon stay). */
  private valueStarted = false;

  /** Mask one record's payload in place; `missing` bytes the kernel did not copy follow it. */
  mask(payload: Uint8Array, missing = 0): number {
    if (!this.decided) {
      const head = Buffer.concat([this.held, payload.subarray(0, 24)]);
      const start = http2Start(head);
      if (start === undefined) {
        // Too few bytes to tell (no secret fits in them): keep them, to go through whichever masker follows.
        this.held = head;
        return 0;
      }
      this.decided = true;
      const past = this.held;
      this.held = Buffer.alloc(0);
      if (start !== 'other') this.http2 = new Http2Masker(start);
      else {
        // Met mid-stream: whole HTTP/2 frames, as the protocol detector would take them.
        const first = Buffer.concat([past, payload]);
        const seen = detectProtocol(first);
        if (typeof seen === 'object' && seen.protocol === 'http2') this.http2 = new Http2Masker('late');
        // Bytes no protocol claims (the middle of a frame, a body): HTTP/2 may still show at a later record.
        else if (typeof seen !== 'object') this.probeLeft = PROBE_BYTES;
      }
      // What earlier records held goes through first, on a copy: those bytes are already handed on.
      if (past.length) this.maskText(Buffer.from(past));
    } else if (this.probeLeft > 0) {
      // A record that is whole HTTP/2 frames, as the protocol detector would take it: HPACK from here.
      this.probeLeft = Math.max(0, this.probeLeft - payload.length);
      if (isHttp2Frames(payload)) {
        this.http2 = new Http2Masker('late');
        this.probeLeft = 0;
      }
    }
    return this.maskText(payload, missing);
  }

  private maskText(payload: Uint8Array, missing = 0): number {
    if (this.http2) return this.http2.mask(payload, missing);
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      if (this.mode === Mode.Other) {
        // Nothing to mask until the next line: jump there natively (most bytes are bodies).
        const lf = payload.indexOf(LF, i);
        if (lf < 0) break;
        i = lf;
      }
      const b = payload[i]!;
      if (b === LF) {
        this.mode = Mode.LineStart;
        this.headLength = 0;
        continue;
      }
      switch (this.mode) {
        case Mode.LineStart:
          if (b === COLON) {
            this.mode = SECRET_HEADER_LENGTHS.has(this.headLength) && isSecretHeader(this.head.latin1Slice(0, this.headLength)) ? Mode.SecretValue : Mode.Other;
            this.valueStarted = false;
          } else if (b === SPACE) {
            this.mode = METHODS.has(this.head.latin1Slice(0, this.headLength)) ? Mode.Target : Mode.Other;
          } else if (this.headLength === HEAD_MAX) {
            this.mode = Mode.Other; // longer than any method or credential header name
          } else {
            this.head[this.headLength++] = b;
          }
          break;
        case Mode.SecretValue:
          if (b === SPACE && !this.valueStarted) break;
          this.valueStarted = true;
          if (b !== CR) {
            payload[i] = MASK;
            masked++;
          }
          break;
        case Mode.Target:
          if (b === 0x3f) this.mode = Mode.QueryKey; // '?'
          else if (b === SPACE) this.mode = Mode.Other;
          break;
        case Mode.QueryKey:
          if (b === 0x3d) this.mode = Mode.QueryValue; // '='
          else if (b === SPACE || b === 0x23) this.mode = Mode.Other;
          break;
        case Mode.QueryValue:
          if (b === 0x26) this.mode = Mode.QueryKey; // '&'
          else if (b === SPACE || b === 0x23 || b === CR) this.mode = Mode.Other;
          else {
            payload[i] = MASK;
            masked++;
          }
          break;
        default:
          break;
      }
    }
    return masked;
  }
}
