/**
 * Mutation fuzzing of byte conversations: a seeded generator (the same run
 * for the same seed, no Math.random) and the mutations that find parser
 * faults — bit flips, boundary bytes, truncation, splicing, duplicated and
 * deleted spans, and length fields inflated or nudged by one.
 */
import type { Turn } from '../parser-harness';

/** xorshift32: small, fast, and the same sequence everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}

/** Values that sit on the edges parsers branch on: signs, length-encoding markers, terminators. */
const BOUNDARY = [0x00, 0x01, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x0a, 0x0d, 0x20, 0x3a];

type Mutation = (b: Buffer, rng: Rng, donor: Buffer) => Buffer;

const MUTATIONS: Array<[string, Mutation]> = [
  [
    'bit flip',
    (b, rng) => {
      if (!b.length) return b;
      const out = Buffer.from(b);
      const at = rng.below(out.length);
      out[at] = out[at]! ^ (1 << rng.below(8));
      return out;
    },
  ],
  [
    'boundary byte',
    (b, rng) => {
      if (!b.length) return b;
      const out = Buffer.from(b);
      out[rng.below(out.length)] = rng.pick(BOUNDARY);
      return out;
    },
  ],
  ['truncate', (b, rng) => b.subarray(0, rng.below(b.length + 1))],
  [
    'delete span',
    (b, rng) => {
      const at = rng.below(b.length + 1);
      const n = 1 + rng.below(16);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
    },
  ],
  [
    'duplicate span',
    (b, rng) => {
      const at = rng.below(b.length + 1);
      const n = 1 + rng.below(64);
      return Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
    },
  ],
  [
    'splice',
    (b, rng, donor) => {
      const at = rng.below(b.length + 1);
      const from = rng.below(donor.length + 1);
      return Buffer.concat([b.subarray(0, at), donor.subarray(from, from + 1 + rng.below(256)), b.subarray(at)]);
    },
  ],
  [
    'insert bytes',
    (b, rng) => {
      const at = rng.below(b.length + 1);
      const extra = Buffer.alloc(1 + rng.below(8));
      for (let i = 0; i < extra.length; i++) extra[i] = rng.below(256);
      return Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
    },
  ],
  [
    'inflate length',
    (b, rng) => {
      // A 2-, 3- or 4-byte field, either byte order, set huge, to the sign bit, or nudged by one.
      if (b.length < 4) return b;
      const out = Buffer.from(b);
      const width = rng.pick([2, 3, 4]);
      const at = rng.below(out.length - width + 1);
      const little = rng.below(2) === 1;
      const max = 2 ** (8 * width) - 1;
      const now = little ? out.readUIntLE(at, width) : out.readUIntBE(at, width);
      const value = rng.pick([max, 2 ** (8 * width - 1), Math.max(0, now - 1), Math.min(max, now + 1), 0, Math.min(max, now * 16)]);
      if (little) out.writeUIntLE(value, at, width);
      else out.writeUIntBE(value, at, width);
      return out;
    },
  ],
];

export const MUTATION_NAMES = MUTATIONS.map(([name]) => name);

/** A copy of `seed` with 1 to 4 mutations applied to its turns (occasionally a turn dropped or repeated). */
export function mutate(seed: Turn[], rng: Rng, donors: Turn[][]): Turn[] {
  const turns = seed.map((t) => ({ side: t.side, bytes: t.bytes }));
  const count = 1 + rng.below(4);
  for (let i = 0; i < count && turns.length > 0; i++) {
    const k = rng.below(turns.length);
    const roll = rng.below(20);
    if (roll === 0) turns.splice(k, 1);
    else if (roll === 1) turns.splice(k, 0, { ...turns[k]! });
    else {
      const donorTurns = rng.pick(donors);
      const donor = donorTurns.length ? rng.pick(donorTurns).bytes : Buffer.alloc(0);
      const [, m] = rng.pick(MUTATIONS);
      turns[k] = { side: turns[k]!.side, bytes: m(turns[k]!.bytes, rng, donor) };
    }
  }
  return turns;
}

/** Up to `n` cut points for a conversation, for the split-invariance check. */
export function cuts(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.next());
}
