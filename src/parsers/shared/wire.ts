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

declare module 'node:buffer' {
  interface Buffer {
    utf8Slice(start: number, end: number): string;
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
