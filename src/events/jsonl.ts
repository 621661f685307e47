/**
 * The JSONL form of a capture: a header line, then one event per line. Meant
 * for hand-written test cases and diffs. Every event goes through the binary
 * codec (encodeEvent), so a JSONL capture behaves exactly like a binary one,
 * and conversion both ways is lossless (see docs/formats.md).
 */
import { CaptureError, validateHeader, type CaptureHeader, type ProcessInfo, type RawRecord } from './capture';
import { decodeRecord, encodeEvent, RecordError, type UnknownRecord } from './codec';
import { familyOf } from './addr';
import { CONSTANTS } from './layout';
import type { Endpoint, Event, Role } from './types';

const DEFAULT_HEADER: CaptureHeader = {
  eventsVersion: 1,
  seed: '0000000000000001',
  host: { hostname: 'unknown', kernel: 'unknown', arch: 'x86_64' },
  bootTimeNs: '0',
  processes: [],
  config: {},
};

type Json = Record<string, unknown>;

function bigintField(v: unknown, name: string, fallback?: bigint): bigint {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  throw new RecordError(`${name} must be a non-negative integer (number or decimal string), got ${JSON.stringify(v)}`);
}

function intField(v: unknown, name: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw new RecordError(`${name} must be an integer, got ${JSON.stringify(v)}`);
}

function stringField(v: unknown, name: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'string') return v;
  throw new RecordError(`${name} must be a string, got ${JSON.stringify(v)}`);
}

function parseEndpoint(v: unknown, name: string): Endpoint {
  const text = stringField(v, name);
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new RecordError(`${name} must look like 127.0.0.1:8080 or [::1]:8080, got ${JSON.stringify(text)}`);
  return { addr: (m[1] ?? m[2])!, port: Number(m[3]) };
}

function formatEndpoint(ep: Endpoint): string {
  return ep.addr.includes(':') ? `[${ep.addr}]:${ep.port}` : `${ep.addr}:${ep.port}`;
}

function jsonBig(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** Payload as readable text when it round-trips exactly and holds no odd control bytes. */
function payloadJson(data: Uint8Array): Json {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const text = buf.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]/.test(text) && Buffer.from(text, 'utf8').equals(buf)) return { data: text };
  return { dataB64: buf.toString('base64') };
}

/** One JSON object -> Event. Throws RecordError with what is wrong. */
export function eventFromJson(o: Json): Event {
  const base = {
    ts: bigintField(o.ts, 'ts'),
    pid: intField(o.pid, 'pid'),
    tid: intField(o.tid, 'tid', intField(o.pid, 'pid')),
    cpu: intField(o.cpu, 'cpu', 0),
  };
  const type = o.type;
  switch (type) {
    case 'sock_open': {
      const local = parseEndpoint(o.local, 'local');
      const remote = parseEndpoint(o.remote, 'remote');
      return {
        type,
        ...base,
        fd: intField(o.fd, 'fd'),
        family: familyOf(local.addr),
        role: stringField(o.role, 'role') as Role,
        protocol: intField(o.protocol, 'protocol', 6),
        local,
        remote,
        cookie: bigintField(o.cookie, 'cookie', 0n),
        ...(o.seq !== undefined && o.seq !== 0 ? { seq: intField(o.seq, 'seq') >>> 0 } : {}),
      };
    }
    case 'data': {
      let data: Uint8Array;
      if (typeof o.data === 'string') data = Buffer.from(o.data, 'utf8');
      else if (typeof o.dataB64 === 'string') data = Buffer.from(o.dataB64, 'base64');
      else throw new RecordError('data event needs "data" (text) or "dataB64" (base64)');
      const direction = stringField(o.dir, 'dir');
      return {
        type,
        ...base,
        fd: intField(o.fd, 'fd'),
        direction: direction as 'egress' | 'ingress',
        source: stringField(o.source, 'source', direction === 'egress' ? 'write' : 'read') as 'write',
        flags: intField(o.flags, 'flags', 0),
        cookie: bigintField(o.cookie, 'cookie', 0n),
        bytes: intField(o.bytes, 'bytes', data.length),
        data,
        ...(o.seq !== undefined ? { seq: intField(o.seq, 'seq') >>> 0 } : {}),
      };
    }
    case 'sock_close':
      return { type, ...base, fd: intField(o.fd, 'fd'), cookie: bigintField(o.cookie, 'cookie', 0n) };
    case 'tcp_state': {
      const local = parseEndpoint(o.local, 'local');
      return {
        type,
        ...base,
        family: familyOf(local.addr),
        local,
        remote: parseEndpoint(o.remote, 'remote'),
        oldState: intField(o.oldState, 'oldState'),
        newState: intField(o.newState, 'newState'),
        cookie: bigintField(o.cookie, 'cookie', 0n),
      };
    }
    case 'proc_exec':
      return {
        type,
        ...base,
        ppid: intField(o.ppid, 'ppid', 0),
        uid: intField(o.uid, 'uid', 0),
        comm: stringField(o.comm, 'comm'),
        filename: stringField(o.filename, 'filename'),
      };
    case 'proc_exit':
      return { type, ...base, exitCode: intField(o.exitCode, 'exitCode', 0) };
    case 'proc_fork':
      return { type, ...base, childPid: intField(o.childPid, 'childPid', 0) };
    case 'proc_info':
      // Checked as the binary form checks it.
      return decodeRecord(encodeEvent({ type, ...base, info: o.info as ProcessInfo })) as Event;
    case 'go_goroutine_create':
    case 'go_goroutine_exit':
      return { type, ...base, goid: bigintField(o.goid, 'goid'), parentGoid: bigintField(o.parentGoid, 'parentGoid', 0n) };
    case 'go_request_start':
    case 'go_request_end':
      return {
        type,
        ...base,
        goid: bigintField(o.goid, 'goid'),
        kind: stringField(o.kind, 'kind') as 'http_server',
        status: intField(o.status, 'status', 0),
        fd: intField(o.fd, 'fd', -1),
        startNs: bigintField(o.startNs, 'startNs', 0n),
        method: stringField(o.method, 'method', ''),
        path: stringField(o.path, 'path', ''),
        traceparent: stringField(o.traceparent, 'traceparent', ''),
        host: stringField(o.host, 'host', ''),
      };
    case 'loss':
      return { type, ...base, lost: bigintField(o.lost, 'lost'), source: stringField(o.source, 'source', 'ringbuf') as 'ringbuf' };
    case 'nat':
      return {
        type,
        ...base,
        clientLocal: parseEndpoint(o.clientLocal, 'clientLocal'),
        clientRemote: parseEndpoint(o.clientRemote, 'clientRemote'),
        serverLocal: parseEndpoint(o.serverLocal, 'serverLocal'),
        serverRemote: parseEndpoint(o.serverRemote, 'serverRemote'),
      };
    case 'trace_context':
      return {
        type,
        ...base,
        cookie: bigintField(o.cookie, 'cookie'),
        offset: intField(o.offset, 'offset'),
        length: intField(o.length, 'length'),
        kind: stringField(o.kind, 'kind') as 'server_request',
        origin: stringField(o.origin, 'origin') as 'new',
        traceId: stringField(o.traceId, 'traceId'),
        spanId: stringField(o.spanId, 'spanId', '0000000000000000'),
      };
    default:
      throw new RecordError(`unknown event type ${JSON.stringify(type)}`);
  }
}

/** Event -> canonical JSON object: fixed key order, defaults left out. */
export function eventToJson(ev: Event): Json {
  const o: Json = { type: ev.type, ts: jsonBig(ev.ts), pid: ev.pid };
  if (ev.tid !== ev.pid) o.tid = ev.tid;
  if (ev.cpu !== 0) o.cpu = ev.cpu;
  switch (ev.type) {
    case 'sock_open':
      Object.assign(o, { fd: ev.fd, role: ev.role, local: formatEndpoint(ev.local), remote: formatEndpoint(ev.remote) });
      if (ev.protocol !== 6) o.protocol = ev.protocol;
      if (ev.cookie !== 0n) o.cookie = jsonBig(ev.cookie);
      if (ev.seq !== undefined) o.seq = ev.seq;
      break;
    case 'data':
      Object.assign(o, { fd: ev.fd, dir: ev.direction });
      if (ev.source !== (ev.direction === 'egress' ? 'write' : 'read')) o.source = ev.source;
      if (ev.flags !== 0) o.flags = ev.flags;
      if (ev.cookie !== 0n) o.cookie = jsonBig(ev.cookie);
      if (ev.bytes !== ev.data.length) o.bytes = ev.bytes;
      if (ev.flags & CONSTANTS.LOUPE_DATA_F_SEQ) o.seq = ev.seq ?? 0;
      Object.assign(o, payloadJson(ev.data));
      break;
    case 'sock_close':
      o.fd = ev.fd;
      if (ev.cookie !== 0n) o.cookie = jsonBig(ev.cookie);
      break;
    case 'tcp_state':
      Object.assign(o, { local: formatEndpoint(ev.local), remote: formatEndpoint(ev.remote), oldState: ev.oldState, newState: ev.newState });
      if (ev.cookie !== 0n) o.cookie = jsonBig(ev.cookie);
      break;
    case 'proc_exec':
      Object.assign(o, { ppid: ev.ppid, uid: ev.uid, comm: ev.comm, filename: ev.filename });
      break;
    case 'proc_exit':
      o.exitCode = ev.exitCode;
      break;
    case 'proc_fork':
      o.childPid = ev.childPid;
      break;
    case 'proc_info':
      o.info = ev.info;
      break;
    case 'go_goroutine_create':
    case 'go_goroutine_exit':
      o.goid = jsonBig(ev.goid);
      if (ev.parentGoid !== 0n) o.parentGoid = jsonBig(ev.parentGoid);
      break;
    case 'go_request_start':
    case 'go_request_end':
      Object.assign(o, {
        goid: jsonBig(ev.goid),
        kind: ev.kind,
        status: ev.status,
        fd: ev.fd,
        startNs: jsonBig(ev.startNs),
        method: ev.method,
        path: ev.path,
        traceparent: ev.traceparent,
        host: ev.host,
      });
      break;
    case 'loss':
      Object.assign(o, { lost: jsonBig(ev.lost), source: ev.source });
      break;
    case 'nat':
      Object.assign(o, {
        clientLocal: formatEndpoint(ev.clientLocal),
        clientRemote: formatEndpoint(ev.clientRemote),
        serverLocal: formatEndpoint(ev.serverLocal),
        serverRemote: formatEndpoint(ev.serverRemote),
      });
      break;
    case 'trace_context':
      Object.assign(o, { cookie: jsonBig(ev.cookie), offset: ev.offset, length: ev.length, kind: ev.kind, origin: ev.origin, traceId: ev.traceId, spanId: ev.spanId });
      break;
  }
  return o;
}

/**
 * A raw record as one JSONL line. Records whose canonical re-encoding would
 * differ (unknown types, fields appended by a newer kernel side, non-zero
 * padding) also carry "raw", so conversion back is byte-exact.
 */
export function recordToJsonLine(raw: Buffer): string {
  const ev: Event | UnknownRecord = decodeRecord(raw);
  if (ev.type === 'unknown') {
    return JSON.stringify({ type: 'unknown', recordType: ev.recordType, ts: jsonBig(ev.ts), raw: raw.toString('base64') });
  }
  const o = eventToJson(ev);
  if (!encodeEvent(ev).equals(raw)) o.raw = raw.toString('base64');
  return JSON.stringify(o);
}

export function headerToJsonLine(header: CaptureHeader): string {
  return JSON.stringify({ loupe: 'capture', ...header });
}

/** Parse the JSONL form. Errors name the line. */
export function parseJsonlCapture(text: string, file: string): { header: CaptureHeader; records: RawRecord[] } {
  const lines = text.split('\n');
  let header: CaptureHeader | undefined;
  const records: RawRecord[] = [];
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === '' || line.trimStart().startsWith('//')) return;
    let o: Json;
    try {
      o = JSON.parse(line) as Json;
    } catch (e) {
      throw new CaptureError(file, where, `not valid JSON (${(e as Error).message})`);
    }
    if (!header) {
      if (o.loupe !== 'capture') throw new CaptureError(file, where, 'the first line must be the header: {"loupe":"capture", ...}');
      const { loupe: _tag, ...rest } = o;
      header = validateHeader({ ...DEFAULT_HEADER, ...rest }, file, where);
      return;
    }
    try {
      let bytes: Buffer;
      if (typeof o.raw === 'string') {
        bytes = Buffer.from(o.raw, 'base64');
        decodeRecord(bytes); // a raw record must still be well-formed
      } else {
        bytes = encodeEvent(eventFromJson(o));
      }
      records.push({ where, bytes });
    } catch (e) {
      // RecordError, or a RangeError from a Buffer write of an out-of-range value
      throw new CaptureError(file, where, (e as Error).message);
    }
  });
  if (!header) throw new CaptureError(file, 'line 1', 'empty capture: no header line');
  return { header, records };
}
