/**
 * Seeded trace and span ids (architecture rule 1): the same seed and the same
 * events give the same ids. xoshiro128** seeded through splitmix32 from the
 * capture's 64-bit seed. Not for security: these only have to be unique.
 */
export class IdGenerator {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seedHex: string) {
    if (!/^[0-9a-f]{16}$/.test(seedHex)) throw new Error(`seed must be 16 lowercase hex digits, got ${JSON.stringify(seedHex)}`);
    let x = (parseInt(seedHex.slice(0, 8), 16) ^ Math.imul(parseInt(seedHex.slice(8), 16), 0x9e3779b9)) >>> 0;
    const next = () => {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next() ^ parseInt(seedHex.slice(8), 16);
    this.s2 = next();
    this.s3 = next() | 1; // never the all-zero state
  }

  private nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  private hex(words: number): string {
    for (;;) {
      let zero = true;
      // Hex digits written into one scratch buffer and sliced once: a span costs two or three ids,
      // and joining pieces made a string per byte.
      for (let i = 0; i < words; i++) {
        const w = this.nextU32();
        if (w !== 0) zero = false;
        for (let b = 0; b < 4; b++) {
          const byte = (w >>> (24 - 8 * b)) & 0xff;
          SCRATCH[i * 8 + b * 2] = HEX_DIGIT[byte >>> 4]!;
          SCRATCH[i * 8 + b * 2 + 1] = HEX_DIGIT[byte & 0xf]!;
        }
      }
      if (!zero) return SCRATCH.latin1Slice(0, words * 8); // all-zero ids are invalid in W3C trace context
    }
  }

  traceId(): string {
    return this.hex(4);
  }

  spanId(): string {
    return this.hex(2);
  }
}

const HEX_DIGIT = Buffer.from('0123456789abcdef', 'latin1');
const SCRATCH = Buffer.alloc(32);

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
