/**
 * A NATS client's credentials masked in its bytes: in a CONNECT line's JSON,
 * the string values of `pass`, `auth_token`, `jwt` and `sig` (an nkey's
 * signature), byte for byte however the stream is cut. Decided at each
 * line's start: a payload line that reads `CONNECT {` is masked the same way
 * (more, never less).
 */
import type { PayloadMasker } from '../module';

const STAR = 0x2a;
const SECRET_KEYS: ReadonlySet<string> = new Set(['pass', 'auth_token', 'jwt', 'sig']);
const CONNECT = Buffer.from('CONNECT ');

export class NatsMasker implements PayloadMasker {
  /** Where in the line's start we are: matching `CONNECT ` (0..8), inside a CONNECT line (-1), or elsewhere in a line (-2). */
  private matched = 0;
  private inString = false;
  private escaped = false;
  private token: number[] = [];
  /** The last string read was a key, and a colon followed: the next string is its value. */
  private key = '';
  private afterColon = false;
  private masking = false;

  mask(payload: Uint8Array): number {
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      const b = payload[i]!;
      if (b === 0x0a) {
        this.resetLine();
        continue;
      }
      if (this.matched >= 0 && this.matched < CONNECT.length) {
        const want = CONNECT[this.matched]!;
        this.matched = b === want || b === want + 0x20 ? this.matched + 1 : -2;
        if (this.matched === CONNECT.length) this.matched = -1;
        continue;
      }
      if (this.matched !== -1) continue;
      // Inside CONNECT's JSON.
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c) this.escaped = true;
        else if (b === 0x22) {
          this.inString = false;
          if (!this.masking) this.key = Buffer.from(this.token).toString('latin1');
          this.masking = false;
          continue;
        }
        if (this.masking) {
          payload[i] = STAR;
          masked++;
        } else if (this.token.length < 32) this.token.push(b);
        continue;
      }
      if (b === 0x22) {
        this.inString = true;
        this.token = [];
        this.masking = this.afterColon && SECRET_KEYS.has(this.key);
        this.afterColon = false;
      } else if (b === 0x3a) this.afterColon = true;
      else if (b === 0x2c || b === 0x7b) {
        this.afterColon = false;
        this.key = '';
      }
    }
    return masked;
  }

  private resetLine(): void {
    this.matched = 0;
    this.inString = false;
    this.escaped = false;
    this.masking = false;
    this.afterColon = false;
    this.key = '';
  }
}
