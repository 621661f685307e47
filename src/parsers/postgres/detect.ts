/** PostgreSQL from a start-up (or SSL, GSSENC, cancel) request, or mid-connection from whole messages with evidence. */
import type { ModuleVerdict } from '../module';
import type { Side } from '../types';
import { framesChain, NEED_MORE, seenFrom } from '../shared/detection';
import { Backend, Frontend } from './codes';

const READY_FOR_QUERY = Backend.ReadyForQuery.charCodeAt(0);
const QUERY = Frontend.Query.charCodeAt(0);
const PG_SSL_REQUEST = 80877103;
const PG_GSSENC_REQUEST = 80877104;
const PG_CANCEL_REQUEST = 80877102;
const PG_PROTOCOL_3 = 196608;
/** Message types a PostgreSQL client sends / a server sends (protocol 3). */
const PG_FRONTEND = new Set('BCDEFHPQSXcdfp'.split('').map((c) => c.charCodeAt(0)));
const PG_BACKEND = new Set('123ACDEGHIKNRSTVWZcdnsvt'.split('').map((c) => c.charCodeAt(0)));

export function detectPostgres(b: Buffer): ModuleVerdict {
  if (b.length < 8) {
    // A startup packet begins with a small big-endian length: 00 00 0x xx.
    return b.length === 0 || (b[0] === 0 && (b.length < 2 || b[1] === 0)) ? NEED_MORE : pgMessages(b);
  }
  const length = b.readUInt32BE(0);
  const code = b.readUInt32BE(4);
  if (length === 8 && (code === PG_SSL_REQUEST || code === PG_GSSENC_REQUEST)) return seenFrom('client', true);
  if (length === 16 && code === PG_CANCEL_REQUEST) return seenFrom('client', true);
  if (code === PG_PROTOCOL_3 && length >= 8 && length < 10_000) {
    if (b.length < length) return NEED_MORE;
    return b[length - 1] === 0 ? seenFrom('client', true) : undefined;
  }
  return pgMessages(b);
}

/**
 * Framing alone, once another direction has named PostgreSQL, without the
 * evidence a first guess needs (a client's Parse/Bind/Execute/Sync frames,
 * though it holds no Query; a server's rows frame, though no ReadyForQuery came yet).
 */
export function framesAsPostgres(b: Buffer): boolean {
  return typeof pgMessages(b, false) === 'object';
}

function pgMessages(b: Buffer, needEvidence = true): ModuleVerdict {
  let sender: Side | undefined;
  let sawReady = false;
  let sawQuery = false;
  const verdict = framesChain(
    b,
    5,
    (at) => {
      const type = b[at]!;
      const length = b.readUInt32BE(at + 1);
      if (length < 4 || length > 1 << 24) return -1;
      const front = PG_FRONTEND.has(type);
      const back = PG_BACKEND.has(type);
      if (!front && !back) return -1;
      if (type === READY_FOR_QUERY && length === 5 && at + 5 < b.length && 'ITE'.includes(String.fromCharCode(b[at + 5]!))) sawReady = true;
      if (type === QUERY && at + 1 + length <= b.length && b[at + length] === 0) sawQuery = true;
      if (front && !back) sender = sender === 'server' ? undefined : 'client';
      if (back && !front) sender = sender === 'client' ? undefined : 'server';
      return 1 + length;
    },
    () => seenFrom(sender, false),
  );
  // Framing alone is weak evidence: insist on a ReadyForQuery or a NUL-terminated query.
  if (needEvidence && verdict !== NEED_MORE && verdict !== undefined && !(sawReady || sawQuery)) return undefined;
  return verdict;
}
