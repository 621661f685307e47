/**
 * HPACK (RFC 7541) decoding, one decoder per direction of a connection.
 *
 * Huffman strings are decoded four bits at a time through a state table built
 * at load from the code table (as nghttp2 does): each state is a node of the
 * code tree, and a nibble moves to the next node emitting at most one symbol.
 *
 * A capture that joins a connection late does not know the entries the
 * encoder added before it: an index past what this decoder has seen is
 * reported as unknown (never invented), and decoding goes on. Entries added
 * after the join are known, since they are the newest.
 */
import { LoupeError } from '../../errors';
import { HUFFMAN_CODES, STATIC_TABLE } from './hpack-tables';

export class HpackError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_HPACK', message);
  }
}

// --- Huffman -----------------------------------------------------------------

/** Per state and nibble: next state (low 9 bits), emitted symbol + 1 (next 9 bits, 0: none), flags. */
const FAIL = 1 << 30;
const ACCEPT = 1 << 29;
let HUFFMAN_FSM: Int32Array;
/** States (tree nodes) whose path from the root is all ones, shorter than 8 bits: valid padding ends. */
let ACCEPTING: Uint8Array;

function buildHuffman(): void {
  // Internal nodes of the code tree: children[2n], children[2n+1]; >= 0 internal, < 0 leaf (-(symbol+1)).
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let sym = 0; sym < HUFFMAN_CODES.length; sym++) {
    const [bits, code] = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const slot = 2 * node + bit;
      if (i === 0) {
        children[slot] = -(sym + 1);
      } else {
        if (!children[slot]) {
          children[slot] = nodes++;
          children.push(0, 0);
        }
        node = children[slot]!;
      }
    }
  }
  // Which states are reachable from the root by ones only, within 7 bits.
  ACCEPTING = new Uint8Array(nodes);
  ACCEPTING[0] = 1;
  let n = 0;
  for (let depth = 1; depth <= 7; depth++) {
    const next = children[2 * n + 1]!;
    if (next <= 0) break;
    ACCEPTING[next] = 1;
    n = next;
  }
  HUFFMAN_FSM = new Int32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let emit = 0;
      let fail = false;
      for (let i = 3; i >= 0; i--) {
        const child = children[2 * node + ((nibble >>> i) & 1)]!;
        if (child < 0) {
          const sym = -child - 1;
          if (sym === 256) fail = true; // EOS inside a string is an error
          emit = sym + 1;
          node = 0;
        } else {
          node = child;
        }
      }
      HUFFMAN_FSM[state * 16 + nibble] = fail ? FAIL : node | (emit << 9) | (ACCEPTING[node] ? ACCEPT : 0);
    }
  }
}
buildHuffman();

const huffmanOut = Buffer.alloc(1 << 16);

export function huffmanDecode(src: Buffer, start: number, end: number): string {
  // A code is at least 5 bits: n bytes give at most 8n/5 symbols.
  const max = Math.ceil(((end - start) * 8) / 5);
  const out = max <= huffmanOut.length ? huffmanOut : Buffer.alloc(max);
  let len = 0;
  let state = 0;
  let accept = true;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let e = HUFFMAN_FSM[state * 16 + (byte >>> 4)]!;
    if (e & FAIL) throw new HpackError('Huffman string contains EOS');
    if (e & 0x3fe00) out[len++] = ((e >>> 9) & 0x1ff) - 1;
    state = e & 0x1ff;
    e = HUFFMAN_FSM[state * 16 + (byte & 15)]!;
    if (e & FAIL) throw new HpackError('Huffman string contains EOS');
    if (e & 0x3fe00) out[len++] = ((e >>> 9) & 0x1ff) - 1;
    state = e & 0x1ff;
    accept = (e & ACCEPT) !== 0;
  }
  if (!accept) throw new HpackError('Huffman string ends with invalid padding');
  return out.latin1Slice(0, len);
}

declare module 'node:buffer' {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
  }
}

// --- Decoder --------------------------------------------------------------------

export type HeaderField = [name: string, value: string];

export interface DecodedBlock {
  headers: HeaderField[];
  /** Fields that referred to dynamic-table entries added before the capture began, e.g. "index 63". */
  unknown: string[];
}

const ENTRY_OVERHEAD = 32;

/** Static entries as shared, frozen fields: a hit costs no allocation. */
const STATIC_FIELDS: ReadonlyArray<HeaderField> = STATIC_TABLE.map(([n, v]) => Object.freeze([n, v]) as unknown as HeaderField);

export class HpackDecoder {
  /** The dynamic table as a ring: entry i (0 = newest) is at (head + i) % capacity. */
  private ring: Array<{ field: HeaderField; size: number } | undefined> = new Array(64);
  private head = 0;
  private count = 0;
  private size = 0;
  private maxSize = 4096;
  /** Decoding cursor: the block and the offset of the next byte. */
  private block: Buffer = Buffer.alloc(0);
  private at = 0;

  /**
   * @param joinedLate the capture began after the connection did: entries
   *   older than those we saw may exist, and indexes past ours are unknown.
   * @param limit SETTINGS_HEADER_TABLE_SIZE of the decoding side.
   */
  constructor(
    private readonly joinedLate = false,
    private limit = 4096,
  ) {}

  setLimit(limit: number): void {
    this.limit = limit;
  }

  get tableSize(): number {
    return this.size;
  }

  /** Fields are returned as shared tuples: callers must not modify them. */
  decode(block: Buffer): DecodedBlock {
    const headers: HeaderField[] = [];
    const unknown: string[] = [];
    this.block = block;
    this.at = 0;
    while (this.at < block.length) {
      const b = block[this.at]!;
      if (b & 0x80) {
        const index = this.integer(7);
        if (index === 0) throw new HpackError('indexed field with index 0');
        const field = this.lookup(index);
        if (field) headers.push(field);
        else {
          unknown.push(`index ${index}`);
          headers.push([`<unknown index ${index}>`, '']);
        }
      } else if (b & 0x40 || (b & 0xe0) === 0 || (b & 0xf0) === 0x10) {
        const indexing = (b & 0x40) !== 0;
        const nameIndex = this.integer(indexing ? 6 : 4);
        let name: string | undefined;
        if (nameIndex === 0) name = this.string();
        else {
          const field = this.lookup(nameIndex);
          if (field) name = field[0];
          else unknown.push(`name index ${nameIndex}`);
        }
        const value = this.string();
        const field: HeaderField = [name ?? `<unknown index ${nameIndex}>`, value];
        headers.push(field);
        // An entry whose name we do not know still takes its place (and size) in the table.
        if (indexing) this.insert(field, name === undefined ? ENTRY_OVERHEAD + value.length : field[0].length + value.length + ENTRY_OVERHEAD);
      } else {
        // 001xxxxx: dynamic table size update.
        const size = this.integer(5);
        if (size > this.limit) throw new HpackError(`table size update to ${size} exceeds the ${this.limit} the decoder allows`);
        this.maxSize = size;
        this.evict();
      }
    }
    return { headers, unknown };
  }

  /** An N-bit prefix integer at the cursor. */
  private integer(prefixBits: number): number {
    const b = this.block;
    const max = (1 << prefixBits) - 1;
    let value = b[this.at++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.at >= b.length) throw new HpackError('integer runs past the end of the header block');
      const byte = b[this.at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) return value;
      if (shift > 28) throw new HpackError('integer too large');
    }
  }

  private string(): string {
    const b = this.block;
    if (this.at >= b.length) throw new HpackError('string runs past the end of the header block');
    const huffman = (b[this.at]! & 0x80) !== 0;
    const length = this.integer(7);
    const start = this.at;
    const end = start + length;
    if (end > b.length) throw new HpackError(`string of ${length} bytes runs past the end of the header block`);
    this.at = end;
    return huffman ? huffmanDecode(b, start, end) : b.latin1Slice(start, end);
  }

  private lookup(index: number): HeaderField | undefined {
    if (index <= STATIC_FIELDS.length) return STATIC_FIELDS[index - 1];
    const i = index - STATIC_FIELDS.length - 1;
    if (i < this.count) return this.ring[(this.head + i) % this.ring.length]!.field;
    if (this.joinedLate) return undefined;
    throw new HpackError(`index ${index} is past the dynamic table (${this.count} entries)`);
  }

  private insert(field: HeaderField, size: number): void {
    if (this.count === this.ring.length) {
      // Grow the ring, keeping newest-first order from slot 0.
      const bigger: Array<{ field: HeaderField; size: number } | undefined> = new Array(this.ring.length * 2);
      for (let i = 0; i < this.count; i++) bigger[i + 1] = this.ring[(this.head + i) % this.ring.length];
      this.ring = bigger;
      this.head = 1;
    }
    this.head = (this.head - 1 + this.ring.length) % this.ring.length;
    this.ring[this.head] = { field, size };
    this.count++;
    this.size += size;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize && this.count > 0) {
      const last = (this.head + this.count - 1) % this.ring.length;
      this.size -= this.ring[last]!.size;
      this.ring[last] = undefined;
      this.count--;
    }
  }
}
