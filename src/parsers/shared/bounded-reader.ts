/**
 * Big-endian fields read from a message's bytes within a bound: a field that
 * runs past it throws (a private signal), caught by `whole`, so a decoder
 * reads straight through its fields and stops where the bytes do — the bytes
 * come from any client of a watched port, and a parser must not throw.
 * Kafka's and AMQP's readers add their own types to it.
 */

/** A field ran past the bytes: thrown by the reader, caught by `whole`. */
class Short extends Error {}

/** Run a decoding: true when it read all it wanted, false when a field ran past the bytes (what it read before stands). */
export function whole(read: () => void): boolean {
  try {
    read();
    return true;
  } catch (e) {
    if (e instanceof Short) return false;
    throw e;
  }
}

export class BoundedReader {
  /** Set when a field ran past what is held on purpose (a prefix kept): every later read stops. */
  protected cut = false;

  constructor(
    readonly b: Buffer,
    public at: number,
    readonly end: number,
  ) {}

  /** Stop the decoding unless `n` more bytes are there. */
  protected need(n: number): void {
    if (n < 0 || this.cut || this.at + n > this.end) throw new Short();
  }

  /** Stop the decoding here: what was read is not a well-formed field (a varint past its bytes, a count no message has). */
  protected stop(): never {
    throw new Short();
  }

  u8(): number {
    this.need(1);
    return this.b[this.at++]!;
  }

  i8(): number {
    this.need(1);
    return this.b.readInt8(this.at++);
  }

  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }

  i16(): number {
    this.need(2);
    const v = this.b.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.b.readInt32BE(this.at);
    this.at += 4;
    return v;
  }

  /** A 64-bit integer as a number (offsets, tags and timestamps stay far below 2^53). */
  i64(): number {
    this.need(8);
    const v = this.b.readInt32BE(this.at) * 2 ** 32 + this.b.readUInt32BE(this.at + 4);
    this.at += 8;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.b.readUInt32BE(this.at) * 2 ** 32 + this.b.readUInt32BE(this.at + 4);
    this.at += 8;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.at += n;
  }

  /** `n` bytes as a UTF-8 string. */
  protected text(n: number): string {
    this.need(n);
    const s = this.b.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }

  get left(): number {
    return this.end - this.at;
  }
}
