/**
 * Payload masking over a stream of kernel records: one StreamMasker per
 * process, socket and direction (TLS plaintext a stream of its own), so a
 * secret a program wrote in pieces is masked too. A live run that records
 * masks every record before its pipeline or its capture sees it (so a replay
 * is identical); one that records nothing skips it. `maskRecords` does the
 * same to records read back, which is how a test shows a replay's spans do
 * not depend on it.
 */
import { readU64Number } from '../events/codec';
import { CONSTANTS, DATA_FIXED_SIZE, ENUMS, HEADER_AT, offsetOf } from '../events/layout';
import { StreamMasker } from '../security/redact-payload';

const T = ENUMS.loupe_event_type;
const CAPTURED_AT = offsetOf('loupe_data_event', 'captured');
const BYTES_AT = offsetOf('loupe_data_event', 'bytes');
const DIRECTION_AT = offsetOf('loupe_data_event', 'direction');
const DATA_FLAGS_AT = offsetOf('loupe_data_event', 'flags');
const DATA_COOKIE_AT = offsetOf('loupe_data_event', 'sock_cookie');
const DATA_FD_AT = offsetOf('loupe_data_event', 'fd');
const CLOSE_COOKIE_AT = offsetOf('loupe_sock_close_event', 'sock_cookie');

/** Maskers kept (one per socket direction, and one more per direction for TLS plaintext); past this the process first masked forgets its sockets' state. */
const MAX_MASKERS = 65536;

export class RecordMasking {
  /** Per process, socket (cookie, or -1 - fd without one) and direction; no string keys: this runs per record. */
  private readonly maskers = new Map<number, Map<bigint | number, StreamMasker[]>>();
  private count = 0;

  /** Mask a data record's payload in place. */
  maskData(record: Buffer): void {
    const captured = record.readUInt32LE(CAPTURED_AT);
    const missing = readU64Number(record, BYTES_AT) - captured;
    this.masker(record).mask(record.subarray(DATA_FIXED_SIZE, DATA_FIXED_SIZE + captured), missing);
  }

  /** A socket closed: its state goes. */
  closed(record: Buffer): void {
    this.forget(record.readUInt32LE(HEADER_AT.pid), record.readBigUInt64LE(CLOSE_COOKIE_AT));
  }

  /** A process exited: the state of all its sockets goes. */
  exited(pid: number): void {
    this.forget(pid);
  }

  /** Any record, in stream order: data masked, state forgotten at close and exit. */
  onRecord(record: Buffer): void {
    const type = record.readUInt32LE(HEADER_AT.type);
    if (type === T.LOUPE_EV_DATA) this.maskData(record);
    else if (type === T.LOUPE_EV_SOCK_CLOSE) this.closed(record);
    else if (type === T.LOUPE_EV_PROC_EXIT) this.exited(record.readUInt32LE(HEADER_AT.pid));
  }

  private masker(record: Buffer): StreamMasker {
    const pid = record.readUInt32LE(HEADER_AT.pid);
    const cookie = record.readBigUInt64LE(DATA_COOKIE_AT);
    const socket = cookie !== 0n ? cookie : -1 - record.readInt32LE(DATA_FD_AT);
    let ofPid = this.maskers.get(pid);
    if (!ofPid) this.maskers.set(pid, (ofPid = new Map()));
    let pair = ofPid.get(socket);
    if (!pair) ofPid.set(socket, (pair = []));
    // TLS plaintext is a stream of its own: the handshake's ciphertext that came before it on the
    // socket must not decide how its bytes are read (a masker that took the socket for something
    // other than HTTP kept a query value in plaintext).
    const which = record[DIRECTION_AT]! + ((record.readUInt16LE(DATA_FLAGS_AT) & CONSTANTS.LOUPE_DATA_F_TLS) !== 0 ? 2 : 0);
    let m = pair[which];
    if (!m) {
      // The two directions of a socket share what they learn of it (a MySQL client's bytes are known by the server's greeting).
      m = pair[which] = new StreamMasker(pair.find(Boolean)?.socket ?? {});
      // Past the bound, the process first masked forgets its sockets' state (a close was lost, or very many are open).
      if (++this.count > MAX_MASKERS) this.forget(this.maskers.keys().next().value!);
    }
    return m;
  }

  private forget(pid: number, socket?: bigint | number): void {
    const ofPid = this.maskers.get(pid);
    if (!ofPid) return;
    const pairs = socket === undefined ? [...ofPid.values()] : [ofPid.get(socket) ?? []];
    for (const pair of pairs) this.count -= pair.filter(Boolean).length;
    if (socket === undefined) this.maskers.delete(pid);
    else ofPid.delete(socket);
  }
}

/** Records as a recording live run would have written them: copies, payloads masked. */
export function maskRecords(records: Iterable<Buffer>): Buffer[] {
  const masking = new RecordMasking();
  const out: Buffer[] = [];
  for (const record of records) {
    const copy = Buffer.from(record);
    masking.onRecord(copy);
    out.push(copy);
  }
  return out;
}
