/**
 * A masker driven by a walk of the client's stream: a generator that says,
 * field by field, what the next bytes are — read one (its value comes
 * back), pass over n, mask n. Every length on the way to a secret comes
 * before it, so each byte is known for what it is when it arrives, however
 * the stream is cut into records. A walk that returns lost the framing; it
 * starts again at the next record's start (most often a message's first
 * byte, as a program writes), the one case decided per record.
 */
import type { PayloadMasker } from '../module';

export type Step = { op: 'read' } | { op: 'skip' | 'mask'; n: number };
export const READ: Step = { op: 'read' };

const STAR = 0x2a;

export class WalkMasker implements PayloadMasker {
  private walk: Generator<Step, void, number>;
  /** What the walk asked for and is not yet done. */
  private step: IteratorResult<Step, void>;
  private left = 0;
  decidedPerRecord = false;

  constructor(private readonly start: () => Generator<Step, void, number>) {
    this.walk = start();
    this.step = this.walk.next();
  }

  mask(payload: Uint8Array): number {
    let masked = 0;
    let i = 0;
    if (this.step.done) {
      this.decidedPerRecord = true;
      this.walk = this.start();
      this.step = this.walk.next();
    }
    while (i < payload.length && !this.step.done) {
      const step = this.step.value;
      if (step.op === 'read') {
        this.step = this.walk.next(payload[i++]!);
        continue;
      }
      if (this.left === 0) this.left = step.n;
      const n = Math.min(this.left, payload.length - i);
      if (step.op === 'mask') {
        payload.fill(STAR, i, i + n);
        masked += n;
      }
      i += n;
      this.left -= n;
      if (this.left === 0) this.step = this.walk.next(0);
    }
    return masked;
  }
}
