import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventArb } from '../../test/arbitraries';
import { HEADER, tempDir } from '../../test/helpers';
import { CaptureDecoder, CaptureError, CaptureWriter, encodeFrame, encodePreamble, HEADER_CRC_SIZE, PREAMBLE_SIZE } from './capture';
import { encodeEvent, decodeRecord } from './codec';
import { headerToJsonLine, parseJsonlCapture, recordToJsonLine } from './jsonl';
import { openCapture } from '../sources/capture-file';
import type { Event } from './types';

function captureBytes(events: Event[]): Buffer {
  return Buffer.concat([encodePreamble(HEADER), ...events.map((e) => encodeFrame(encodeEvent(e)))]);
}

function decodeAll(bytes: Buffer, cuts: number[]): Buffer[] {
  const d = new CaptureDecoder('mem.loupe');
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...d.push(bytes.subarray(prev, cut)).map((r) => r.bytes));
    prev = cut;
  }
  d.end();
  return out;
}

describe('binary capture format', () => {
  it('gives back the same records for any chunking of the file', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (events, rawCuts) => {
        const bytes = captureBytes(events);
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const records = decodeAll(bytes, cuts);
        expect(records.map((r) => decodeRecord(r))).toEqual(events);
      }),
      { numRuns: 300 },
    );
  });

  it('writes files mode 0600 and reads them back through the capture source', () => {
    const dir = tempDir();
    const file = path.join(dir, 'x.loupe');
    fs.writeFileSync(file, 'old');
    fs.chmodSync(file, 0o644); // an existing, world-readable file must not stay so
    const ev: Event = { type: 'proc_exit', ts: 1n, pid: 2, tid: 2, cpu: 0, exitCode: 0 };
    const w = new CaptureWriter(file, HEADER);
    w.write(encodeEvent(ev));
    w.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const source = openCapture(file);
    expect(source.header).toEqual(HEADER);
    expect([...source.batches()].flat().map((r) => decodeRecord(r.bytes))).toEqual([ev]);
  });

  const ev: Event = { type: 'sock_close', ts: 1n, pid: 2, tid: 2, cpu: 0, fd: 3, cookie: 4n };
  const twoRecords = () => captureBytes([ev, ev]);
  const firstFrame = () => PREAMBLE_SIZE + Buffer.byteLength(JSON.stringify(HEADER)) + HEADER_CRC_SIZE;

  it('names the byte offset of a record whose checksum does not match', () => {
    const bytes = twoRecords();
    const second = firstFrame() + 8 + 40;
    bytes[second + 8 + 20]! ^= 0xff; // flip a byte inside the second record
    expect(() => decodeAll(bytes, [])).toThrow(CaptureError);
    expect(() => decodeAll(bytes, [])).toThrow(`mem.loupe: byte ${second}: record checksum mismatch`);
  });

  it('names the byte offset where a truncated file breaks off', () => {
    const bytes = twoRecords();
    const second = firstFrame() + 8 + 40;
    expect(() => decodeAll(bytes.subarray(0, bytes.length - 5), [])).toThrow(`mem.loupe: byte ${second}: truncated: the record here needs 48 bytes but the file ends after 43`);
    expect(() => decodeAll(bytes.subarray(0, 10), [])).toThrow('mem.loupe: byte 10: truncated: the file ends inside the capture header');
  });

  it('refuses a file that is not a capture, an unknown version, a broken header and an absurd length', () => {
    expect(() => decodeAll(Buffer.from('GIF89a..........'), [])).toThrow(/byte 0: not a Loupe capture/);
    const v3 = twoRecords();
    v3.writeUInt16LE(3, 8);
    expect(() => decodeAll(v3, [])).toThrow(/byte 8: capture format version 3 is not supported/);
    const badJson = twoRecords();
    badJson[PREAMBLE_SIZE] = 0x41;
    expect(() => decodeAll(badJson, [])).toThrow(/capture header checksum mismatch/);
    // A version 1 file has no checksum: its header is judged as JSON.
    const v1 = Buffer.concat([twoRecords().subarray(0, firstFrame() - HEADER_CRC_SIZE), twoRecords().subarray(firstFrame())]);
    v1.writeUInt16LE(1, 8);
    expect(decodeAll(v1, [])).toHaveLength(2);
    v1[PREAMBLE_SIZE] = 0x41;
    expect(() => decodeAll(v1, [])).toThrow(/byte 16: capture header is not valid JSON/);
    const huge = twoRecords();
    huge.writeUInt32LE(0x7fffffff, firstFrame());
    expect(() => decodeAll(huge, [])).toThrow(`byte ${firstFrame()}: record length 2147483647 exceeds`);
  });
});

describe('capture header integrity', () => {
  it('refuses a capture whose header or preamble has any one bit flipped, naming where', () => {
    const ev: Event = { type: 'proc_exit', ts: 1n, pid: 2, tid: 2, cpu: 0, exitCode: 0 };
    const good = captureBytes([ev]);
    const headerEnd = PREAMBLE_SIZE + Buffer.byteLength(JSON.stringify(HEADER)) + HEADER_CRC_SIZE;
    const accepted: number[] = [];
    for (let bit = 0; bit < headerEnd * 8; bit++) {
      const bad = Buffer.from(good);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      try {
        decodeAll(bad, []);
        accepted.push(bit);
      } catch (e) {
        expect(e).toBeInstanceOf(CaptureError);
      }
    }
    expect(accepted).toEqual([]);
  });
});

describe('JSONL capture form', () => {
  it('converts binary -> JSONL -> binary byte for byte, unknown record types included', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 15 }), fc.boolean(), (events, addUnknown) => {
        const raws = events.map(encodeEvent);
        if (addUnknown) {
          const unknown = Buffer.from(raws[0] ?? encodeEvent({ type: 'proc_exit', ts: 1n, pid: 1, tid: 1, cpu: 0, exitCode: 0 }));
          unknown.writeUInt32LE(4242, 8);
          raws.push(unknown, Buffer.concat([encodeEvent({ type: 'proc_exit', ts: 2n, pid: 1, tid: 1, cpu: 0, exitCode: 1 }), Buffer.from('tail')]));
        }
        const text = [headerToJsonLine(HEADER), ...raws.map(recordToJsonLine)].join('\n');
        const parsed = parseJsonlCapture(text, 'mem.jsonl');
        expect(parsed.header).toEqual(HEADER);
        expect(parsed.records.map((r) => r.bytes)).toEqual(raws);
      }),
      { numRuns: 300 },
    );
  });

  it('writes text payloads as readable strings and binary ones as base64', () => {
    const ev = (data: Buffer): Event => ({
      type: 'data',
      ts: 1n,
      pid: 1,
      tid: 1,
      cpu: 0,
      fd: 1,
      direction: 'egress',
      source: 'write',
      flags: 0,
      cookie: 0n,
      bytes: data.length,
      data,
    });
    expect(JSON.parse(recordToJsonLine(encodeEvent(ev(Buffer.from('GET / HTTP/1.1\r\n\r\n')))))).toMatchObject({ data: 'GET / HTTP/1.1\r\n\r\n' });
    expect(JSON.parse(recordToJsonLine(encodeEvent(ev(Buffer.from([0, 1, 0xff])))))).toMatchObject({ dataB64: 'AAH/' });
  });

  it('fills defaults for hand-written cases and skips comments', () => {
    const text = ['{"loupe":"capture","seed":"0000000000000007"}', '// a comment', '{"type":"data","ts":5,"pid":9,"fd":3,"dir":"ingress","data":"hi"}'].join('\n');
    const { header, records } = parseJsonlCapture(text, 'hand.jsonl');
    expect(header.seed).toBe('0000000000000007');
    expect(decodeRecord(records[0]!.bytes)).toMatchObject({ tid: 9, source: 'read', bytes: 2, cookie: 0n });
  });

  it('names the line of a bad event and says what is wrong', () => {
    const bad = (line: string) => () => parseJsonlCapture(`{"loupe":"capture"}\n${line}`, 'hand.jsonl');
    expect(bad('{"type":"data","ts":5,"pid":9,"fd":3,"dir":"sideways","data":"x"}')).toThrow('hand.jsonl: line 2: direction "sideways" is not a known value');
    expect(bad('{"type":"teleport","ts":1,"pid":1}')).toThrow('hand.jsonl: line 2: unknown event type "teleport"');
    expect(bad('{"type":"sock_open","ts":1,"pid":1,"fd":1,"role":"client","local":"1.2.3:4","remote":"1.2.3.4:5"}')).toThrow('hand.jsonl: line 2: not an IPv4 address: "1.2.3"');
    expect(bad('{"type":"sock_open","ts":1,"pid":1,"fd":1,"role":"client","local":"localhost","remote":"1.2.3.4:5"}')).toThrow(/line 2: local must look like 127.0.0.1:8080/);
    expect(bad('{"type":"data", oops')).toThrow(/line 2: not valid JSON/);
    expect(() => parseJsonlCapture('{"type":"data"}', 'x.jsonl')).toThrow('x.jsonl: line 1: the first line must be the header');
  });
});
