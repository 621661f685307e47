/**
 * Drive a protocol parser with a conversation cut into chunks, and the
 * properties every parser owes (split invariance, no throw on garbage).
 */
import type { MessageBase, ProtocolParser, Side } from '../src/parsers/types';

export interface Turn {
  side: Side;
  bytes: Buffer;
}

/** Feed the turns, each cut at `cuts` (positions modulo its length), one chunk per piece. */
export function runTurns<M extends MessageBase>(make: () => ProtocolParser<M>, turns: Turn[], cuts: number[] = []): M[] {
  const parser = make();
  const out: M[] = [];
  parser.onMessage = (m) => out.push(m);
  let ts = 1000n;
  let c = 0;
  for (const turn of turns) {
    const points = [...new Set(cuts.slice(c, c + 3).map((x) => (turn.bytes.length ? x % turn.bytes.length : 0)))].filter((p) => p > 0).sort((a, b) => a - b);
    c += 3;
    let prev = 0;
    for (const p of [...points, turn.bytes.length]) {
      if (p > prev) parser.feed(turn.side, { data: turn.bytes.subarray(prev, p), ts: (ts += 10n), tid: 7 });
      prev = p;
    }
  }
  parser.end(ts + 1n);
  return out;
}

/** Messages without their timing and offsets, for comparing runs cut differently. */
export function shape<M extends MessageBase>(messages: M[]): unknown[] {
  return messages.map(({ tsStart: _a, tsEnd: _b, tid: _c, ...rest }) => rest);
}

/**
 * Feed the turns as the kernel copies them: each turn written in syscalls of
 * `writeSize` bytes, of which only the first `limit` are copied and the rest
 * arrive as a gap (a record cut at --max-payload).
 */
export function runCopied<M extends MessageBase>(make: () => ProtocolParser<M>, turns: Turn[], limit: number, writeSize = Infinity): M[] {
  const parser = make();
  const out: M[] = [];
  parser.onMessage = (m) => out.push(m);
  let ts = 1000n;
  for (const turn of turns) {
    for (let at = 0; at < turn.bytes.length; at += writeSize) {
      const write = turn.bytes.subarray(at, Math.min(turn.bytes.length, at + writeSize));
      parser.feed(turn.side, { data: write.subarray(0, limit), ts: (ts += 10n), tid: 7 });
      if (write.length > limit) parser.gap(turn.side, write.length - limit, ts);
    }
  }
  parser.end(ts + 1n);
  return out;
}
