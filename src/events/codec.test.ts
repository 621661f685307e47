import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventArb } from '../../test/arbitraries';
import { cString, decodeRecord, encodeEvent, minRecordSize, RecordError } from './codec';
import { CONSTANTS, DATA_FIXED_SIZE, HEADER_SIZE, offsetOf } from './layout';
import type { DataEvent } from './types';

const dataEvent = (data: string): DataEvent => ({
  type: 'data',
  ts: 5n,
  pid: 1,
  tid: 2,
  cpu: 0,
  fd: 3,
  direction: 'egress',
  source: 'write',
  flags: 0,
  cookie: 7n,
  bytes: data.length,
  data: Buffer.from(data),
});

describe('event codec', () => {
  it('decodes what it encodes, for every record type', () => {
    fc.assert(
      fc.property(eventArb, (ev) => {
        const raw = encodeEvent(ev);
        expect(decodeRecord(raw)).toEqual(ev);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes data records at their fixed size plus exactly the captured payload', () => {
    expect(encodeEvent(dataEvent('hello')).length).toBe(DATA_FIXED_SIZE + 5);
    expect(encodeEvent({ type: 'sock_close', ts: 1n, pid: 1, tid: 1, cpu: 0, fd: 1, cookie: 0n }).length).toBe(minRecordSize('sock_close'));
  });

  it('reads a record longer than it knows (fields appended by a newer kernel side) and ignores the tail', () => {
    const raw = Buffer.concat([encodeEvent({ type: 'proc_exit', ts: 9n, pid: 4, tid: 4, cpu: 1, exitCode: -3 }), Buffer.from([1, 2, 3, 4])]);
    expect(decodeRecord(raw)).toMatchObject({ type: 'proc_exit', exitCode: -3 });
  });

  it('reads a Go request record written before its host field was appended, with an empty host', () => {
    const ev = {
      type: 'go_request_start',
      ts: 3n,
      pid: 7,
      tid: 8,
      cpu: 0,
      goid: 12n,
      kind: 'http_client',
      status: 0,
      fd: -1,
      startNs: 0n,
      method: 'GET',
      path: '/x',
      traceparent: '',
      host: 'api:80',
    } as const;
    const full = encodeEvent(ev);
    expect(decodeRecord(full)).toMatchObject({ host: 'api:80', path: '/x' });
    const old = full.subarray(0, offsetOf('loupe_go_request_event', 'host'));
    expect(decodeRecord(old)).toEqual({ ...ev, host: '' });
    expect(() => decodeRecord(old.subarray(0, old.length - 1))).toThrow(/shorter than its \d+-byte layout/);
  });

  it('reads a full-width fixed string field (no NUL) as exactly the field, not the bytes after it', () => {
    const raw = Buffer.concat([
      encodeEvent({ type: 'proc_exec', ts: 1n, pid: 7, tid: 7, cpu: 0, ppid: 1, uid: 0, comm: 'x', filename: '/bin/x' }),
      Buffer.from('TAIL'), // a newer kernel side's appended field
    ]);
    const at = offsetOf('loupe_proc_exec_event', 'filename');
    raw.fill('f', at, at + CONSTANTS.LOUPE_FILENAME_LEN);
    expect(cString(raw, at, CONSTANTS.LOUPE_FILENAME_LEN)).toBe('f'.repeat(CONSTANTS.LOUPE_FILENAME_LEN));
    expect(decodeRecord(raw)).toMatchObject({ filename: 'f'.repeat(CONSTANTS.LOUPE_FILENAME_LEN) });
  });

  it('returns unknown record types instead of failing', () => {
    const raw = encodeEvent(dataEvent('x'));
    raw.writeUInt32LE(999, 8);
    expect(decodeRecord(raw)).toEqual({ type: 'unknown', recordType: 999, ts: 5n });
  });

  it('rejects records too short for their header or layout, saying sizes', () => {
    expect(() => decodeRecord(Buffer.alloc(HEADER_SIZE - 1))).toThrow(/shorter than the 24-byte event header/);
    const close = encodeEvent({ type: 'sock_close', ts: 1n, pid: 1, tid: 1, cpu: 0, fd: 1, cookie: 0n });
    expect(() => decodeRecord(close.subarray(0, close.length - 1))).toThrow(/sock_close record of 39 bytes is shorter than its 40-byte layout/);
  });

  it('rejects a data record whose payload is shorter than it claims', () => {
    const raw = encodeEvent(dataEvent('hello'));
    expect(() => decodeRecord(raw.subarray(0, raw.length - 2))).toThrow(/says 5 payload bytes follow but only 3 do/);
  });

  it('rejects enum values it does not know, naming the field', () => {
    const raw = encodeEvent(dataEvent('hello'));
    raw.writeUInt8(9, offsetOf('loupe_data_event', 'direction'));
    expect(() => decodeRecord(raw)).toThrow(RecordError);
    expect(() => decodeRecord(raw)).toThrow(/direction 9/);
  });

  it('never throws anything but RecordError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 11 }), (bytes, type) => {
        const raw = Buffer.from(bytes);
        if (raw.length >= 12) raw.writeUInt32LE(type, 8);
        try {
          decodeRecord(raw);
        } catch (e) {
          expect(e).toBeInstanceOf(RecordError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
