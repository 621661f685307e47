/**
 * A MySQL client's secrets masked in its bytes, byte for byte: the handshake
 * response's auth data, auth-switch answers, COM_CHANGE_USER's, statements'
 * literals and bound values (trace context attributes kept), compressed
 * packets included. A decision about a byte is made before the byte comes,
 * so a secret is masked however the stream is cut.
 */
import * as zlib from 'node:zlib';
import type { MaskingNotes, PayloadMasker } from '../module';
import { SqlLiterals } from '../shared/sql-literals';
import { Command, greetingCapabilities } from './codes';

const STAR = 0x2a;

const CLIENT_COMPRESS = 0x20;
const CLIENT_QUERY_ATTRIBUTES = 0x8000000;
/** COM_STMT_EXECUTE flags: the parameter count is sent (with query attributes). */
const PARAMETER_COUNT_AVAILABLE = 0x08;
const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x4000000;
const CLIENT_PLUGIN_AUTH_LENENC = 0x00200000;
const CLIENT_SECURE_CONNECTION = 0x00008000;

/** MySQL, client packets: the handshake response's auth data, auth-switch answers, COM_CHANGE_USER's, and statements' literals. */
export class MysqlMasker implements PayloadMasker {
  private readonly head = Buffer.alloc(4);
  private headLength = 0;
  private payloadLeft = 0;
  private seq = 0;
  /** Bytes of the packet so far, while its structure still decides (handshake, change user). */
  private packet: number[] = [];
  private kind: 'login' | 'auth' | 'command' | 'changeUser' | 'statement' | 'execute' | 'parameters' | 'other' = 'other';
  /** The login negotiated query attributes (MySQL 8.0.23+): COM_QUERY and COM_STMT_EXECUTE carry named values. */
  private queryAttributes = false;
  private parameters: ParameterBlock | undefined;
  private loggedIn = false;
  /** Where the secret lies in the packet under way, once known: [from, to). */
  private secret: [number, number] | undefined;
  private readonly sql = new SqlLiterals(true, [0x27, 0x22]);
  /** The login asked for compression: after it, the client's bytes are compressed packets. */
  private compressing: 'zlib' | 'zstd' | undefined;
  private compressed: CompressedMysqlMasker | undefined;

  constructor(
    loggedIn = false,
    queryAttributes = false,
    /** What the server's greeting said (MysqlGreetingReader), when this masker's socket showed it. */
    private readonly notes: MaskingNotes = {},
  ) {
    this.loggedIn = loggedIn;
    this.queryAttributes = queryAttributes;
  }

  get decidedPerRecord(): boolean {
    return this.compressed?.decidedPerRecord ?? false;
  }

  mask(payload: Uint8Array): number {
    if (this.compressed) return this.compressed.mask(payload);
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      const b = payload[i]!;
      if (this.payloadLeft === 0) {
        this.head[this.headLength++] = b;
        if (this.headLength < 4) continue;
        this.headLength = 0;
        if (!this.loggedIn && this.head[3] === 0 && this.compressing) {
          // The first command, in the first compressed packet: these four bytes begin its 7-byte header.
          this.compressed = new CompressedMysqlMasker(this.compressing, this.head, this.queryAttributes);
          return masked + this.compressed.mask(payload.subarray(i + 1));
        }
        this.payloadLeft = this.head.readUIntLE(0, 3);
        this.seq = this.head[3]!;
        this.packet = [];
        this.secret = undefined;
        this.sql.reset();
        // Before the first command (seq 0), client packets are the login and its auth turns.
        this.kind = !this.loggedIn && this.seq === 1 ? 'login' : !this.loggedIn && this.seq > 1 ? 'auth' : 'command';
        if (this.seq === 0) this.loggedIn = true;
        continue;
      }
      const at = this.packet.length;
      this.payloadLeft--;
      if (this.kind === 'command' && at === 0) {
        this.kind = b === Command.QUERY || b === Command.STMT_PREPARE ? 'statement' : b === Command.CHANGE_USER ? 'changeUser' : b === Command.STMT_EXECUTE ? 'execute' : 'other';
        if (b === Command.QUERY && this.queryAttributes) {
          this.kind = 'parameters';
          this.parameters = new ParameterBlock(true, true);
        }
        this.packet.push(b);
        continue;
      }
      if (this.kind === 'parameters') {
        const r = this.parameters!.byte(payload, i);
        masked += r;
        // After a query's attributes, its statement; nothing follows an execute's values but what is masked.
        if (this.parameters!.done) this.kind = this.packet[0] === Command.QUERY ? 'statement' : 'auth';
        continue;
      }
      if (this.kind === 'execute' && at === 10 && this.queryAttributes && this.packet[5]! & PARAMETER_COUNT_AVAILABLE) {
        // Named parameters (query attributes among them): names kept, values masked.
        this.kind = 'parameters';
        this.parameters = new ParameterBlock(false, true);
        masked += this.parameters.byte(payload, i);
        continue;
      }
      if (this.kind === 'other') continue;
      if (this.kind === 'statement') {
        masked += this.sql.byte(payload, i);
        continue;
      }
      if (this.kind === 'auth' || (this.kind === 'execute' && at >= 10)) {
        // Auth-switch answers are all secret; COM_STMT_EXECUTE after id, flags and iteration count: the parameters.
        payload[i] = STAR;
        masked++;
        continue;
      }
      this.packet.push(b);
      if (!this.secret) this.secret = this.findSecret();
      if (this.secret && at >= this.secret[0] && at < this.secret[1]) {
        payload[i] = STAR;
        masked++;
      }
    }
    return masked;
  }

  /** Where the auth data of a login or change-user packet lies, once the bytes before it are known. */
  private findSecret(): [number, number] | undefined {
    const p = this.packet;
    if (this.kind === 'login') {
      if (p.length < 33) return undefined;
      const caps = (p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24)) >>> 0;
      this.compressing = caps & CLIENT_COMPRESS ? 'zlib' : caps & CLIENT_ZSTD_COMPRESSION_ALGORITHM ? 'zstd' : undefined;
      // On only if the server offered them too (MariaDB does not, and mysql2 asks regardless); a greeting not
      // seen counts as offered, which masks more, never less.
      const server = this.notes.fromServer;
      this.queryAttributes = (caps & CLIENT_QUERY_ATTRIBUTES) !== 0 && (typeof server !== 'number' || (server & CLIENT_QUERY_ATTRIBUTES) !== 0);
      const nul = p.indexOf(0, 32);
      if (nul < 0 || p.length <= nul + 1) return undefined;
      const lenAt = nul + 1;
      if (caps & (CLIENT_PLUGIN_AUTH_LENENC | CLIENT_SECURE_CONNECTION)) {
        const first = p[lenAt]!;
        // A one-byte length (every real scramble); a longer lenenc one: mask the rest of the packet.
        return first < 0xfb ? [lenAt + 1, lenAt + 1 + first] : [lenAt + 1, Infinity];
      }
      return [lenAt, Infinity]; // NUL-terminated old auth: to the packet's end, to be safe
    }
    if (this.kind === 'changeUser') {
      // 0x11, user NUL, auth length (1 byte), auth data
      const nul = p.indexOf(0, 1);
      if (nul < 0 || p.length <= nul + 1) return undefined;
      return [nul + 2, nul + 2 + p[nul + 1]!];
    }
    return undefined;
  }
}

/** Greetings longer than this are not read past it: the capability flags lie in the first hundred bytes. */
const GREETING_READ_MAX = 512;

/**
 * The server's direction, read for its client's masker: the greeting's
 * capability flags, into the notes the socket's maskers share. Masks nothing.
 */
export class MysqlGreetingReader implements PayloadMasker {
  private readonly head: number[] = [];
  private packet: number[] | undefined;
  private left = 0;
  private done = false;

  constructor(private readonly notes: MaskingNotes) {}

  mask(payload: Uint8Array): number {
    for (let i = 0; i < payload.length && !this.done; i++) {
      if (!this.packet) {
        this.head.push(payload[i]!);
        if (this.head.length < 4) continue;
        this.left = Math.min(this.head[0]! | (this.head[1]! << 8) | (this.head[2]! << 16), GREETING_READ_MAX);
        this.packet = [];
        if (this.left > 0) continue;
      } else {
        this.packet.push(payload[i]!);
        this.left--;
      }
      if (this.left === 0) {
        this.done = true;
        // Only a greeting (sequence 0, protocol version 10) says capabilities; an ERR in its place says none.
        if (this.head[3] === 0 && this.packet[0] === 10) this.notes.fromServer = greetingCapabilities(Buffer.from(this.packet));
      }
    }
    return 0;
  }
}

/** Sizes of binary-protocol values by MYSQL_TYPE_*: fixed, or -2 for a length byte then the value; others are length-encoded. */
const MYSQL_VALUE_SIZE: Record<number, number> = {
  0x01: 1,
  0x02: 2,
  0x03: 4,
  0x04: 4,
  0x05: 8,
  0x06: 0,
  0x08: 8,
  0x09: 4,
  0x0d: 2,
  0x07: -2,
  0x0a: -2,
  0x0b: -2,
  0x0c: -2,
  0x11: -2,
  0x12: -2,
  0x13: -2,
};
/** Query attributes whose values are kept, as HTTP keeps these headers': trace context, no secret. */
const KEPT_ATTRIBUTES = new Set(['traceparent', 'tracestate']);
/** More attributes than this is not an attribute block (a statement's first letter read as a count): the rest is masked. */
const MAX_ATTRIBUTES = 64;

/**
 * Named values ahead of a COM_QUERY statement (query attributes) or in a
 * COM_STMT_EXECUTE (parameters, attributes after them), streamed: count
 * (and, in COM_QUERY, a set count of 1), NULL bitmap, the new-params-bound
 * flag, each type and name, then each value. Names are kept, values masked
 * (but trace context); anything that does not read as such a block masks
 * the rest of the packet, statement included — never less than without it.
 */
class ParameterBlock {
  private step: 'count' | 'sets' | 'bitmap' | 'bound' | 'type' | 'nameLength' | 'name' | 'valueStart' | 'valueLength' | 'value' | 'opaque' | 'done';
  private count = 0;
  /** A length-encoded integer being read: bytes still to come, and its value so far. */
  private intLeft = 0;
  private intValue = 0;
  private intShift = 0;
  private left = 0;
  private index = 0;
  private readonly nulls: number[] = [];
  private readonly types: number[] = [];
  private readonly names: string[] = [];
  private name: number[] = [];
  private keepValue = false;

  constructor(
    private readonly withSets: boolean,
    private readonly withNames: boolean,
  ) {
    this.step = 'count';
  }

  get done(): boolean {
    return this.step === 'done';
  }

  /** Reads (and masks where it is a value) payload[at]; returns 1 when masked. */
  byte(payload: Uint8Array, at: number): number {
    const b = payload[at]!;
    switch (this.step) {
      case 'count':
      case 'sets':
      case 'nameLength':
      case 'valueLength': {
        const n = this.lenenc(b);
        if (n === undefined) return 0;
        if (n < 0) return this.opaque(payload, at);
        this.afterInteger(n);
        return 0;
      }
      case 'bitmap':
        this.nulls.push(b);
        if (--this.left === 0) this.step = 'bound';
        return 0;
      case 'bound':
        if (b !== 1) return this.opaque(payload, at); // types not sent: the values' sizes are unknown here
        this.index = 0;
        this.step = 'type';
        this.left = 2;
        return 0;
      case 'type':
        if (this.left === 2) this.types.push(b);
        if (--this.left > 0) return 0;
        if (this.withNames) this.step = 'nameLength';
        else this.nextType();
        return 0;
      case 'name':
        this.name.push(b);
        if (--this.left === 0) {
          this.names.push(Buffer.from(this.name).toString('latin1').toLowerCase());
          this.nextType();
        }
        return 0;
      case 'valueStart':
        return this.valueStart(payload, at);
      case 'value': {
        const keep = this.keepValue;
        if (--this.left === 0) this.nextValue();
        if (keep) return 0;
        payload[at] = STAR;
        return 1;
      }
      case 'opaque':
        payload[at] = STAR;
        return 1;
      case 'done':
        return 0;
    }
  }

  private opaque(payload: Uint8Array, at: number): number {
    this.step = 'opaque';
    payload[at] = STAR;
    return 1;
  }

  /** One byte of a length-encoded integer: its value when complete, -1 when it cannot be one. */
  private lenenc(b: number): number | undefined {
    if (this.intLeft === 0) {
      if (b < 0xfb) return b;
      if (b === 0xfb || b === 0xff) return -1;
      this.intLeft = b === 0xfc ? 2 : b === 0xfd ? 3 : 8;
      this.intValue = 0;
      this.intShift = 0;
      return undefined;
    }
    this.intValue += b * 2 ** this.intShift;
    this.intShift += 8;
    return --this.intLeft === 0 ? this.intValue : undefined;
  }

  private afterInteger(n: number): void {
    switch (this.step) {
      case 'count':
        if (n > MAX_ATTRIBUTES && this.withSets) {
          this.step = 'opaque';
          return;
        }
        this.count = n;
        if (this.withSets) this.step = 'sets';
        else this.startBitmap();
        return;
      case 'sets':
        if (n !== 1 && this.count > 0) {
          this.step = 'opaque';
          return;
        }
        this.startBitmap();
        return;
      case 'nameLength':
        this.name = [];
        if (n === 0) {
          this.names.push('');
          this.nextType();
        } else {
          this.left = n;
          this.step = 'name';
        }
        return;
      case 'valueLength':
        if (n === 0) this.nextValue();
        else {
          this.left = n;
          this.step = 'value';
        }
        return;
      default:
    }
  }

  private startBitmap(): void {
    if (this.count === 0) {
      this.step = 'done';
      return;
    }
    this.left = (this.count + 7) >> 3;
    this.step = 'bitmap';
  }

  private nextType(): void {
    if (this.types.length < this.count) {
      this.step = 'type';
      this.left = 2;
      return;
    }
    this.index = -1;
    this.nextValue();
  }

  /** On to the next value that has bytes (NULLs have none). */
  private nextValue(): void {
    for (this.index++; this.index < this.count; this.index++) {
      if ((this.nulls[this.index >> 3]! >> (this.index & 7)) & 1) continue;
      const size = MYSQL_VALUE_SIZE[this.types[this.index]!] ?? -1;
      if (size === 0) continue;
      this.keepValue = KEPT_ATTRIBUTES.has(this.names[this.index] ?? '');
      this.step = 'valueStart';
      return;
    }
    this.step = 'done';
  }

  private valueStart(payload: Uint8Array, at: number): number {
    const size = MYSQL_VALUE_SIZE[this.types[this.index]!] ?? -1;
    if (size > 0) {
      this.left = size;
      this.step = 'value';
      return this.byte(payload, at);
    }
    if (size === -2) {
      // A length byte, kept, then the value.
      if (payload[at] === 0) this.nextValue();
      else {
        this.left = payload[at]!;
        this.step = 'value';
      }
      return 0;
    }
    this.step = 'valueLength';
    return this.byte(payload, at);
  }
}

/**
 * A MySQL client's compressed packets (7-byte header: compressed length,
 * sequence id, length before compression, 0 when sent as is). A packet sent
 * as is goes through the plain masker byte by byte. A deflated one is
 * inflated, masked and deflated again into its own bytes, padded after the
 * zlib stream's end (Loupe's reader ignores what follows the end), when it
 * lies whole in one record and deflates again no longer; otherwise (it spans
 * records, zstd, it does not inflate, it would grow) its payload is masked
 * whole and the parser reports it unreadable, its length still framing the
 * rest. The wire is never touched: only what is recorded.
 */
class CompressedMysqlMasker {
  private readonly head = Buffer.alloc(7);
  private headLength: number;
  private left = 0;
  private plainLength = 0;
  private whole = false;
  private payloadStarts = false;
  /** The plain stream: packets usually align with compressed ones, so it restarts after a payload masked whole. */
  private inner: MysqlMasker;
  decidedPerRecord = false;

  constructor(
    private readonly algorithm: 'zlib' | 'zstd',
    headStart: Buffer,
    private readonly queryAttributes: boolean,
  ) {
    this.inner = new MysqlMasker(true, queryAttributes);
    headStart.copy(this.head, 0, 0, 4);
    this.headLength = 4;
  }

  mask(payload: Uint8Array): number {
    let masked = 0;
    let i = 0;
    while (i < payload.length) {
      if (this.left === 0) {
        this.head[this.headLength++] = payload[i++]!;
        if (this.headLength < 7) continue;
        this.headLength = 0;
        this.left = this.head.readUIntLE(0, 3);
        this.plainLength = this.head.readUIntLE(4, 3);
        this.whole = this.plainLength !== 0;
        this.payloadStarts = true;
        continue;
      }
      if (this.payloadStarts) {
        // Its first byte: a deflated payload is read whole if this record holds it (servers read the header apart).
        this.payloadStarts = false;
        if (this.whole) {
          this.decidedPerRecord = true;
          if (this.algorithm === 'zlib' && i + this.left <= payload.length && this.again(payload, i)) {
            masked += this.maskedLast;
            i += this.left;
            this.left = 0;
            continue;
          }
        }
      }
      const n = Math.min(this.left, payload.length - i);
      if (this.whole) {
        payload.fill(STAR, i, i + n);
        masked += n;
      } else masked += this.inner.mask(payload.subarray(i, i + n));
      i += n;
      this.left -= n;
      if (this.left === 0 && this.whole) this.inner = new MysqlMasker(true, this.queryAttributes);
    }
    return masked;
  }

  private maskedLast = 0;

  /** Masks the deflated payload at `at` in place, re-deflated; false when it cannot be (the caller masks it whole). */
  private again(payload: Uint8Array, at: number): boolean {
    const bytes = Buffer.from(payload.buffer, payload.byteOffset + at, this.left);
    let plain: Buffer;
    try {
      plain = zlib.inflateSync(bytes, { maxOutputLength: this.plainLength, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch {
      return false;
    }
    if (plain.length !== this.plainLength) return false;
    this.maskedLast = this.inner.mask(plain);
    if (this.maskedLast === 0) return true; // nothing secret: the bytes stay as sent
    const deflated = zlib.deflateSync(plain, { level: 9 });
    if (deflated.length > bytes.length) return false;
    deflated.copy(bytes, 0);
    bytes.fill(0, deflated.length);
    return true;
  }
}
