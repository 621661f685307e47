/**
 * MySQL's compressed protocol (CLIENT_COMPRESS): after the handshake, each
 * side sends compressed packets — 3-byte compressed length, a sequence id,
 * 3-byte length before compression (0: the payload was sent as is) — whose
 * payloads, joined, are the plain packet stream. This layer turns one side's
 * bytes into that plain stream, packet by packet, so the parser above it is
 * the same for both.
 *
 * A compressed payload that does not inflate to its stated length (masked
 * in a capture, see redact-db.ts, or corrupt) becomes that many lost plain
 * bytes: the stated length keeps the plain stream's framing.
 */
import * as zlib from 'node:zlib';
import { StreamBuffer } from '../shared/stream-buffer';
import type { Chunk } from '../types';
import { MYSQL_ERROR } from './codes';

const HEADER = 7;
/** A compressed packet holds at most 2^24-1 bytes either way. */
const MAX_LENGTH = 0xffffff;

export type PlainPiece = { data: Buffer; ts: bigint; tid: number } | { lost: number; ts: bigint; reason: string; code: string };

export class CompressedFramer {
  private readonly raw = new StreamBuffer();

  /** The plain bytes (or lost lengths) of every compressed packet this chunk completes. */
  push(chunk: Chunk): PlainPiece[] {
    this.raw.push(chunk);
    const out: PlainPiece[] = [];
    for (;;) {
      const head = this.raw.peek(HEADER);
      if (!head) return out;
      const compressedLength = head.readUIntLE(0, 3);
      const plainLength = head.readUIntLE(4, 3);
      const packet = this.raw.peek(HEADER + compressedLength);
      if (!packet) return out;
      const { ts, tid } = this.raw.whenAt(HEADER + compressedLength - 1);
      const payload = packet.subarray(HEADER);
      this.raw.skip(HEADER + compressedLength);
      if (plainLength === 0) {
        if (payload.length > 0) out.push({ data: Buffer.from(payload), ts, tid });
        continue;
      }
      const plain = inflate(payload, plainLength);
      if ('reason' in plain) out.push({ lost: plainLength, ts, ...plain });
      else out.push({ data: plain, ts, tid });
    }
  }
}

/** A zlib payload inflated to exactly `length` bytes (never more: a bomb stops at the stated length), or why not. */
function inflate(payload: Buffer, length: number): Buffer | { reason: string; code: string } {
  if (length > MAX_LENGTH) return { reason: `a compressed packet states ${length} bytes, more than a packet holds`, code: MYSQL_ERROR.COMPRESSED_TOO_LONG };
  try {
    // A masked capture pads a re-compressed payload after its zlib stream's end: bytes after the end are ignored.
    const plain = zlib.inflateSync(payload, { maxOutputLength: length, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    return plain.length === length
      ? plain
      : { reason: `a compressed packet inflated to ${plain.length} bytes, not the ${length} it states`, code: MYSQL_ERROR.COMPRESSED_UNREADABLE };
  } catch (e) {
    return { reason: `a compressed packet did not inflate (${(e as Error).message})`, code: MYSQL_ERROR.COMPRESSED_UNREADABLE };
  }
}
