/**
 * One side's byte stream for a framed binary protocol: chunks are kept as they
 * came and joined only when a frame header or body must be read whole, so a
 * large message split into many chunks costs one copy, not one per chunk.
 * Knows each byte's stream offset and which chunk (time, thread) carried it.
 */
import type { Chunk } from '../types';

interface Mark {
  offset: number;
  ts: bigint;
  tid: number;
}

export class StreamBuffer {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  private marks: Mark[] = [];
  /** Bytes held and not consumed. */
  available = 0;
  /** Bytes of a message whose contents are not kept, still to be skipped as they arrive. */
  private skipping = 0;
  /** Stream offset of the next unconsumed byte. */
  offset = 0;

  push(chunk: Chunk): void {
    const data = Buffer.isBuffer(chunk.data) ? chunk.data : Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
    if (data.length === 0) return;
    // Nothing held: the marks kept are of bytes consumed; the next byte is this chunk's. The one mark
    // a message-per-chunk stream keeps is reused (no caller holds a mark: when() copies): truncating
    // the array was a runtime call per chunk, a tenth of a PostgreSQL parse.
    if (this.available === 0) {
      const only = this.marks.length === 1 ? this.marks[0]! : undefined;
      if (only) {
        only.offset = this.offset;
        only.ts = chunk.ts;
        only.tid = chunk.tid;
        this.chunks.push(data);
        this.available = data.length;
        return;
      }
      this.marks = [];
    }
    this.marks.push({ offset: this.offset + this.available, ts: chunk.ts, tid: chunk.tid });
    this.chunks.push(data);
    this.available += data.length;
  }

  /** The next `n` bytes as one buffer (a view when they sit in one chunk), or undefined if fewer are held. */
  peek(n: number): Buffer | undefined {
    if (n > this.available) return undefined;
    const first = this.chunks[0];
    if (first === undefined) return n === 0 ? Buffer.alloc(0) : undefined;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    // Join just enough chunks, and keep the joined buffer so the next peek is free.
    const parts: Buffer[] = [first.subarray(this.head)];
    let have = parts[0]!.length;
    let used = 1;
    while (have < n) {
      const next = this.chunks[used++]!;
      parts.push(next);
      have += next.length;
    }
    const joined = Buffer.concat(parts, have);
    this.chunks.splice(0, used, joined);
    this.head = 0;
    return joined.subarray(0, n);
  }

  /**
   * Bytes `from` to `to` past the next unconsumed one as one buffer, or undefined if fewer are held: one
   * view when they sit in the first chunk (a packet's payload without its header: not peek's view and a
   * view of that, a view being most of a small packet's cost), else peek's join.
   */
  slice(from: number, to: number): Buffer | undefined {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= to) return first.subarray(this.head + from, this.head + to);
    return this.peek(to)?.subarray(from);
  }

  /** The unconsumed bytes of the first chunk, as a view: for tight scans that must not join. */
  view(): Buffer {
    const first = this.chunks[0];
    return first ? first.subarray(this.head) : Buffer.alloc(0);
  }

  /** The first chunk held (undefined when none): with `firstChunkHead`, for scans that must neither join nor allocate. */
  get firstChunk(): Buffer | undefined {
    return this.chunks[0];
  }

  /** Where the unconsumed bytes of `firstChunk` start: byte `i` past the next unconsumed one is `firstChunk[firstChunkHead + i]` while `i` is inside it. */
  get firstChunkHead(): number {
    return this.head;
  }

  /** The big-endian u32 at byte `i` past the next unconsumed one (undefined when not all held): in place when it lies in the first chunk, as a message header mostly does. */
  u32At(i: number): number | undefined {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= i + 4) return first.readUInt32BE(this.head + i);
    return this.peek(i + 4)?.readUInt32BE(i);
  }

  /** The little-endian 24-bit length at byte `i` (a MySQL packet header's), as u32At reads its u32. */
  u24leAt(i: number): number | undefined {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.head >= i + 3) {
      const at = this.head + i;
      return first[at]! | (first[at + 1]! << 8) | (first[at + 2]! << 16);
    }
    return this.peek(i + 3)?.readUIntLE(i, 3);
  }

  /** The byte at `i` past the next unconsumed one, without joining chunks. */
  byteAt(i: number): number | undefined {
    if (i >= this.available) return undefined;
    let at = this.head + i;
    for (const c of this.chunks) {
      if (at < c.length) return c[at];
      at -= c.length;
    }
    return undefined;
  }

  /**
   * Where `byte` is first held at or after `from` (counted from the next
   * unconsumed byte), looking no further than `limit`; -1 when not there.
   * Walks the chunks without joining them.
   */
  indexOf(byte: number, from = 0, limit = this.available): number {
    const end = Math.min(limit, this.available);
    let base = 0;
    let head = this.head;
    for (const c of this.chunks) {
      const size = c.length - head;
      if (from < base + size) {
        const at = c.indexOf(byte, head + Math.max(0, from - base));
        if (at >= 0) {
          const found = base + at - head;
          return found < end ? found : -1;
        }
      }
      base += size;
      head = 0;
      if (base >= end) break;
    }
    return -1;
  }

  /** Consume `n` bytes (at most what is held). */
  skip(n: number): void {
    let left = Math.min(n, this.available);
    this.available -= left;
    this.offset += left;
    while (left > 0) {
      const first = this.chunks[0]!;
      const inFirst = first.length - this.head;
      if (left < inFirst) {
        this.head += left;
        left = 0;
      } else {
        left -= inFirst;
        this.chunks.shift();
        this.head = 0;
      }
    }
    // Keep only the mark that covers the next byte, and those after it.
    let keep = 0;
    while (keep + 1 < this.marks.length && this.marks[keep + 1]!.offset <= this.offset) keep++;
    if (keep > 0) this.marks.splice(0, keep);
  }

  /**
   * Skip `n` bytes, held now or still to come (a row, copied data): what is
   * held goes at once, the rest as it arrives (see skipPending).
   */
  skipAhead(n: number): void {
    this.skipping = n;
    this.skipPending();
  }

  /** Skip what is held of a skipAhead; true when nothing of it is left to skip. */
  skipPending(): boolean {
    const n = Math.min(this.skipping, this.available);
    this.skip(n);
    this.skipping -= n;
    return this.skipping === 0;
  }

  /**
   * After lost bytes: drop whole chunks until one starts with `headerSize`
   * bytes that `plausible` accepts as a message start (a syscall boundary is
   * usually a message boundary). True when there; false when more bytes are needed.
   */
  seekMessageStart(headerSize: number, plausible: (head: Buffer) => boolean): boolean {
    while (this.available >= headerSize) {
      if (this.atChunkStart() && plausible(this.peek(headerSize)!)) return true;
      this.skipToNextChunk();
    }
    return false;
  }

  /**
   * After bytes that broke framing: drop bytes one at a time until the next
   * ones frame as two messages in a row — `sizeOf` takes a message's first
   * `headerSize` bytes and gives its whole size, or undefined when they start
   * no message (`nextSizeOf` judges the one after); one larger than `maxSize`
   * is not believed. Decided on content
   * alone (never on where chunks begin), so the same bytes cut differently
   * resume at the same place. True when there; false when more bytes are needed.
   */
  seekFramed(headerSize: number, maxSize: number, sizeOf: (head: Buffer) => number | undefined, nextSizeOf = sizeOf): boolean {
    for (;;) {
      const head = this.peek(headerSize);
      if (!head) return false;
      const size = sizeOf(head);
      if (size !== undefined && size <= maxSize) {
        if (this.available < size + headerSize) return false;
        const next = Buffer.alloc(headerSize);
        for (let i = 0; i < headerSize; i++) next[i] = this.byteAt(size + i)!;
        if (nextSizeOf(next) !== undefined) return true;
      }
      this.skip(1);
    }
  }

  /**
   * `n` bytes of the stream after what is held were not captured (a copy cut
   * at the kernel's limit, a lost record). Where their place in the framing is
   * known they are passed over as if they had come, and framing holds: inside
   * a skipAhead under way, or inside the message at the head when `size` (its
   * whole size, from its header) says it ends past what is held — what is held
   * of it is dropped, so the caller reads it first. Returns how many of the `n`
   * bytes fell inside; for the rest no frame was known, and the caller must
   * clear() and resynchronise.
   */
  lose(n: number, size?: number): number {
    const inside = this.inside(n, size);
    if (inside === 0) return 0;
    if (this.skippingNow) {
      this.skipping -= inside;
      this.offset += inside;
      return inside;
    }
    const held = this.available;
    this.skip(held);
    this.offset += inside;
    this.skipping = size! - held - inside; // inside > 0 outside a skip: size was given, past what is held
    this.marks = [];
    return inside;
  }

  /** How many of `n` lost bytes lose() would pass over (see there), without passing over them. */
  inside(n: number, size?: number): number {
    if (this.skipping > 0 && this.available === 0) return Math.min(n, this.skipping);
    return size !== undefined && size > this.available ? Math.min(n, size - this.available) : 0;
  }

  /** Whether lost bytes now fall inside a skipAhead under way (rather than in the message at the head). */
  get skippingNow(): boolean {
    return this.skipping > 0 && this.available === 0;
  }

  /** Drop everything held (after lost bytes: what is held no longer frames). */
  clear(lostAfter = 0): void {
    this.skipping = 0;
    this.skip(this.available);
    this.offset += lostAfter;
    this.marks = [];
  }

  /** When, and on which thread, the byte at the next unconsumed offset arrived. */
  when(): { ts: bigint; tid: number } {
    const m = this.marks[0];
    return m ? { ts: m.ts, tid: m.tid } : { ts: 0n, tid: 0 };
  }

  /** When, and on which thread, the byte `i` past the next unconsumed one arrived. */
  whenAt(i: number): { ts: bigint; tid: number } {
    const found = this.markAt(i);
    return found ? { ts: found.ts, tid: found.tid } : { ts: 0n, tid: 0 };
  }

  /** whenAt(i).ts without the object: a hot path's end time. */
  tsAt(i: number): bigint {
    return this.markAt(i)?.ts ?? 0n;
  }

  /** The mark of the chunk that carried the byte `i` past the next unconsumed one (the first mark when none is at or before it). */
  private markAt(i: number): Mark | undefined {
    const marks = this.marks;
    const target = this.offset + i;
    let found = marks[0];
    for (let k = 1; k < marks.length && marks[k]!.offset <= target; k++) found = marks[k];
    return found;
  }

  /** Drop the rest of the chunk the next byte is in (resynchronising at the next syscall boundary). */
  skipToNextChunk(): void {
    const next = this.marks[1];
    this.skip(next ? next.offset - this.offset : this.available);
  }

  /** When the last byte held arrived. */
  lastTs(): bigint {
    return this.marks[this.marks.length - 1]?.ts ?? 0n;
  }

  /** True when the next unconsumed byte is the first byte of a chunk (a syscall boundary). */
  atChunkStart(): boolean {
    // By the marks, not by `head`: a peek that joined chunks leaves a later chunk's start inside the joined one.
    return this.marks.length > 0 && this.marks[0]!.offset === this.offset;
  }
}

/** A message for bytes that broke framing at the next unconsumed byte: when and on which thread it came, its offset, and the error naming it. */
export function brokenAt(buf: StreamBuffer, reason: string, code: string) {
  const start = buf.when();
  return { tsStart: start.ts, tsEnd: start.ts, tid: start.tid, offset: buf.offset, error: `byte ${buf.offset}: ${reason}`, parseErrorCode: code };
}
