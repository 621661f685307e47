/** SQL literals masked as a client's bytes stream by (string contents become '*', digits of numbers '0'), for the database maskers. */
const STAR = 0x2a;
const ZERO = 0x30;

/**
 * SQL literals, streamed: inside a quoted string every byte but the quotes is
 * masked; a number's digits become '0' unless they continue an identifier.
 */
export class SqlLiterals {
  private quote = 0;
  /** A quote inside a string: the string ends, unless the next byte is the same quote (an escaped one). */
  private quotePending = false;
  private escaped = false;
  private prevWord = false;
  private inNumber = false;
  constructor(
    private readonly backslashEscapes: boolean,
    private readonly stringQuotes: number[],
  ) {}

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
