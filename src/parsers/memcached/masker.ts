/**
 * A memcached client's secrets masked in its bytes: the value of a binary
 * SASL_AUTH or SASL_STEP (PLAIN carries the password), byte for byte however
 * the stream is cut. The text protocol carries no credential of its own.
 */
import type { PayloadMasker } from '../module';
import { BINARY_HEADER, Magic, SECRET_OPCODES } from './codes';

const STAR = 0x2a;

export class MemcachedMasker implements PayloadMasker {
  private binary: boolean | undefined;
  private readonly header = Buffer.alloc(BINARY_HEADER);
  private headerLength = 0;
  /** Body bytes left of the packet under way: first the extras and key (kept), then the value (masked when secret). */
  private keep = 0;
  private value = 0;
  private secret = false;

  mask(payload: Uint8Array): number {
    this.binary ??= payload.length > 0 ? payload[0] === Magic.Request : undefined;
    if (!this.binary) return 0;
    let masked = 0;
    for (let i = 0; i < payload.length;) {
      if (this.keep === 0 && this.value === 0) {
        this.header[this.headerLength++] = payload[i++]!;
        if (this.headerLength < BINARY_HEADER) continue;
        this.headerLength = 0;
        const keyLength = this.header.readUInt16BE(2);
        const extras = this.header[4]!;
        const body = this.header.readUInt32BE(8);
        this.keep = Math.min(body, extras + keyLength);
        this.value = body - this.keep;
        this.secret = this.header[0] === Magic.Request && SECRET_OPCODES.has(this.header[1]!);
        continue;
      }
      if (this.keep > 0) {
        const n = Math.min(this.keep, payload.length - i);
        this.keep -= n;
        i += n;
        continue;
      }
      const n = Math.min(this.value, payload.length - i);
      if (this.secret) {
        payload.fill(STAR, i, i + n);
        masked += n;
      }
      this.value -= n;
      i += n;
    }
    return masked;
  }
}
