import { describe, expect, it } from 'vitest';
import { StreamBuffer } from './stream-buffer';

const chunk = (text: string, ts: bigint, tid = 1) => ({ data: Buffer.from(text), ts, tid });

describe('StreamBuffer times', () => {
  it('dates the next byte by the chunk it came in, also after everything before was consumed', () => {
    const b = new StreamBuffer();
    b.push(chunk('PRI * preface', 10n));
    expect(b.when().ts).toBe(10n);
    b.skip(13);
    // A frame arriving much later, alone in its chunk, is that chunk's, not the preface's.
    b.push(chunk('HEADERS', 5000n, 2));
    expect(b.when()).toEqual({ ts: 5000n, tid: 2 });
  });

  it('dates bytes across chunks while some are held', () => {
    const b = new StreamBuffer();
    b.push(chunk('abc', 1n));
    b.push(chunk('def', 2n));
    b.skip(2);
    expect(b.when().ts).toBe(1n);
    expect(b.whenAt(1).ts).toBe(2n);
    b.skip(1);
    expect(b.when().ts).toBe(2n);
  });
});

describe('StreamBuffer chunk starts', () => {
  it('knows a syscall boundary after a peek joined the chunks around it', () => {
    const b = new StreamBuffer();
    b.push(chunk('q', 1n));
    b.push(chunk('@abc', 2n));
    expect(b.peek(3)!.toString()).toBe('q@a'); // joins the two chunks into one
    expect(b.atChunkStart()).toBe(true);
    b.skipToNextChunk();
    expect([b.offset, b.atChunkStart(), b.peek(1)!.toString()]).toEqual([1, true, '@']);
    b.skip(1);
    expect(b.atChunkStart()).toBe(false);
  });
});

describe('StreamBuffer slices', () => {
  it('gives bytes from..to past the next unconsumed one, a view in the first chunk and joined across chunks, undefined when fewer are held', () => {
    const buf = new StreamBuffer();
    buf.push({ data: Buffer.from('abcdef'), ts: 1n, tid: 1 });
    buf.skip(1);
    const inFirst = buf.slice(1, 4)!;
    expect(inFirst.toString()).toBe('cde');
    inFirst[0] = 0x43; // a view, not a copy: the held bytes see the write
    expect(buf.firstChunk!.toString()).toBe('abCdef');
    buf.push({ data: Buffer.from('ghij'), ts: 2n, tid: 1 });
    expect(buf.slice(3, 8)!.toString()).toBe('efghi');
    expect(buf.slice(0, 2)!.toString()).toBe('bC');
    expect(buf.slice(0, 10)).toBeUndefined();
    expect(buf.available).toBe(9); // nothing consumed
  });
});
