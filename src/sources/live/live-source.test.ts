import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LiveError, sockhashSafety, splitBatch } from './live-source';

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

describe('sockhashSafety', () => {
  const check = { fionread: 100, readable: true, received: 100, expected: 100 };

  it('keeps injection where a socket in a sockhash reads as any other', () => {
    expect(sockhashSafety(check)).toEqual({ verdict: 'safe', reason: '' });
  });

  it('names the kernel commit when FIONREAD is wrong but the socket wakes and reads', () => {
    const got = sockhashSafety({ ...check, fionread: 0 });
    expect(got.verdict).toBe('fionread');
    expect(got.reason).toMatch(/misreports FIONREAD for sockets in a sockhash \(0 of 100 bytes, checked at start-up; kernel commit 929e30f93125\)/);
    expect(got.reason).toMatch(/--inject-despite-fionread/);
  });

  it('turns injection off when the socket did not wake or read, or the check could not run', () => {
    expect(sockhashSafety({ ...check, readable: false }).verdict).toBe('unsafe');
    expect(sockhashSafety({ ...check, received: -1 }).verdict).toBe('unsafe');
    expect(sockhashSafety({ ...check, error: 'cannot create a sockhash: Operation not permitted' })).toEqual({
      verdict: 'unsafe',
      reason: 'the sockhash check on a loopback pair failed (cannot create a sockhash: Operation not permitted)',
    });
  });
});
