/**
 * Raw kernel records <-> decoded Events. Every offset comes from layout.ts,
 * which is checked against bpf/events.h by the compiler in a test.
 */
import { LoupeError } from '../errors';
import { CONSTANTS, DATA_FIXED_SIZE, ENUMS, HEADER_AT, HEADER_SIZE, layoutOf, offsetOf, type StructName } from './layout';
import { familyOf, formatAddr, parseAddr } from './addr';
import type { ContextKind, ContextOrigin, DataEvent, DataSource, Direction, Event, EventType, GoRequestKind, LossSource, Role, SockOpenEvent } from './types';
import type { ProcessInfo } from './capture';

/** A record that cannot be decoded. `reason` says what is wrong; the caller adds where. */
export class RecordError extends LoupeError {
  constructor(public readonly reason: string) {
    super('LOUPE_RECORD', reason);
  }
}

/** A record whose type this version does not know: skipped and counted, never fatal. */
export interface UnknownRecord {
  type: 'unknown';
  recordType: number;
  ts: bigint;
}

/** Turns an enum like {LOUPE_ROLE_CLIENT: 1} into number <-> 'client' maps. */
function enumNames<T extends string>(values: Record<string, number>, prefix: string) {
  const byNumber = new Map<number, T>();
  const byName = new Map<T, number>();
  for (const [key, value] of Object.entries(values)) {
    const name = key.slice(prefix.length).toLowerCase() as T;
    byNumber.set(value, name);
    byName.set(name, value);
  }
  return { byNumber, byName };
}

const TYPES = enumNames<EventType>(ENUMS.loupe_event_type, 'LOUPE_EV_');
const ROLES = enumNames<Role>(ENUMS.loupe_role, 'LOUPE_ROLE_');
const DIRECTIONS = enumNames<Direction>(ENUMS.loupe_direction, 'LOUPE_DIR_');
const SOURCES = enumNames<DataSource>(ENUMS.loupe_data_source, 'LOUPE_SRC_');
const GO_KINDS = enumNames<GoRequestKind>(ENUMS.loupe_go_request_kind, 'LOUPE_GO_');
const LOSS_SOURCES = enumNames<LossSource>(ENUMS.loupe_loss_source, 'LOUPE_LOSS_');
const CONTEXT_KINDS = enumNames<ContextKind>(ENUMS.loupe_context_kind, 'LOUPE_CTX_');
const CONTEXT_ORIGINS = enumNames<ContextOrigin>(ENUMS.loupe_context_origin, 'LOUPE_CTX_');

const STRUCT_OF_TYPE: Record<EventType, StructName> = {
  sock_open: 'loupe_sock_open_event',
  data: 'loupe_data_event',
  sock_close: 'loupe_sock_close_event',
  tcp_state: 'loupe_tcp_state_event',
  proc_exec: 'loupe_proc_exec_event',
  proc_exit: 'loupe_proc_exit_event',
  proc_fork: 'loupe_proc_fork_event',
  go_goroutine_create: 'loupe_go_goroutine_event',
  go_goroutine_exit: 'loupe_go_goroutine_event',
  go_request_start: 'loupe_go_request_event',
  go_request_end: 'loupe_go_request_event',
  loss: 'loupe_loss_event',
  proc_info: 'loupe_proc_info_event',
  nat: 'loupe_nat_event',
  trace_context: 'loupe_trace_context_event',
};

export function eventTypeNumber(type: EventType): number {
  return TYPES.byName.get(type)!;
}

/** The smallest record a type may have; records may be longer (fields a newer kernel side appended). */
export function minRecordSize(type: EventType): number {
  if (type === 'data') return DATA_FIXED_SIZE;
  if (type === 'proc_info') return PROC_INFO_FIXED_SIZE;
  // Go request records before `host` was appended end at it: they are still read, host ''.
  if (type === 'go_request_start' || type === 'go_request_end') return offsetOf('loupe_go_request_event', 'host');
  return layoutOf(STRUCT_OF_TYPE[type]).size;
}

function lookup<T>(map: Map<number, T>, value: number, what: string): T {
  const name = map.get(value);
  if (name === undefined) throw new RecordError(`${what} ${value} is not a known value`);
  return name;
}

function family(value: number): 4 | 6 {
  if (value === 2) return 4;
  if (value === 10) return 6;
  throw new RecordError(`address family ${value} is neither AF_INET (2) nor AF_INET6 (10)`);
}

/** A NUL-terminated string in a fixed field of `length` bytes (a full field has no NUL). */
export function cString(buf: Buffer, offset: number, length: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + length ? offset + length : end);
}

// Offsets resolved once at load time; a typo throws here rather than decoding garbage.
const O = HEADER_AT;
const member = (s: StructName) => (m: string) => offsetOf(s, m);
const SO = member('loupe_sock_open_event');
const D = member('loupe_data_event');
const SC = member('loupe_sock_close_event');
const TS = member('loupe_tcp_state_event');
const PE = member('loupe_proc_exec_event');
const PX = member('loupe_proc_exit_event');
const PF = member('loupe_proc_fork_event');
const G = member('loupe_go_goroutine_event');
const GR = member('loupe_go_request_event');
const L = member('loupe_loss_event');
const PI = member('loupe_proc_info_event');
const N = member('loupe_nat_event');
const TC = member('loupe_trace_context_event');
/** A process description record is as long as its JSON: the fixed part, then `length` bytes. */
const PROC_INFO_FIXED_SIZE = offsetOf('loupe_proc_info_event', 'json');
// The data record is most of any capture: its offsets and each type's minimum size are looked up once.
const DATA_AT = {
  captured: D('captured'),
  bytes: D('bytes'),
  fd: D('fd'),
  direction: D('direction'),
  source: D('source'),
  flags: D('flags'),
  cookie: D('sock_cookie'),
  seq: D('seq'),
};
// The records of every request (trace_context, with TCP options) and of every connection: offsets resolved once too.
const TC_AT = {
  cookie: TC('sock_cookie'),
  offset: TC('offset'),
  length: TC('length'),
  kind: TC('kind'),
  origin: TC('origin'),
  traceId: TC('trace_id'),
  spanId: TC('span_id'),
};
const SO_AT = {
  family: SO('family'),
  seq: SO('seq'),
  fd: SO('fd'),
  role: SO('role'),
  protocol: SO('protocol'),
  localAddr: SO('local_addr'),
  localPort: SO('local_port'),
  remoteAddr: SO('remote_addr'),
  remotePort: SO('remote_port'),
  cookie: SO('sock_cookie'),
};
const SC_AT = { fd: SC('fd'), cookie: SC('sock_cookie') };
const TS_AT = {
  family: TS('family'),
  localAddr: TS('local_addr'),
  localPort: TS('local_port'),
  remoteAddr: TS('remote_addr'),
  remotePort: TS('remote_port'),
  oldState: TS('old_state'),
  newState: TS('new_state'),
  cookie: TS('sock_cookie'),
};
const MIN_SIZE = new Map<EventType, number>();
/** A u64 count as a number, without a BigInt: byte counts stay far below 2^53. */
export function readU64Number(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x1_0000_0000;
}

function decodeData(buf: Buffer, ts: bigint): DataEvent {
  const captured = buf.readUInt32LE(DATA_AT.captured);
  if (captured > CONSTANTS.LOUPE_MAX_PAYLOAD || DATA_FIXED_SIZE + captured > buf.length) {
    throw new RecordError(`data record says ${captured} payload bytes follow but only ${buf.length - DATA_FIXED_SIZE} do`);
  }
  const bytes = readU64Number(buf, DATA_AT.bytes);
  if (bytes < captured) throw new RecordError(`data record captured ${captured} bytes of a ${bytes}-byte call`);
  const flags = buf.readUInt16LE(DATA_AT.flags);
  const ev: DataEvent = {
    type: 'data',
    ts,
    pid: buf.readUInt32LE(O.pid),
    tid: buf.readUInt32LE(O.tid),
    cpu: buf.readUInt32LE(O.cpu),
    fd: buf.readInt32LE(DATA_AT.fd),
    direction: lookup(DIRECTIONS.byNumber, buf[DATA_AT.direction]!, 'direction'),
    source: lookup(SOURCES.byNumber, buf[DATA_AT.source]!, 'data source'),
    flags,
    cookie: buf.readBigUInt64LE(DATA_AT.cookie),
    bytes,
    data: buf.subarray(DATA_FIXED_SIZE, DATA_FIXED_SIZE + captured),
  };
  if (flags & CONSTANTS.LOUPE_DATA_F_SEQ) ev.seq = buf.readUInt32LE(DATA_AT.seq);
  return ev;
}

/**
 * Decode one raw record. `buf` must hold exactly one record. The returned
 * DataEvent's payload is a view into `buf` (no copy).
 */
export function decodeRecord(buf: Buffer): Event | UnknownRecord {
  if (buf.length < HEADER_SIZE) {
    throw new RecordError(`record of ${buf.length} bytes is shorter than the ${HEADER_SIZE}-byte event header`);
  }
  const ts = buf.readBigUInt64LE(O.ts);
  const typeNumber = buf.readUInt32LE(O.type);
  const type = TYPES.byNumber.get(typeNumber);
  if (type === undefined) return { type: 'unknown', recordType: typeNumber, ts };
  let min = MIN_SIZE.get(type);
  if (min === undefined) MIN_SIZE.set(type, (min = minRecordSize(type)));
  if (buf.length < min) {
    throw new RecordError(`${type} record of ${buf.length} bytes is shorter than its ${min}-byte layout`);
  }
  if (type === 'data') return decodeData(buf, ts);
  const pid = buf.readUInt32LE(O.pid);
  const tid = buf.readUInt32LE(O.tid);
  const cpu = buf.readUInt32LE(O.cpu);
  // The records of every request and every connection are built as literals, keys in the format's order (no spread).
  switch (type) {
    case 'trace_context':
      return {
        type,
        ts,
        pid,
        tid,
        cpu,
        cookie: buf.readBigUInt64LE(TC_AT.cookie),
        offset: buf.readUInt32LE(TC_AT.offset),
        length: buf.readUInt32LE(TC_AT.length),
        kind: lookup(CONTEXT_KINDS.byNumber, buf[TC_AT.kind]!, 'trace context kind'),
        origin: lookup(CONTEXT_ORIGINS.byNumber, buf[TC_AT.origin]!, 'trace context origin'),
        traceId: buf.toString('hex', TC_AT.traceId, TC_AT.traceId + 16),
        spanId: buf.toString('hex', TC_AT.spanId, TC_AT.spanId + 8),
      };
    case 'sock_open': {
      const fam = family(buf.readUInt16LE(SO_AT.family));
      const seq = buf.readUInt32LE(SO_AT.seq);
      const ev: SockOpenEvent = {
        type,
        ts,
        pid,
        tid,
        cpu,
        fd: buf.readInt32LE(SO_AT.fd),
        family: fam,
        role: lookup(ROLES.byNumber, buf[SO_AT.role]!, 'role'),
        protocol: buf[SO_AT.protocol]!,
        local: { addr: formatAddr(buf.subarray(SO_AT.localAddr), fam), port: buf.readUInt16LE(SO_AT.localPort) },
        remote: { addr: formatAddr(buf.subarray(SO_AT.remoteAddr), fam), port: buf.readUInt16LE(SO_AT.remotePort) },
        cookie: buf.readBigUInt64LE(SO_AT.cookie),
      };
      if (seq !== 0) ev.seq = seq;
      return ev;
    }
    case 'sock_close':
      return { type, ts, pid, tid, cpu, fd: buf.readInt32LE(SC_AT.fd), cookie: buf.readBigUInt64LE(SC_AT.cookie) };
    case 'tcp_state': {
      const fam = family(buf.readUInt16LE(TS_AT.family));
      return {
        type,
        ts,
        pid,
        tid,
        cpu,
        family: fam,
        local: { addr: formatAddr(buf.subarray(TS_AT.localAddr), fam), port: buf.readUInt16LE(TS_AT.localPort) },
        remote: { addr: formatAddr(buf.subarray(TS_AT.remoteAddr), fam), port: buf.readUInt16LE(TS_AT.remotePort) },
        oldState: buf[TS_AT.oldState]!,
        newState: buf[TS_AT.newState]!,
        cookie: buf.readBigUInt64LE(TS_AT.cookie),
      };
    }
  }
  const base = { ts, pid, tid, cpu };
  switch (type) {
    case 'proc_exec':
      return {
        type,
        ...base,
        ppid: buf.readUInt32LE(PE('ppid')),
        uid: buf.readUInt32LE(PE('uid')),
        comm: cString(buf, PE('comm'), CONSTANTS.LOUPE_COMM_LEN),
        filename: cString(buf, PE('filename'), CONSTANTS.LOUPE_FILENAME_LEN),
      };
    case 'proc_exit':
      return { type, ...base, exitCode: buf.readInt32LE(PX('exit_code')) };
    case 'proc_fork':
      return { type, ...base, childPid: buf.readUInt32LE(PF('child_pid')) };
    case 'go_goroutine_create':
    case 'go_goroutine_exit':
      return { type, ...base, goid: buf.readBigUInt64LE(G('goid')), parentGoid: buf.readBigUInt64LE(G('parent_goid')) };
    case 'go_request_start':
    case 'go_request_end':
      return {
        type,
        ...base,
        goid: buf.readBigUInt64LE(GR('goid')),
        kind: lookup(GO_KINDS.byNumber, buf.readUInt8(GR('kind')), 'Go request kind'),
        status: buf.readUInt16LE(GR('status')),
        fd: buf.readInt32LE(GR('fd')),
        startNs: buf.readBigUInt64LE(GR('start_ns')),
        method: cString(buf, GR('method'), CONSTANTS.LOUPE_GO_METHOD_LEN),
        path: cString(buf, GR('path'), CONSTANTS.LOUPE_GO_PATH_LEN),
        traceparent: cString(buf, GR('traceparent'), CONSTANTS.LOUPE_TRACEPARENT_LEN),
        host: buf.length >= GR('host') + CONSTANTS.LOUPE_GO_HOST_LEN ? cString(buf, GR('host'), CONSTANTS.LOUPE_GO_HOST_LEN) : '',
      };
    case 'loss':
      return {
        type,
        ...base,
        lost: buf.readBigUInt64LE(L('lost')),
        source: lookup(LOSS_SOURCES.byNumber, buf.readUInt32LE(L('source')), 'loss source'),
      };
    case 'proc_info':
      return { type, ...base, info: decodeProcessInfo(buf, base.pid) };
    case 'nat': {
      const client = family(buf.readUInt16LE(N('client_family')));
      const server = family(buf.readUInt16LE(N('server_family')));
      const endpoint = (side: 'client' | 'server', end: 'local' | 'remote', fam: 4 | 6) => ({
        addr: formatAddr(buf.subarray(N(`${side}_${end}_addr`)), fam),
        port: buf.readUInt16LE(N(`${side}_${end}_port`)),
      });
      return {
        type,
        ...base,
        clientLocal: endpoint('client', 'local', client),
        clientRemote: endpoint('client', 'remote', client),
        serverLocal: endpoint('server', 'local', server),
        serverRemote: endpoint('server', 'remote', server),
      };
    }
  }
}

function decodeProcessInfo(buf: Buffer, pid: number): ProcessInfo {
  const length = buf.readUInt32LE(PI('length'));
  if (length > CONSTANTS.LOUPE_PROC_INFO_MAX || PROC_INFO_FIXED_SIZE + length > buf.length) {
    throw new RecordError(`process record says ${length} bytes of JSON follow but only ${buf.length - PROC_INFO_FIXED_SIZE} do`);
  }
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8', PROC_INFO_FIXED_SIZE, PROC_INFO_FIXED_SIZE + length));
  } catch (e) {
    throw new RecordError(`process record: ${(e as Error).message}`);
  }
  const o = value as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new RecordError('process record: not a JSON object');
  if (o.pid !== pid) throw new RecordError(`process record: pid ${JSON.stringify(o.pid)} is not the record's ${pid}`);
  if (typeof o.exe !== 'string') throw new RecordError('process record: exe must be a string');
  for (const k of ['comm', 'service'] as const) if (o[k] !== undefined && typeof o[k] !== 'string') throw new RecordError(`process record: ${k} must be a string`);
  if (o.ppid !== undefined && !Number.isInteger(o.ppid)) throw new RecordError('process record: ppid must be an integer');
  if (o.cmdline !== undefined && !(Array.isArray(o.cmdline) && o.cmdline.every((a) => typeof a === 'string')))
    throw new RecordError('process record: cmdline must be an array of strings');
  const container = o.container as Record<string, unknown> | undefined;
  if (container !== undefined && (typeof container !== 'object' || container === null || typeof container.id !== 'string' || typeof container.runtime !== 'string'))
    throw new RecordError('process record: container must be an object with an id and a runtime');
  return o as unknown as ProcessInfo;
}

/** The JSON of a process record, cut to fit: arguments go first, then the executable's path is shortened. */
export function processInfoJson(info: ProcessInfo): Buffer {
  let json = Buffer.from(JSON.stringify(info), 'utf8');
  if (json.length > CONSTANTS.LOUPE_PROC_INFO_MAX && info.cmdline) json = Buffer.from(JSON.stringify({ ...info, cmdline: info.cmdline.slice(0, 1) }), 'utf8');
  if (json.length > CONSTANTS.LOUPE_PROC_INFO_MAX)
    json = Buffer.from(JSON.stringify({ pid: info.pid, exe: info.exe.slice(0, 1024), ...(info.service ? { service: info.service.slice(0, 256) } : {}) }), 'utf8');
  return json;
}

function encodeName<T>(map: Map<T, number>, name: T, what: string): number {
  const value = map.get(name);
  if (value === undefined) throw new RecordError(`${what} ${JSON.stringify(name)} is not a known value`);
  return value;
}

function writeCString(buf: Buffer, offset: number, length: number, text: string): void {
  const encoded = Buffer.from(text, 'utf8');
  if (encoded.length >= length) throw new RecordError(`${JSON.stringify(text)} does not fit in char[${length}]`);
  encoded.copy(buf, offset);
}

function writeEndpoint(buf: Buffer, addrOffset: number, portOffset: number, fam: 4 | 6, ep: { addr: string; port: number }) {
  Buffer.from(parseAddr(ep.addr, fam)).copy(buf, addrOffset);
  buf.writeUInt16LE(ep.port, portOffset);
}

/** Encode an Event into a raw record, exactly as the kernel side lays it out (padding zeroed). */
export function encodeEvent(ev: Event): Buffer {
  const json = ev.type === 'proc_info' ? processInfoJson(ev.info) : undefined;
  const size = ev.type === 'data' ? DATA_FIXED_SIZE + ev.data.length : json ? PROC_INFO_FIXED_SIZE + json.length : layoutOf(STRUCT_OF_TYPE[ev.type]).size;
  const buf = Buffer.alloc(size);
  buf.writeBigUInt64LE(ev.ts, O.ts);
  buf.writeUInt32LE(eventTypeNumber(ev.type), O.type);
  buf.writeUInt32LE(ev.pid, O.pid);
  buf.writeUInt32LE(ev.tid, O.tid);
  buf.writeUInt32LE(ev.cpu, O.cpu);
  switch (ev.type) {
    case 'sock_open':
      buf.writeInt32LE(ev.fd, SO('fd'));
      buf.writeUInt16LE(ev.family === 4 ? 2 : 10, SO('family'));
      buf.writeUInt8(encodeName(ROLES.byName, ev.role, 'role'), SO('role'));
      buf.writeUInt8(ev.protocol, SO('protocol'));
      writeEndpoint(buf, SO('local_addr'), SO('local_port'), ev.family, ev.local);
      writeEndpoint(buf, SO('remote_addr'), SO('remote_port'), ev.family, ev.remote);
      buf.writeBigUInt64LE(ev.cookie, SO('sock_cookie'));
      buf.writeUInt32LE((ev.seq ?? 0) >>> 0, SO('seq'));
      break;
    case 'data':
      writeData(buf, ev);
      break;
    case 'proc_info':
      buf.writeUInt32LE(json!.length, PI('length'));
      json!.copy(buf, PROC_INFO_FIXED_SIZE);
      break;
    case 'sock_close':
      buf.writeInt32LE(ev.fd, SC('fd'));
      buf.writeBigUInt64LE(ev.cookie, SC('sock_cookie'));
      break;
    case 'tcp_state':
      buf.writeUInt16LE(ev.family === 4 ? 2 : 10, TS('family'));
      writeEndpoint(buf, TS('local_addr'), TS('local_port'), ev.family, ev.local);
      writeEndpoint(buf, TS('remote_addr'), TS('remote_port'), ev.family, ev.remote);
      buf.writeUInt8(ev.oldState, TS('old_state'));
      buf.writeUInt8(ev.newState, TS('new_state'));
      buf.writeBigUInt64LE(ev.cookie, TS('sock_cookie'));
      break;
    case 'proc_exec':
      buf.writeUInt32LE(ev.ppid, PE('ppid'));
      buf.writeUInt32LE(ev.uid, PE('uid'));
      writeCString(buf, PE('comm'), CONSTANTS.LOUPE_COMM_LEN, ev.comm);
      writeCString(buf, PE('filename'), CONSTANTS.LOUPE_FILENAME_LEN, ev.filename);
      break;
    case 'proc_exit':
      buf.writeInt32LE(ev.exitCode, PX('exit_code'));
      break;
    case 'proc_fork':
      buf.writeUInt32LE(ev.childPid, PF('child_pid'));
      break;
    case 'go_goroutine_create':
    case 'go_goroutine_exit':
      buf.writeBigUInt64LE(ev.goid, G('goid'));
      buf.writeBigUInt64LE(ev.parentGoid, G('parent_goid'));
      break;
    case 'go_request_start':
    case 'go_request_end':
      buf.writeBigUInt64LE(ev.goid, GR('goid'));
      buf.writeUInt8(encodeName(GO_KINDS.byName, ev.kind, 'Go request kind'), GR('kind'));
      buf.writeUInt16LE(ev.status, GR('status'));
      buf.writeInt32LE(ev.fd, GR('fd'));
      buf.writeBigUInt64LE(ev.startNs, GR('start_ns'));
      writeCString(buf, GR('method'), CONSTANTS.LOUPE_GO_METHOD_LEN, ev.method);
      writeCString(buf, GR('path'), CONSTANTS.LOUPE_GO_PATH_LEN, ev.path);
      writeCString(buf, GR('traceparent'), CONSTANTS.LOUPE_TRACEPARENT_LEN, ev.traceparent);
      writeCString(buf, GR('host'), CONSTANTS.LOUPE_GO_HOST_LEN, ev.host);
      break;
    case 'nat': {
      const client = familyOf(ev.clientLocal.addr);
      const server = familyOf(ev.serverLocal.addr);
      buf.writeUInt16LE(client === 4 ? 2 : 10, N('client_family'));
      buf.writeUInt16LE(server === 4 ? 2 : 10, N('server_family'));
      writeEndpoint(buf, N('client_local_addr'), N('client_local_port'), client, ev.clientLocal);
      writeEndpoint(buf, N('client_remote_addr'), N('client_remote_port'), client, ev.clientRemote);
      writeEndpoint(buf, N('server_local_addr'), N('server_local_port'), server, ev.serverLocal);
      writeEndpoint(buf, N('server_remote_addr'), N('server_remote_port'), server, ev.serverRemote);
      break;
    }
    case 'trace_context':
      buf.writeBigUInt64LE(ev.cookie, TC('sock_cookie'));
      buf.writeUInt32LE(ev.offset, TC('offset'));
      buf.writeUInt32LE(ev.length, TC('length'));
      buf.writeUInt8(encodeName(CONTEXT_KINDS.byName, ev.kind, 'trace context kind'), TC('kind'));
      buf.writeUInt8(encodeName(CONTEXT_ORIGINS.byName, ev.origin, 'trace context origin'), TC('origin'));
      writeHex(buf, TC('trace_id'), 16, ev.traceId, 'traceId');
      writeHex(buf, TC('span_id'), 8, ev.spanId, 'spanId');
      break;
    case 'loss':
      buf.writeBigUInt64LE(ev.lost, L('lost'));
      buf.writeUInt32LE(encodeName(LOSS_SOURCES.byName, ev.source, 'loss source'), L('source'));
      break;
  }
  return buf;
}

function writeHex(buf: Buffer, at: number, length: number, hex: string, what: string): void {
  if (hex.length !== 2 * length || !/^[0-9a-f]*$/.test(hex)) throw new RecordError(`${what} must be ${2 * length} lower-case hex digits, got ${JSON.stringify(hex)}`);
  buf.write(hex, at, length, 'hex');
}

function writeData(buf: Buffer, ev: DataEvent): void {
  if (ev.data.length > CONSTANTS.LOUPE_MAX_PAYLOAD) {
    throw new RecordError(`data payload of ${ev.data.length} bytes exceeds LOUPE_MAX_PAYLOAD (${CONSTANTS.LOUPE_MAX_PAYLOAD}); split it`);
  }
  if (ev.bytes < ev.data.length) throw new RecordError(`data event moved ${ev.bytes} bytes but carries ${ev.data.length}`);
  buf.writeInt32LE(ev.fd, D('fd'));
  buf.writeUInt8(encodeName(DIRECTIONS.byName, ev.direction, 'direction'), D('direction'));
  buf.writeUInt8(encodeName(SOURCES.byName, ev.source, 'data source'), D('source'));
  buf.writeUInt16LE(ev.flags, D('flags'));
  buf.writeBigUInt64LE(ev.cookie, D('sock_cookie'));
  buf.writeBigUInt64LE(BigInt(ev.bytes), D('bytes'));
  buf.writeUInt32LE(ev.data.length, D('captured'));
  buf.writeUInt32LE(ev.flags & CONSTANTS.LOUPE_DATA_F_SEQ ? (ev.seq ?? 0) >>> 0 : 0, D('seq'));
  buf.set(ev.data, DATA_FIXED_SIZE);
}

export const NAMES = { ROLES, DIRECTIONS, SOURCES, GO_KINDS, LOSS_SOURCES, TYPES };
