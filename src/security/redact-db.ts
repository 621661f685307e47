/**
 * Database clients' secrets masked in the bytes, before a capture or the
 * pipeline sees them, byte for byte (lengths and framing never change, so
 * the parsers and a replay read the same messages): PostgreSQL password and
 * SASL messages, MySQL authentication data, Redis AUTH (and HELLO … AUTH,
 * CONFIG SET of passwords, ACL SETUSER passwords), and the literals of SQL
 * statements (string contents become '*', digits of numbers '0': statements
 * still read as SQL, and normalise to the same text).
 *
 * Each masker reads one client→server byte stream as it arrives, in records
 * cut anywhere; a decision about a byte is made before the byte comes (from
 * the headers and words before it), so a secret is masked however it is cut.
 */

import * as zlib from 'node:zlib';
import { Command } from '../parsers/mysql/codes';
import { Frontend } from '../parsers/postgres/codes';

const STAR = 0x2a;
/** PostgreSQL frontend types as the bytes the masker meets. */
const PG = {
  Query: Frontend.Query.charCodeAt(0),
  Parse: Frontend.Parse.charCodeAt(0),
  Bind: Frontend.Bind.charCodeAt(0),
  Password: Frontend.Password.charCodeAt(0),
} as const;
const ZERO = 0x30;
const LF = 0x0a;
const CR = 0x0d;

export type { DatabaseProtocol as DbProtocol } from '../parsers/protocols';
import type { DatabaseProtocol as DbProtocol } from '../parsers/protocols';

export interface DbMasker {
  mask(payload: Uint8Array): number;
  /** What was masked depended on where records were cut (a compressed MySQL packet read whole only inside one record). */
  readonly decidedPerRecord?: boolean;
}

export function dbMasker(protocol: DbProtocol, connectionStart: boolean): DbMasker {
  if (protocol === 'postgres') return new PostgresMasker(connectionStart);
  if (protocol === 'mysql') return new MysqlMasker();
  return new RedisMasker();
}

/**
 * SQL literals, streamed: inside a quoted string every byte but the quotes is
 * masked; a number's digits become '0' unless they continue an identifier.
 */
class SqlLiterals {
  private quote = 0;
  /** A quote inside a string: the string ends, unless the next byte is the same quote (an escaped one). */
  private quotePending = false;
  private escaped = false;
  private prevWord = false;
  private inNumber = false;
  constructor(private readonly backslashEscapes: boolean, private readonly stringQuotes: number[]) {}

  reset(): void {
    this.quote = 0;
    this.quotePending = false;
    this.escaped = false;
    this.prevWord = false;
    this.inNumber = false;
  }

  /** Mask payload[at] in place if it is inside a literal; returns 1 when masked. */
  byte(payload: Uint8Array, at: number): number {
    const b = payload[at]!;
    if (this.quote) {
      if (this.quotePending) {
        this.quotePending = false;
        if (b === this.quote) return 0; // '' : an escaped quote, the string goes on
        this.quote = 0; // the string ended at the quote before: this byte is outside
      } else if (this.escaped) {
        this.escaped = false;
        payload[at] = STAR;
        return 1;
      } else if (b === this.quote) {
        this.quotePending = true;
        return 0;
      } else if (b === 0x5c && this.backslashEscapes) {
        this.escaped = true;
        payload[at] = STAR;
        return 1;
      } else {
        payload[at] = STAR;
        return 1;
      }
    }
    if (this.stringQuotes.includes(b)) {
      this.quote = b;
      this.prevWord = false;
      this.inNumber = false;
      return 0;
    }
    const digit = b >= 0x30 && b <= 0x39;
    const word = digit || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x24 || b >= 0x80;
    if (digit && (this.inNumber || !this.prevWord)) {
      this.inNumber = true;
      this.prevWord = true;
      if (b !== ZERO) {
        payload[at] = ZERO;
        return 1;
      }
      return 0;
    }
    if (this.inNumber && b === 0x2e) return 0; // a decimal point inside a number
    this.inNumber = false;
    this.prevWord = word;
    return 0;
  }
}

/** PostgreSQL, frontend messages: 'p' (password, SASL) masked whole; the text of 'Q' and 'P', and 'B' parameter values, of their literals. */
class PostgresMasker implements DbMasker {
  private readonly head = Buffer.alloc(8);
  private headLength = 0;
  /** The next message has no type byte (start-up, SSL or GSS request, cancel). */
  private untyped: boolean;
  private type = 0;
  private bodyLeft = 0;
  /** Bytes of the body read so far (for 'B' and 'P', whose structure decides what is masked). */
  private bodyAt = 0;
  private readonly sql = new SqlLiterals(false, [0x27]);
  /** 'P': the statement name's NUL seen (the query text follows); 'Q': text from the start. */
  private inText = false;
  /** 'B': parsing its fixed fields, then values to mask. */
  private bind: { stage: 'portal' | 'statement' | 'formatCount' | 'formats' | 'paramCount' | 'valueLength' | 'value' | 'rest'; left: number; bytes: number[]; valueLeft: number } | undefined;

  constructor(connectionStart: boolean) {
    this.untyped = connectionStart;
  }

  mask(payload: Uint8Array): number {
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      const b = payload[i]!;
      if (this.bodyLeft === 0) {
        this.head[this.headLength++] = b;
        const need = this.untyped ? 8 : 5;
        if (this.headLength < need) continue;
        this.headLength = 0;
        if (this.untyped) {
          const len = this.head.readUInt32BE(0);
          const code = this.head.readUInt32BE(4);
          // After an SSL or GSS request the client may send another start-up (the server said no).
          this.untyped = code === 80877103 || code === 80877104;
          this.type = 0;
          this.bodyLeft = Math.max(0, len - 8);
        } else {
          this.type = this.head[0]!;
          this.bodyLeft = Math.max(0, this.head.readUInt32BE(1) - 4);
        }
        this.bodyAt = 0;
        this.inText = this.type === PG.Query;
        this.sql.reset();
        this.bind = this.type === PG.Bind ? { stage: 'portal', left: 0, bytes: [], valueLeft: 0 } : undefined;
        continue;
      }
      this.bodyLeft--;
      masked += this.bodyByte(payload, i, b);
      this.bodyAt++;
    }
    return masked;
  }

  private bodyByte(payload: Uint8Array, i: number, b: number): number {
    switch (this.type) {
      case PG.Password: // PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse
        payload[i] = STAR;
        return 1;
      case PG.Query:
        return b === 0 ? 0 : this.sql.byte(payload, i);
      case PG.Parse: // name NUL, query NUL, parameter types
        if (!this.inText) {
          if (b === 0) this.inText = true;
          return 0;
        }
        if (b === 0) {
          this.type = 0; // the rest (parameter type oids) is not text
          return 0;
        }
        return this.sql.byte(payload, i);
      case PG.Bind:
        return this.bindByte(payload, i, b);
      default:
        return 0;
    }
  }

  /** Bind: portal NUL, statement NUL, Int16 format count + codes, Int16 value count, then (Int32 length, bytes) per value. */
  private bindByte(payload: Uint8Array, i: number, b: number): number {
    const s = this.bind!;
    switch (s.stage) {
      case 'portal':
        if (b === 0) s.stage = 'statement';
        return 0;
      case 'statement':
        if (b === 0) Object.assign(s, { stage: 'formatCount', bytes: [] });
        return 0;
      case 'formatCount': {
        s.bytes.push(b);
        if (s.bytes.length < 2) return 0;
        const formats = (s.bytes[0]! << 8) | s.bytes[1]!;
        Object.assign(s, { stage: formats === 0 ? 'paramCount' : 'formats', left: 2 * formats, bytes: [] });
        return 0;
      }
      case 'formats':
        if (--s.left === 0) s.stage = 'paramCount';
        return 0;
      case 'paramCount': {
        s.bytes.push(b);
        if (s.bytes.length < 2) return 0;
        const values = (s.bytes[0]! << 8) | s.bytes[1]!;
        Object.assign(s, { stage: values === 0 ? 'rest' : 'valueLength', left: values, bytes: [] });
        return 0;
      }
      case 'valueLength': {
        s.bytes.push(b);
        if (s.bytes.length < 4) return 0;
        const length = Buffer.from(s.bytes).readInt32BE(0);
        s.bytes = [];
        if (length > 0) Object.assign(s, { stage: 'value', valueLeft: length });
        else if (--s.left === 0) s.stage = 'rest'; // NULL (-1) or empty: nothing to mask
        return 0;
      }
      case 'value':
        payload[i] = STAR;
        if (--s.valueLeft === 0) s.stage = --s.left === 0 ? 'rest' : 'valueLength';
        return 1;
      default:
        return 0;
    }
  }
}

const CLIENT_COMPRESS = 0x20;
const CLIENT_QUERY_ATTRIBUTES = 0x8000000;
/** COM_STMT_EXECUTE flags: the parameter count is sent (with query attributes). */
const PARAMETER_COUNT_AVAILABLE = 0x08;
const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x4000000;
const CLIENT_PLUGIN_AUTH_LENENC = 0x00200000;
const CLIENT_SECURE_CONNECTION = 0x00008000;

/** MySQL, client packets: the handshake response's auth data, auth-switch answers, COM_CHANGE_USER's, and statements' literals. */
class MysqlMasker implements DbMasker {
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

  constructor(loggedIn = false, queryAttributes = false) {
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
      if (this.kind === 'execute' && at === 10 && this.queryAttributes && (this.packet[5]! & PARAMETER_COUNT_AVAILABLE)) {
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
      this.queryAttributes = (caps & CLIENT_QUERY_ATTRIBUTES) !== 0;
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

/** Sizes of binary-protocol values by MYSQL_TYPE_*: fixed, or -2 for a length byte then the value; others are length-encoded. */
const MYSQL_VALUE_SIZE: Record<number, number> = {
  0x01: 1, 0x02: 2, 0x03: 4, 0x04: 4, 0x05: 8, 0x06: 0, 0x08: 8, 0x09: 4, 0x0d: 2,
  0x07: -2, 0x0a: -2, 0x0b: -2, 0x0c: -2, 0x11: -2, 0x12: -2, 0x13: -2,
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

  constructor(private readonly withSets: boolean, private readonly withNames: boolean) {
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

  constructor(private readonly algorithm: 'zlib' | 'zstd', headStart: Buffer, private readonly queryAttributes: boolean) {
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

/** Redis commands whose arguments from this index on are secret, or a rule for which. */
const REDIS_SECRET_ARGS: Record<string, number> = { AUTH: 1 };

/** Redis, client commands: AUTH's arguments, HELLO's password, CONFIG SET of passwords, ACL SETUSER's password rules, MIGRATE's AUTH. */
class RedisMasker implements DbMasker {
  private state: 'start' | 'count' | 'bulkHead' | 'bulk' | 'bulkCr' | 'bulkLf' | 'inline' | 'skipLine' = 'start';
  private number = '';
  private args = 0;
  private index = 0;
  private bulkLeft = 0;
  private words: string[] = [];
  private word: number[] = [];
  private maskThis = false;
  private inlineSpace = false;

  mask(payload: Uint8Array): number {
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      const b = payload[i]!;
      switch (this.state) {
        case 'start':
          if (b === 0x2a) Object.assign(this, { state: 'count', number: '', index: 0, words: [] });
          else if (b === CR || b === LF) break;
          else {
            Object.assign(this, { state: 'inline', words: [], word: [b], inlineSpace: false, index: 0, maskThis: false });
          }
          break;
        case 'count':
          if (b === LF) {
            this.args = Number(this.number) || 0;
            this.state = this.args > 0 ? 'bulkHead' : 'start';
          } else if (b !== CR) this.number += String.fromCharCode(b);
          break;
        case 'bulkHead':
          if (b === 0x24) this.number = '';
          else if (b === LF) {
            this.bulkLeft = Math.max(0, Number(this.number) || 0);
            this.maskThis = this.isSecret(this.index);
            this.word = [];
            this.state = this.bulkLeft > 0 ? 'bulk' : 'bulkCr';
          } else if (b !== CR) this.number += String.fromCharCode(b);
          break;
        case 'bulk':
          if (this.word.length < 32) this.word.push(b);
          if (this.maskThis) {
            payload[i] = STAR;
            masked++;
          }
          if (--this.bulkLeft === 0) this.state = 'bulkCr';
          break;
        case 'bulkCr':
          this.state = 'bulkLf';
          break;
        case 'bulkLf':
          this.words.push(Buffer.from(this.word).toString('latin1').toUpperCase());
          this.index++;
          this.state = this.index < this.args ? 'bulkHead' : 'start';
          break;
        case 'inline':
          if (b === LF) {
            this.state = 'start';
            break;
          }
          if (b === 0x20) {
            if (!this.inlineSpace) {
              this.words.push(Buffer.from(this.word).toString('latin1').toUpperCase());
              this.index++;
              this.word = [];
              this.maskThis = this.isSecret(this.index);
            }
            this.inlineSpace = true;
            break;
          }
          this.inlineSpace = false;
          if (this.word.length < 32) this.word.push(b);
          if (this.maskThis && b !== CR) {
            payload[i] = STAR;
            masked++;
          }
          break;
        default:
          break;
      }
    }
    return masked;
  }

  /** Whether argument `index` of the command under way is a secret, from the words before it. */
  private isSecret(index: number): boolean {
    const w = this.words;
    const command = w[0];
    if (command === undefined) return false;
    const from = REDIS_SECRET_ARGS[command];
    if (from !== undefined) return index >= from;
    if (command === 'HELLO') return w[index - 2] === 'AUTH'; // HELLO 3 AUTH user password
    if (command === 'MIGRATE') return w[index - 1] === 'AUTH' || w[index - 2] === 'AUTH2' || w[index - 1] === 'AUTH2';
    if (command === 'CONFIG' && w[1] === 'SET') return index >= 3 && (index - 3) % 2 === 1 && /PASS|AUTH/.test(w[index - 1] ?? '');
    if (command === 'ACL' && w[1] === 'SETUSER') return index >= 3; // rules: >password, #hash among them
    return false;
  }
}
