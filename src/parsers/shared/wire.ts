/**
 * Bounded reads of a message's bytes, shared by the binary protocols' parsers.
 * A field that runs past the end reads as undefined, never a RangeError: the
 * bytes come from any client of a watched port, and a parser must not throw.
 */

export function u16be(b: Buffer, at: number): number | undefined {
  return at >= 0 && at + 2 <= b.length ? b.readUInt16BE(at) : undefined;
}

export function u16le(b: Buffer, at: number): number | undefined {
  return at >= 0 && at + 2 <= b.length ? b.readUInt16LE(at) : undefined;
}

export function u24le(b: Buffer, at: number): number | undefined {
  return at >= 0 && at + 3 <= b.length ? b.readUIntLE(at, 3) : undefined;
}

export function u32le(b: Buffer, at: number): number | undefined {
  return at >= 0 && at + 4 <= b.length ? b.readUInt32LE(at) : undefined;
}

/**
 * Buffer's own decoders, which toString calls after looking up the encoding and clamping the range:
 * per field of a message that lookup costs as much as a short decode. Declared once, for every parser.
 */
declare module 'node:buffer' {
  interface Buffer {
    utf8Slice(start: number, end: number): string;
    latin1Slice(start: number, end: number): string;
  }
}

/**
 * A NUL-terminated string at `at` and the offset after its NUL; one that runs to the end takes the rest.
 * Decoded with the buffer's own utf8Slice (what toString calls after checking its arguments) and an empty one
 * (PostgreSQL's unnamed portal and statement, every Bind of pgbench's) made without a call: it runs per message.
 */
export function cstring(b: Buffer, at: number): [string, number] {
  if (at >= b.length) return ['', b.length];
  if (b[at] === 0) return ['', at + 1];
  const end = b.indexOf(0, at);
  return end < 0 ? [b.utf8Slice(at, b.length), b.length] : [b.utf8Slice(at, end), end + 1];
}

const NO_BYTES = Buffer.alloc(0);

/**
 * One message's fields, read in order where the message lies (no view made per message), bounded
 * by its end: a string that runs past the end takes the rest and a number past it reads as
 * undefined, as `cstring` and `u16be` do on a view. pg-protocol's BufferReader, with bounds.
 */
export class WireReader {
  private b: Buffer = NO_BYTES;
  private at = 0;
  private end = 0;

  /** Read `b` from `at`, up to (not including) `end`. */
  reset(b: Buffer, at: number, end: number): this {
    this.b = b;
    this.at = at;
    this.end = end;
    return this;
  }

  /** A NUL-terminated string; one that runs to the end takes the rest. */
  cstring(): string {
    const { b, at, end } = this;
    if (at >= end) return '';
    if (b[at] === 0) {
      this.at = at + 1;
      return '';
    }
    const nul = b.indexOf(0, at);
    this.at = nul < 0 || nul >= end ? end : nul + 1;
    return b.utf8Slice(at, nul < 0 || nul >= end ? end : nul);
  }

  u16be(): number | undefined {
    const at = this.at;
    if (at + 2 > this.end) {
      this.at = this.end;
      return undefined;
    }
    this.at = at + 2;
    return (this.b[at]! << 8) | this.b[at + 1]!;
  }

  byte(): number | undefined {
    return this.at < this.end ? this.b[this.at++] : undefined;
  }

  skip(n: number): this {
    this.at = Math.min(this.end, this.at + n);
    return this;
  }
}

/** MySQL's length-encoded integer at `at`: [value, bytes it took], undefined when its bytes are not all there. */
export function lenenc(b: Buffer, at: number): [number, number] | undefined {
  const first = b[at];
  if (first === undefined) return undefined;
  if (first < 0xfb) return [first, 1];
  if (first === 0xfc) return u16le(b, at + 1) === undefined ? undefined : [b.readUInt16LE(at + 1), 3];
  if (first === 0xfd) return u24le(b, at + 1) === undefined ? undefined : [b.readUIntLE(at + 1, 3), 4];
  if (first === 0xfe) return at + 9 <= b.length ? [Number(b.readBigUInt64LE(at + 1)), 9] : undefined;
  return undefined; // 0xfb (NULL) and 0xff are no integers
}
