/**
 * A PostgreSQL client's secrets masked in its bytes, byte for byte (lengths
 * and framing never change, so the parser and a replay read the same
 * messages): password and SASL messages whole, and the literals of
 * statements and bound parameters. A decision about a byte is made before
 * the byte comes, so a secret is masked however the stream is cut.
 */
import type { PayloadMasker } from '../module';
import { SqlLiterals } from '../shared/sql-literals';
import { Frontend } from './codes';

const STAR = 0x2a;
/** PostgreSQL frontend types as the bytes the masker meets. */
const PG = {
  Query: Frontend.Query.charCodeAt(0),
  Parse: Frontend.Parse.charCodeAt(0),
  Bind: Frontend.Bind.charCodeAt(0),
  Password: Frontend.Password.charCodeAt(0),
} as const;

/** PostgreSQL, frontend messages: 'p' (password, SASL) masked whole; the text of 'Q' and 'P', and 'B' parameter values, of their literals. */
export class PostgresMasker implements PayloadMasker {
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
  private bind:
    { stage: 'portal' | 'statement' | 'formatCount' | 'formats' | 'paramCount' | 'valueLength' | 'value' | 'rest'; left: number; bytes: number[]; valueLeft: number } | undefined;

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
