/**
 * Record batches (message format v2, magic 2) read far enough to count the
 * records and find trace context in their headers. Older message sets
 * (magic 0 and 1) have no headers: counted only. A gzip batch is inflated
 * (bounded); snappy, lz4 and zstd ones are counted and named.
 */
import * as zlib from 'node:zlib';
import { KafkaReader, whole } from './reader';

/** Inflated bytes read of one gzip batch at most: enough for the first records' headers. */
const MAX_INFLATED = 64 * 1024;
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export interface RecordsSummary {
  records: number;
  bytes: number;
  baseOffset?: number;
  compressed?: string;
  /** Each v2 batch's CRC (CRC-32C of the batch from its attributes on): the broker keeps a batch as its producer wrote it, so a consumer's batch names its producer's. */
  batches?: number[];
  traceparent?: string;
  tracestate?: string;
}

/** The records of one record set (a partition's `records` field): `b[at, at+length)`, of which only `held` bytes may be present. */
export function readRecordSet(b: Buffer, at: number, length: number, out: RecordsSummary): void {
  const end = Math.min(at + length, b.length);
  out.bytes += length;
  let pos = at;
  // Batches back to back; the last may be cut short by the broker (a Fetch's size limit) or by the capture.
  while (pos + 17 <= end) {
    const baseOffset = Number(b.readBigInt64BE(pos));
    const batchLength = b.readInt32BE(pos + 8);
    const magic = b[pos + 16]!;
    if (batchLength < 0) return;
    if (out.baseOffset === undefined) out.baseOffset = baseOffset;
    const batchEnd = pos + 12 + batchLength;
    if (magic === 2 && pos + 21 <= end) (out.batches ??= []).push(b.readUInt32BE(pos + 17));
    if (magic === 2 && pos + 61 <= end) {
      const attributes = b.readInt16BE(pos + 21);
      const count = b.readInt32BE(pos + 57);
      out.records += Math.max(0, count);
      const codec = attributes & 7;
      if (out.traceparent === undefined) {
        if (codec === 0) readRecords(b, pos + 61, Math.min(batchEnd, end), count, out);
        else if (codec === 1 && batchEnd <= end) {
          let inflated: Buffer | undefined;
          try {
            inflated = zlib.gunzipSync(b.subarray(pos + 61, batchEnd), { maxOutputLength: MAX_INFLATED });
          } catch {
            inflated = undefined; // larger than the bound or corrupt: counted, not read
          }
          if (inflated) readRecords(inflated, 0, inflated.length, count, out);
        } else if (codec > 1) out.compressed = CODECS[codec] ?? `codec ${codec}`;
      }
    } else if (magic < 2) {
      out.records++; // a legacy message set: one message per entry (a compressed wrapper counts as one)
    }
    pos = batchEnd;
  }
}

/** Records of a v2 batch: each a length, attributes, deltas, key, value, headers; stops at the first trace context. */
function readRecords(b: Buffer, at: number, end: number, count: number, out: RecordsSummary): void {
  const r = new KafkaReader(b, at, end);
  whole(() => {
    for (let i = 0; i < count && out.traceparent === undefined; i++) {
      const length = r.varint();
      const recordEnd = r.at + length;
      r.i8(); // attributes
      r.varlong(); // timestamp delta
      r.varint(); // offset delta
      const keyLength = r.varint();
      if (keyLength > 0) r.skip(keyLength);
      const valueLength = r.varint();
      if (valueLength > 0) r.skip(valueLength);
      const headers = r.varint();
      for (let h = 0; h < headers; h++) {
        const keyLen = r.varint();
        r.skip(Math.max(0, keyLen));
        const name = b.toString('latin1', r.at - Math.max(0, keyLen), r.at).toLowerCase();
        const valueLen = r.varint();
        r.skip(Math.max(0, valueLen));
        const value = () => b.toString('latin1', r.at - valueLen, r.at);
        if (name === 'traceparent' && valueLen > 0) out.traceparent = value();
        else if (name === 'tracestate' && valueLen > 0) out.tracestate = value();
      }
      r.at = recordEnd;
    }
  });
}
