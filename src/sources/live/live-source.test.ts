import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LiveError, splitBatch } from './live-source';

function batchOf(records: Uint8Array[]): Buffer {
  return Buffer.concat(
    records.flatMap((r) => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(r.length);
      return [len, Buffer.from(r)];
    }),
  );
}

describe('splitBatch', () => {
  it('gives back the records the addon framed, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (records) => {
        expect(splitBatch(batchOf(records)).map((r) => [...r])).toEqual(records.map((r) => [...r]));
      }),
    );
  });

  it('says where a batch is cut inside a record', () => {
    const batch = batchOf([new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6, 7])]);
    expect(() => splitBatch(batch.subarray(0, batch.length - 1))).toThrow(LiveError);
    expect(() => splitBatch(batch.subarray(0, batch.length - 1))).toThrow(/at byte 7/);
  });
});
