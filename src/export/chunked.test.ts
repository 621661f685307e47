import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChunkedOutput } from './chunked';

describe('ChunkedOutput', () => {
  it('hands on every piece in order, in chunks of at least the size but the last', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 })), fc.integer({ min: 1, max: 100 }), (pieces, size) => {
        const written: string[] = [];
        const out = new ChunkedOutput((t) => written.push(t), size);
        for (const p of pieces) out.push(p);
        const beforeFlush = written.length;
        out.flush();
        expect(written.join('')).toBe(pieces.join(''));
        for (const chunk of written.slice(0, beforeFlush)) expect(chunk.length).toBeGreaterThanOrEqual(size);
        expect(written.length - beforeFlush).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('writes nothing until a chunk is full or flushed', () => {
    const written: string[] = [];
    const out = new ChunkedOutput((t) => written.push(t), 10);
    out.push('abc');
    out.push('def');
    expect(written).toEqual([]);
    out.push('ghij');
    expect(written).toEqual(['abcdefghij']);
    out.flush();
    expect(written).toEqual(['abcdefghij']);
  });
});
