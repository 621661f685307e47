/**
 * Capture files as a source: binary `*.loupe` read in chunks, or the JSONL
 * form. Both yield the same raw records, so everything downstream is shared.
 */
import * as fs from 'node:fs';
import { CaptureDecoder, CaptureError, MAGIC, type CaptureHeader, type RawRecord } from '../events/capture';
import { parseJsonlCapture } from '../events/jsonl';
import { openRegularFile, readRegularFile } from '../events/input-file';

export interface CaptureSource {
  header: CaptureHeader;
  format: 'binary' | 'jsonl';
  /** Batches of records in file order; throws CaptureError on a corrupt or truncated file. */
  batches(): Generator<RawRecord[]>;
  /** Bytes of the file read so far, and its size: for progress bars. */
  progress(): { done: number; total: number };
}

const CHUNK = 1 << 16;
/** The JSONL form is read whole, as one string: V8's longest is about 512 MiB. */
const JSONL_MAX_BYTES = 2 ** 29 - 64;

function readPrefix(file: string, length: number): Buffer {
  const fd = openRegularFile(file);
  try {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

export function openCapture(file: string, chunkSize = CHUNK): CaptureSource {
  let prefix: Buffer;
  try {
    prefix = readPrefix(file, MAGIC.length);
  } catch (e) {
    throw new CaptureError(file, 'open', (e as NodeJS.ErrnoException).message);
  }
  if (prefix.equals(MAGIC)) return binarySource(file, chunkSize);
  if (prefix.length > 0 && prefix.toString('latin1').trimStart().startsWith('{')) {
    let text: string;
    try {
      text = readRegularFile(file, JSONL_MAX_BYTES).toString('utf8');
    } catch (e) {
      throw new CaptureError(file, 'open', `${(e as Error).message}: convert a JSONL capture this large to the binary form`);
    }
    const { header, records } = parseJsonlCapture(text, file);
    let done = 0;
    return {
      header,
      format: 'jsonl',
      *batches() {
        for (let i = 0; i < records.length; i += 1024) {
          done = Math.min(records.length, i + 1024);
          yield records.slice(i, i + 1024);
        }
      },
      progress: () => ({ done, total: records.length }),
    };
  }
  throw new CaptureError(file, 'byte 0', 'neither a binary capture (magic "LOUPECAP") nor a JSONL capture (a JSON header line)');
}

function binarySource(file: string, chunkSize: number): CaptureSource {
  // Read up to the end of the header eagerly so callers have it before the first batch.
  const decoder = new CaptureDecoder(file);
  const fd = openRegularFile(file);
  let position = 0;
  const first: RawRecord[] = [];
  let eof = false;
  const readChunk = (): Buffer | null => {
    const buf = Buffer.alloc(chunkSize);
    const n = fs.readSync(fd, buf, 0, chunkSize, position);
    position += n;
    return n === 0 ? null : buf.subarray(0, n);
  };
  try {
    while (!decoder.header) {
      const chunk = readChunk();
      if (!chunk) {
        eof = true;
        decoder.end();
      } else {
        first.push(...decoder.push(chunk));
      }
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const total = fs.fstatSync(fd).size;
  return {
    header: decoder.header,
    format: 'binary',
    progress: () => ({ done: position, total }),
    *batches() {
      try {
        if (first.length) yield first.splice(0);
        while (!eof) {
          const chunk = readChunk();
          if (!chunk) break;
          const records = decoder.push(chunk);
          if (records.length) yield records;
        }
        decoder.end();
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
