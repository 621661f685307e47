/**
 * Kafka's primitive types, bounded (shared/bounded-reader.ts: a field that
 * runs past the message stops the decoding). `flexible` switches
 * strings, bytes and arrays to their compact forms and makes `tags()` read
 * tagged fields (KIP-482).
 */

import { BoundedReader } from '../shared/bounded-reader';

export { whole } from '../shared/bounded-reader';

/** Element counts larger than this are not believed (a length field claiming gigabytes). */
const MAX_ELEMENTS = 1 << 20;

export class KafkaReader extends BoundedReader {
  constructor(
    b: Buffer,
    at: number,
    end: number,
    public flexible = false,
  ) {
    super(b, at, end);
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
    return this.stop();
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
    return this.stop();
  }

  /** A length: int16 or int32 (-1 null) in classic versions, uvarint N+1 (0 null) in flexible ones. */
  private length(wide: boolean): number {
    if (this.flexible) return this.uvarint() - 1;
    return wide ? this.i32() : this.i16();
  }

  /** A (nullable) string. */
  string(): string | undefined {
    const n = this.length(false);
    return n < 0 ? undefined : this.text(n);
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

  /** An array's element count (-1: null). */
  count(): number {
    const n = this.length(true);
    if (n > MAX_ELEMENTS || n > this.end - this.at) this.stop();
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
}
