/**
 * Kafka's primitive types, bounded: a field that runs past the message
 * throws Short (caught where a message is decoded). `flexible` switches
 * strings, bytes and arrays to their compact forms and makes `tags()` read
 * tagged fields (KIP-482).
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

/** Element counts larger than this are not believed (a length field claiming gigabytes). */
const MAX_ELEMENTS = 1 << 20;

export class KafkaReader {
  constructor(
    readonly b: Buffer,
    public at: number,
    readonly end: number,
    public flexible = false,
  ) {}

  private need(n: number): void {
    if (n < 0 || this.cut || this.at + n > this.end) throw new Short();
  }

  i8(): number {
    this.need(1);
    return this.b.readInt8(this.at++);
  }

  i16(): number {
    this.need(2);
    const v = this.b.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.b.readInt32BE(this.at);
    this.at += 4;
    return v;
  }

  /** An int64 as a number (offsets and timestamps stay far below 2^53). */
  i64(): number {
    this.need(8);
    const v = this.b.readInt32BE(this.at) * 2 ** 32 + this.b.readUInt32BE(this.at + 4);
    this.at += 8;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.at += n;
  }

  uuid(): string {
    this.need(16);
    const hex = this.b.toString('hex', this.at, this.at + 16);
    this.at += 16;
    return hex;
  }

  /** Unsigned varint (compact lengths, tagged fields). */
  uvarint(): number {
    let value = 0;
    for (let i = 0; i < 5; i++) {
      this.need(1);
      const byte = this.b[this.at++]!;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return value;
    }
    throw new Short();
  }

  /** Zigzag varint (record fields). */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** Zigzag varlong, as a number. */
  varlong(): number {
    let value = 0;
    for (let i = 0; i < 10; i++) {
      this.need(1);
      const byte = this.b[this.at++]!;
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
    }
    throw new Short();
  }

  /** A length: int16 or int32 (-1 null) in classic versions, uvarint N+1 (0 null) in flexible ones. */
  private length(wide: boolean): number {
    if (this.flexible) return this.uvarint() - 1;
    return wide ? this.i32() : this.i16();
  }

  /** A (nullable) string. */
  string(): string | undefined {
    const n = this.length(false);
    if (n < 0) return undefined;
    this.need(n);
    const s = this.b.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }

  /** Nullable bytes: where they start and how many. */
  bytes(): { at: number; length: number } | undefined {
    const n = this.length(true);
    if (n < 0) return undefined;
    this.need(n);
    const at = this.at;
    this.at += n;
    return { at, length: n };
  }

  /**
   * Nullable bytes that may run past what is held (a Fetch response's records, of which a prefix was
   * kept): where they start and their stated length; reads after them find the end of what is held.
   */
  bytesPrefix(): { at: number; length: number } | undefined {
    const n = this.length(true);
    if (n < 0) return undefined;
    const at = this.at;
    this.at = Math.min(this.at + n, this.end);
    if (at + n > this.end) this.cut = true;
    return { at, length: n };
  }

  /** A bytes field ran past what is held: what follows it is not there to read. */
  cut = false;

  /** An array's element count (-1: null). */
  count(): number {
    const n = this.length(true);
    if (n > MAX_ELEMENTS || n > this.end - this.at) throw new Short();
    return n;
  }

  /** An array, each element read by `element`. */
  array<T>(element: () => T): T[] {
    const n = this.count();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(element());
    return out;
  }

  /** Tagged fields (flexible versions): skipped. */
  tags(): void {
    if (!this.flexible) return;
    const n = this.uvarint();
    for (let i = 0; i < n; i++) {
      this.uvarint();
      this.skip(this.uvarint());
    }
  }

  get left(): number {
    return this.end - this.at;
  }
}
