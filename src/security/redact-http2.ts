/**
 * Masking secrets in HTTP/2 bytes before they reach a capture or the
 * pipeline, as redact-payload.ts does for HTTP/1 text: the values of
 * credential headers (authorization, cookie, ...) and the query values of
 * `:path`, inside HPACK-coded header blocks, for one direction of one
 * connection, record by record.
 *
 * Nothing may change what a decoder makes of the rest of the connection, or
 * a replay would read other headers than the live run did. So:
 *  - lengths never change, in bytes or in decoded characters (HPACK's
 *    dynamic table counts decoded octets: a changed length would shift every
 *    later eviction);
 *  - a plain string's byte becomes '*';
 *  - a Huffman-coded string's symbol becomes another symbol of the same code
 *    length (a letter or digit where there is one), so the bits keep their
 *    length and the string its character count. A symbol whose bits straddle
 *    a byte boundary keeps its bits before its last byte and becomes another
 *    symbol of its length that begins with them; only where its length has
 *    none (a code at the edge of its length's range) does it stay. Whether a
 *    record boundary falls there does not matter: a record is written before
 *    the next one comes, so the bits of an earlier byte cannot wait for the
 *    symbol's end, and deciding by the byte layout alone makes the masked
 *    bytes the same however the kernel cut them (fuzzing found 6,000 of
 *    25,000 HTTP/2 inputs masked differently at other cuts when only cut
 *    symbols kept their first bits).
 * DATA is masked too: a gRPC stream's messages whole (their 5-byte prefixes
 * stay, so messages are still counted and sized), any other stream's body
 * for credential fields (redact-body.ts), as in HTTP/1. Which a stream is
 * comes from its HEADERS' content-type in this direction; a stream whose
 * HEADERS came before a mid-stream join counts as not gRPC.
 *
 * The masker follows frames (the client's preface, frame headers, padding,
 * priority fields) and the header blocks' HPACK instructions, with the
 * dynamic table's names and sizes, so a name given by index is known. Bytes
 * the kernel did not copy are skipped by count; if they fall inside a header
 * block, the table is lost, and from then on every header-block byte of this
 * direction is masked. A connection met mid-stream (whole frames, as the
 * protocol detector sees them) is followed the same way, except that a name
 * from before the join is unknown, so its value is masked, and a header block
 * already under way is masked to its end.
 */
import { HUFFMAN_CODES, STATIC_TABLE } from '../parsers/http2/hpack-tables';
import { huffmanDecode } from '../parsers/http2/hpack';
import { DEFAULT_MAX_FRAME, FRAME_HEADER_BYTES, FrameFlag, FrameType, LAST_KNOWN_FRAME_TYPE, SETTING_BYTES } from '../parsers/http2/frames';
import { isSecretHeader } from '../parsers/http1/secrets';
import { BodyMasker } from './redact-body';

/** The name of a table entry from before a mid-stream join (no real header name has a space). */
const UNKNOWN_NAME = 'unknown name';
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const MASK = 0x2a;

/**
 * Per code length: its first code, its symbols in code order (the code is
 * canonical), and the code a masked symbol of that length becomes: a letter
 * or digit where the length has one, never a URL delimiter where avoidable
 * (a masked query value must not grow new '&' or '=').
 */
const CODES_BY_LENGTH: Array<{ first: number; symbols: number[]; replacement: number } | undefined> = (() => {
  const byLength: Array<Array<[number, number]>> = [];
  HUFFMAN_CODES.forEach(([len, code], sym) => {
    if (sym < 256) (byLength[len] ??= []).push([code, sym]); // EOS never appears in a string
  });
  return byLength.map((list) => {
    if (!list) return undefined;
    list.sort((a, b) => a[0] - b[0]);
    const best = [...list].sort((a, b) => maskRank(a[1]) - maskRank(b[1]) || a[0] - b[0])[0]!;
    return { first: list[0]![0], symbols: list.map(([, s]) => s), replacement: best[0] };
  });
})();

/** How fit a character is to stand for a masked one: 0 a letter or digit, 1 other printable but no delimiter, 2 the rest. */
function maskRank(sym: number): number {
  const c = String.fromCharCode(sym);
  return /[A-Za-z0-9]/.test(c) ? 0 : sym > 0x20 && sym < 0x7f && !'?&=#/%;,'.includes(c) ? 1 : 2;
}

/**
 * The code a masked symbol (`code`, `length` bits) becomes when its first `kept` bits went out
 * with an earlier record: of the other codes of its length that begin with those bits, the
 * best ranked, never a query's '&', '=' or '#' (a masked value must not grow new ones);
 * `code` itself when there is none.
 */
function replacementKeeping(length: number, code: number, kept: number): number {
  const group = CODES_BY_LENGTH[length]!;
  const span = 2 ** (length - kept);
  const prefixStart = Math.floor(code / span) * span;
  const to = Math.min(group.first + group.symbols.length, prefixStart + span);
  let best = code;
  let bestRank = Infinity;
  for (let c = Math.max(group.first, prefixStart); c < to; c++) {
    const sym = group.symbols[c - group.first]!;
    if (c === code || sym === 0x26 || sym === 0x3d || sym === 0x23) continue;
    const rank = maskRank(sym);
    if (rank < bestRank) {
      best = c;
      bestRank = rank;
    }
  }
  return best;
}

/**
 * What the first bytes of a direction say: HTTP/2 from the client's preface
 * or a server's first SETTINGS frame header; 'other' (HTTP/1 text, another
 * protocol); undefined while too few bytes have come to tell.
 */
export function http2Start(head: Uint8Array): 'preface' | 'frames' | 'other' | undefined {
  if (head.length === 0) return undefined;
  const first = head[0]!;
  if (first >= 0x41 && first <= 0x5a) {
    // Text: an HTTP/2 preface, or HTTP/1 as soon as a byte differs from it.
    const n = Math.min(head.length, PREFACE.length);
    if (!PREFACE.subarray(0, n).equals(head.subarray(0, n))) return 'other';
    return n === PREFACE.length ? 'preface' : undefined;
  }
  if (head.length < 9) return undefined;
  const length = (head[0]! << 16) | (head[1]! << 8) | head[2]!;
  const streamId = ((head[5]! & 0x7f) << 24) | (head[6]! << 16) | (head[7]! << 8) | head[8]!;
  return head[3] === FrameType.SETTINGS && (head[4]! & ~FrameFlag.ACK) === 0 && streamId === 0 && length % SETTING_BYTES === 0 && length <= SETTING_BYTES * 16 ? 'frames' : 'other';
}

const enum Field {
  Index,
  NameIndex,
  SizeUpdate,
  NameLength,
  ValueLength,
}
const enum Hpack {
  Op,
  Int,
  NameBytes,
  ValueBytes,
  StringHead,
}
const enum Secret {
  No,
  Whole,
  Query,
}

/** What the HTTP/2 parser takes for a frame header when it resumes after lost bytes (src/parsers/http2/parser.ts). */
function plausibleFrameHeader(b: Uint8Array): boolean {
  if (b.length < FRAME_HEADER_BYTES) return false;
  const length = (b[0]! << 16) | (b[1]! << 8) | b[2]!;
  return b[3]! <= LAST_KNOWN_FRAME_TYPE && (b[5]! & 0x80) === 0 && length <= DEFAULT_MAX_FRAME;
}

const { DATA, HEADERS, PUSH_PROMISE, CONTINUATION } = FrameType;
const { END_STREAM, PADDED, END_HEADERS, PRIORITY } = FrameFlag;
/** Streams whose body state is kept at once (each direction); the oldest go first past this. */
const MAX_STREAMS = 1024;
const GRPC_PREFIX = 5;

/** What DATA on one stream is, and where its gRPC message framing stands. */
interface StreamBody {
  grpc: boolean;
  /** gRPC: bytes of the current 5-byte message prefix still to come, and the length it is gathering. */
  prefixLeft: number;
  length: number;
  /** gRPC: message bytes still to come. */
  messageLeft: number;
  /** gRPC framing was lost to bytes not copied: the rest of the stream's DATA is masked whole. */
  lost: boolean;
  json: BodyMasker;
}

export class Http2Masker {
  // Frame layer.
  private prefaceLeft: number;
  private readonly frameHead = Buffer.alloc(FRAME_HEADER_BYTES);
  private frameHeadHave = 0;
  private frameLeft = 0;
  /** Bytes before the fragment still to pass (pad length, priority, promised id). */
  private prefixLeft = 0;
  private readPadLength = false;
  private padding = 0;
  private inBlock = false;
  /** A DATA frame's stream, while its payload passes; 0 otherwise. */
  private dataStream = 0;
  private dataEndsStream = false;
  /** The stream of the header block under way, and its content-type as read so far. */
  private blockStream = 0;
  private blockEndsStream = false;
  private contentType: string | undefined;
  private collecting = false;
  private readonly streams = new Map<number, StreamBody>();

  /** Framing was lost (bytes not copied fell across a frame header): records are masked whole until one starts with a frame header. */
  private resyncing = false;

  // HPACK layer.
  private state = Hpack.Op;
  private intValue = 0;
  private intShift = 0;
  private intFor = Field.Index;
  private addToTable = false;
  private huffman = false;
  private stringLeft = 0;
  private nameBytes: number[] = [];
  private name = '';
  private secret = Secret.No;
  /** The dynamic table: names and sizes, and a content-type's value (a stream's kind may come by index alone). */
  private readonly table: Array<{ name: string; size: number; value?: string }> = [];
  private tableSize = 0;
  private maxTableSize = 4096;

  // The string being read.
  private decodedLength = 0;
  private code = 0;
  private codeLength = 0;
  private bit = 0;
  private symbolStart = 0;
  private inQuery = false;
  private inQueryValue = false;
  private queryDone = false;
  /** Where this record's bytes of the current string are: string byte number -> [buffer, index]. */
  private here = new Map<number, number>();
  private buf: Uint8Array = new Uint8Array(0);

  /** Met mid-stream, or a header block's bytes were lost: the dynamic table's older entries are unknown. */
  private late: boolean;
  /** Inside a header block that began before we could follow it: masked to its end. */
  private blockLost = false;
  private sawBlockStart = false;
  private endsBlock = false;

  constructor(start: 'preface' | 'frames' | 'late') {
    this.prefaceLeft = start === 'preface' ? PREFACE.length : 0;
    this.late = start === 'late';
  }

  /** Mask one record's payload in place; `missing` bytes the kernel did not copy follow it. */
  mask(payload: Uint8Array, missing = 0): number {
    this.buf = payload;
    this.here.clear();
    if (this.resyncing) {
      // As the parser resumes: at a record that starts with what can be a frame header. Until then nothing here is known not to be a secret.
      if (!plausibleFrameHeader(payload)) {
        payload.fill(MASK);
        return payload.length;
      }
      this.resyncing = false;
    }
    let masked = 0;
    let i = 0;
    while (i < payload.length) {
      if (this.prefaceLeft > 0) {
        const n = Math.min(this.prefaceLeft, payload.length - i);
        this.prefaceLeft -= n;
        i += n;
        continue;
      }
      if (this.frameLeft === 0) {
        this.frameHead[this.frameHeadHave++] = payload[i++]!;
        if (this.frameHeadHave === FRAME_HEADER_BYTES) this.startFrame();
        continue;
      }
      if (this.dataStream !== 0) {
        i = this.dataBytes(payload, i);
        continue;
      }
      if (!this.inBlock) {
        const n = Math.min(this.frameLeft, payload.length - i);
        this.frameLeft -= n;
        i += n;
        continue;
      }
      const b = payload[i]!;
      this.frameLeft--;
      if (this.readPadLength) {
        this.readPadLength = false;
        this.padding = b;
        this.prefixLeft--;
      } else if (this.prefixLeft > 0) {
        this.prefixLeft--;
      } else if (this.frameLeft < this.padding) {
        // padding
      } else if (this.blockLost) {
        payload[i] = MASK;
        masked++;
      } else {
        masked += this.hpackByte(i);
      }
      i++;
      if (this.frameLeft === 0 && this.endsBlock) this.blockDone();
    }
    this.skipMissing(missing);
    return masked;
  }

  private skipMissing(missing: number): void {
    let left = missing;
    while (left > 0) {
      if (this.prefaceLeft > 0 || this.frameLeft === 0) {
        // Inside the preface or a frame header: framing itself is lost, until a record starts with a frame.
        this.resyncing = true;
        this.loseTable();
        this.prefaceLeft = 0;
        this.frameHeadHave = 0;
        this.inBlock = false;
        this.endsBlock = false;
        this.sawBlockStart = false;
        this.state = Hpack.Op;
        this.dataStream = 0;
        this.streams.clear();
        return;
      }
      const n = Math.min(left, this.frameLeft);
      if (this.inBlock) this.loseTable();
      if (this.dataStream !== 0) this.dataMissing(n);
      this.frameLeft -= n;
      left -= n;
      if (this.frameLeft === 0) this.dataDone();
      if (this.frameLeft === 0 && this.endsBlock) this.blockDone();
    }
  }

  /**
   * What the table holds is not known from here (a header block's bytes were
   * lost, or HPACK this side cannot follow): the rest of the block is masked,
   * and later blocks are read as after a mid-stream join, names of entries
   * older than what is seen next unknown and their values masked.
   */
  private loseTable(): void {
    this.late = true;
    this.table.length = 0;
    this.tableSize = 0;
    this.blockLost = true;
  }

  /** END_HEADERS: the next block starts with a fresh instruction; the stream's DATA is known for what it is. */
  private blockDone(): void {
    this.endsBlock = false;
    this.blockLost = false;
    this.state = Hpack.Op;
    if (this.blockStream === 0) return;
    if (this.blockEndsStream) this.streams.delete(this.blockStream);
    else if (this.contentType !== undefined && !this.streams.has(this.blockStream)) {
      this.streams.set(this.blockStream, {
        grpc: /^application\/grpc/i.test(this.contentType),
        prefixLeft: GRPC_PREFIX,
        length: 0,
        messageLeft: 0,
        lost: false,
        json: new BodyMasker(true),
      });
      if (this.streams.size > MAX_STREAMS) this.streams.delete(this.streams.keys().next().value!);
    }
    this.contentType = undefined;
  }

  /** A DATA frame's payload bytes from `i` (after its pad length, before its padding). Returns where they end here. */
  private dataBytes(payload: Uint8Array, i: number): number {
    if (this.readPadLength) {
      this.readPadLength = false;
      this.padding = payload[i]!;
      this.frameLeft--;
      if (this.frameLeft === 0) this.dataDone();
      return i + 1;
    }
    const content = Math.max(0, this.frameLeft - this.padding);
    const n = content > 0 ? Math.min(content, payload.length - i) : Math.min(this.frameLeft, payload.length - i);
    if (content > 0) this.maskData(payload, i, i + n);
    this.frameLeft -= n;
    if (this.frameLeft === 0) this.dataDone();
    return i + n;
  }

  private maskData(payload: Uint8Array, from: number, to: number): void {
    const stream = this.streams.get(this.dataStream) ?? this.unknownStream();
    if (!stream.grpc) {
      stream.json.mask(payload, from, to);
      return;
    }
    if (stream.lost) {
      payload.fill(MASK, from, to);
      return;
    }
    let i = from;
    while (i < to) {
      if (stream.prefixLeft > 0) {
        stream.length = stream.prefixLeft <= 4 ? stream.length * 256 + payload[i]! : 0;
        stream.prefixLeft--;
        i++;
        if (stream.prefixLeft === 0) stream.messageLeft = stream.length;
        continue;
      }
      const n = Math.min(stream.messageLeft, to - i);
      payload.fill(MASK, i, i + n);
      stream.messageLeft -= n;
      i += n;
      if (stream.messageLeft === 0) {
        stream.prefixLeft = GRPC_PREFIX;
        stream.length = 0;
      }
    }
  }

  /** DATA on a stream whose HEADERS this side did not read (a mid-stream join): not gRPC as far as is known. */
  private unknownStream(): StreamBody {
    const stream: StreamBody = { grpc: false, prefixLeft: GRPC_PREFIX, length: 0, messageLeft: 0, lost: false, json: new BodyMasker(false) };
    this.streams.set(this.dataStream, stream);
    if (this.streams.size > MAX_STREAMS) this.streams.delete(this.streams.keys().next().value!);
    return stream;
  }

  /** DATA bytes the kernel did not copy: a gRPC message's are skipped by its length; a prefix among them loses the framing. */
  private dataMissing(n: number): void {
    const stream = this.streams.get(this.dataStream);
    if (!stream) return;
    if (!stream.grpc) {
      stream.json.gap();
      return;
    }
    if (stream.lost) return;
    if (this.readPadLength) {
      // The pad length itself was not copied: where the content ends is not known.
      stream.lost = true;
      return;
    }
    let left = Math.min(n, Math.max(0, this.frameLeft - this.padding));
    while (left > 0) {
      if (stream.prefixLeft > 0) {
        stream.lost = true;
        return;
      }
      const k = Math.min(stream.messageLeft, left);
      stream.messageLeft -= k;
      left -= k;
      if (stream.messageLeft === 0) {
        stream.prefixLeft = GRPC_PREFIX;
        stream.length = 0;
      }
    }
  }

  /** A DATA frame's end: with END_STREAM its stream's state goes. */
  private dataDone(): void {
    if (this.dataStream !== 0 && this.dataEndsStream) this.streams.delete(this.dataStream);
    this.dataStream = 0;
  }

  private startFrame(): void {
    const h = this.frameHead;
    this.frameHeadHave = 0;
    this.frameLeft = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const flags = h[4]!;
    const streamId = ((h[5]! & 0x7f) << 24) | (h[6]! << 16) | (h[7]! << 8) | h[8]!;
    this.inBlock = type === HEADERS || type === PUSH_PROMISE || type === CONTINUATION;
    if (type === HEADERS || type === PUSH_PROMISE) {
      // A new block: what was lost of an earlier one ends here (the table stays unknown).
      this.sawBlockStart = true;
      this.blockLost = false;
      this.state = Hpack.Op;
      // A promise's block describes the promised stream, whose id is in its payload: not followed.
      this.blockStream = type === HEADERS ? streamId : 0;
      this.blockEndsStream = (flags & END_STREAM) !== 0;
      this.contentType = undefined;
    }
    // A CONTINUATION before any block start we saw: its block began before the join.
    else if (type === CONTINUATION && !this.sawBlockStart) this.blockLost = true;
    this.endsBlock = this.inBlock && (flags & END_HEADERS) !== 0;
    this.padding = 0;
    this.readPadLength = type !== CONTINUATION && (flags & PADDED) !== 0;
    if (type === DATA && streamId !== 0 && this.frameLeft > 0) {
      this.dataStream = streamId;
      this.dataEndsStream = (flags & END_STREAM) !== 0;
    } else if (type === DATA && (flags & END_STREAM) !== 0) this.streams.delete(streamId);
    this.prefixLeft = (this.readPadLength ? 1 : 0) + (type === HEADERS && flags & PRIORITY ? 5 : 0) + (type === PUSH_PROMISE ? 4 : 0);
  }

  /** One header-block byte at payload[i]; returns bytes (or Huffman symbols' bytes) masked. */
  private hpackByte(i: number): number {
    const b = this.buf[i]!;
    switch (this.state) {
      case Hpack.Op:
        if (b & 0x80) return this.startInt(b, 7, Field.Index);
        if ((b & 0xc0) === 0x40) {
          this.addToTable = true;
          return this.startInt(b, 6, Field.NameIndex);
        }
        if ((b & 0xe0) === 0x20) return this.startInt(b, 5, Field.SizeUpdate);
        this.addToTable = false;
        return this.startInt(b, 4, Field.NameIndex);
      case Hpack.Int:
        this.intValue += (b & 0x7f) * 2 ** this.intShift;
        this.intShift += 7;
        if (this.intShift > 35) {
          this.loseTable();
          return 0;
        }
        if (!(b & 0x80)) this.intDone();
        return 0;
      case Hpack.StringHead:
        this.huffman = (b & 0x80) !== 0;
        return this.startInt(b, 7, this.intFor);
      case Hpack.NameBytes:
        this.nameBytes.push(b);
        if (--this.stringLeft === 0) this.nameDone();
        return 0;
      case Hpack.ValueBytes:
        return this.valueByte(i);
    }
  }

  private startInt(b: number, prefix: number, field: Field): number {
    const max = (1 << prefix) - 1;
    this.intFor = field;
    this.intValue = b & max;
    this.intShift = 0;
    if (this.intValue < max) this.intDone();
    else this.state = Hpack.Int;
    return 0;
  }

  private intDone(): void {
    const v = this.intValue;
    this.state = Hpack.Op;
    switch (this.intFor) {
      case Field.Index: {
        const entry = v > STATIC_TABLE.length ? this.table[v - STATIC_TABLE.length - 1] : undefined;
        if (entry?.value !== undefined) this.contentType = entry.value;
        return;
      }
      case Field.SizeUpdate:
        this.maxTableSize = v;
        this.evict();
        return;
      case Field.NameIndex:
        if (v === 0) {
          this.intFor = Field.NameLength;
          this.state = Hpack.StringHead;
          return;
        }
        this.name = this.nameAt(v);
        this.intFor = Field.ValueLength;
        this.state = Hpack.StringHead;
        return;
      case Field.NameLength:
        this.nameBytes = [];
        this.stringLeft = v;
        if (v === 0) this.nameDone();
        else this.state = Hpack.NameBytes;
        return;
      case Field.ValueLength:
        this.startValue(v);
        return;
    }
  }

  private nameAt(index: number): string {
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]![0];
    const entry = this.table[index - STATIC_TABLE.length - 1];
    if (entry) return entry.name;
    // An entry from before a mid-stream join: its name is unknown, so its value is masked.
    if (this.late) return UNKNOWN_NAME;
    this.loseTable(); // an index this side never saw: the table is not ours to know
    return '';
  }

  private nameDone(): void {
    const raw = Buffer.from(this.nameBytes);
    try {
      this.name = this.huffman ? huffmanDecode(raw, 0, raw.length) : raw.toString('latin1');
    } catch {
      this.loseTable();
      this.name = '';
    }
    this.intFor = Field.ValueLength;
    this.state = Hpack.StringHead;
  }

  private startValue(length: number): void {
    this.secret = isSecretHeader(this.name) || this.name === UNKNOWN_NAME ? Secret.Whole : this.name === ':path' ? Secret.Query : Secret.No;
    this.collecting = this.name === 'content-type';
    if (this.collecting) this.contentType = '';
    this.stringLeft = length;
    this.decodedLength = 0;
    this.code = 0;
    this.codeLength = 0;
    this.bit = 0;
    this.symbolStart = 0;
    this.inQuery = false;
    this.inQueryValue = false;
    this.queryDone = false;
    this.here.clear();
    if (length === 0) this.valueDone();
    else this.state = Hpack.ValueBytes;
  }

  private valueByte(i: number): number {
    let masked = 0;
    const byteNo = this.bit >> 3;
    if (!this.huffman) {
      this.decodedLength++;
      if (this.hides(this.buf[i]!)) {
        this.buf[i] = MASK;
        masked++;
      }
      this.bit += 8;
    } else {
      this.here.set(byteNo, i);
      const b = this.buf[i]!;
      for (let k = 7; k >= 0; k--) {
        this.code = this.code * 2 + ((b >> k) & 1);
        this.codeLength++;
        this.bit++;
        const group = CODES_BY_LENGTH[this.codeLength];
        const at = group ? this.code - group.first : -1;
        if (group && at >= 0 && at < group.symbols.length) {
          this.decodedLength++;
          if (this.hides(group.symbols[at]!)) masked += this.writeCode(this.symbolStart, this.codeLength, this.code, group.replacement);
          this.symbolStart = this.bit;
          this.code = 0;
          this.codeLength = 0;
        } else if (this.codeLength > 30) {
          this.loseTable();
          return masked;
        }
      }
    }
    if (--this.stringLeft === 0) this.valueDone();
    return masked;
  }

  /** Does this character of the value get masked? Follows :path's query as it goes (and keeps a content-type). */
  private hides(c: number): boolean {
    if (this.collecting && this.contentType!.length < 64) this.contentType += String.fromCharCode(c);
    if (this.secret === Secret.Whole) return true;
    if (this.secret === Secret.No || this.queryDone) return false;
    if (!this.inQuery) {
      this.inQuery = c === 0x3f; // '?'
      return false;
    }
    if (c === 0x23) {
      // '#'
      this.queryDone = true;
      return false;
    }
    if (c === 0x26) {
      // '&'
      this.inQueryValue = false;
      return false;
    }
    if (c === 0x3d && !this.inQueryValue) {
      // '='
      this.inQueryValue = true;
      return false;
    }
    return this.inQueryValue;
  }

  /**
   * Write `replacement` (length bits) over the symbol `code` at the string's
   * bit `start`. Its bits in bytes before its last byte are kept (an earlier
   * record may have handed them on already): the replacement then is one that
   * begins with them (half of another would be a code of another length); 0
   * when there is none.
   */
  private writeCode(start: number, length: number, code: number, replacement: number): number {
    const kept = Math.max(0, ((start + length - 1) >> 3) * 8 - start);
    if (kept > 0) {
      replacement = replacementKeeping(length, code, kept);
      if (replacement === code) return 0;
    }
    for (let k = kept; k < length; k++) {
      const pos = start + k;
      const at = this.here.get(pos >> 3)!;
      const bitValue = Math.floor(replacement / 2 ** (length - 1 - k)) & 1;
      const mask = 1 << (7 - (pos & 7));
      this.buf[at] = bitValue ? this.buf[at]! | mask : this.buf[at]! & ~mask;
    }
    return 1;
  }

  private valueDone(): void {
    this.state = Hpack.Op;
    const contentType = this.collecting ? this.contentType : undefined;
    this.collecting = false;
    this.here.clear();
    if (!this.addToTable) return;
    this.table.unshift({ name: this.name, size: Buffer.byteLength(this.name, 'latin1') + this.decodedLength + 32, ...(contentType !== undefined ? { value: contentType } : {}) });
    this.tableSize += this.table[0]!.size;
    this.evict();
  }

  private evict(): void {
    while (this.tableSize > this.maxTableSize && this.table.length > 0) this.tableSize -= this.table.pop()!.size;
  }
}
