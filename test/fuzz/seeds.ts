/**
 * Fuzzing seeds: the conversations of the committed live captures (real
 * servers' and clients' bytes), one list per protocol, as each connection's
 * turns (consecutive bytes of one side joined).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { decodeRecord } from '../../src/events/codec';
import type { Role } from '../../src/events/types';
import { sideOf } from '../../src/streams/connections';
import { detectProtocol, NEED_MORE } from '../../src/parsers/detect';
import { openCapture } from '../../src/sources/capture-file';
import type { Turn } from '../parser-harness';
import { ROOT } from '../helpers';

export const SEED_CAPTURES = ['shop-live.loupe', 'gofactorial-live.loupe', 'polyglot-live.loupe', 'factorial-live.loupe'];

/** A conversation's bytes past this are left out: mutations near the start reach every state anyway. */
const MAX_SEED_BYTES = 64 * 1024;

export function seedsByProtocol(captures = SEED_CAPTURES): Map<string, Turn[][]> {
  const conversations = new Map<string, { role: Role; turns: Turn[]; size: number }>();
  for (const name of captures) {
    const source = openCapture(path.join(ROOT, 'captures', name));
    for (const batch of source.batches()) {
      for (const raw of batch) {
        const ev = decodeRecord(raw.bytes);
        if (ev.type === 'sock_open') conversations.set(`${name}:${ev.pid}:${ev.cookie}`, { role: ev.role, turns: [], size: 0 });
        if (ev.type !== 'data' || ev.data.length === 0) continue;
        const key = `${name}:${ev.pid}:${ev.cookie}`;
        let c = conversations.get(key);
        if (!c) conversations.set(key, (c = { role: ev.direction === 'egress' ? 'client' : 'server', turns: [], size: 0 }));
        if (c.size >= MAX_SEED_BYTES) continue;
        const side = sideOf(c.role === 'unknown' ? 'client' : c.role, ev.direction);
        const last = c.turns[c.turns.length - 1];
        const bytes = Buffer.from(ev.data);
        if (last?.side === side) last.bytes = Buffer.concat([last.bytes, bytes]);
        else c.turns.push({ side, bytes });
        c.size += bytes.length;
      }
    }
  }
  const byProtocol = new Map<string, Turn[][]>();
  for (const c of conversations.values()) {
    // The first bytes, whoever sent them (a MySQL server speaks first), else the client's.
    const verdicts = [c.turns[0], c.turns.find((t) => t.side === 'client')].filter((t) => t !== undefined).map((t) => detectProtocol(t.bytes));
    const verdict = verdicts.find((v): v is Exclude<typeof v, typeof NEED_MORE | undefined> => v !== NEED_MORE && v !== undefined);
    if (!verdict) continue;
    const list = byProtocol.get(verdict.protocol) ?? [];
    list.push(c.turns);
    byProtocol.set(verdict.protocol, list);
  }
  return byProtocol;
}

/** A memcached binary packet: 24-byte header (magic 0x80 request, 0x81 response), extras of zeros, key, value. */
export function memcachedPacket(magic: number, opcode: number, opaque: number, key = '', value = '', extras = 0, status = 0): Buffer {
  const h = Buffer.alloc(24);
  h[0] = magic;
  h[1] = opcode;
  h.writeUInt16BE(key.length, 2);
  h[4] = extras;
  h.writeUInt16BE(status, 6);
  h.writeUInt32BE(extras + key.length + value.length, 8);
  h.writeUInt32BE(opaque, 12);
  return Buffer.concat([h, Buffer.alloc(extras), Buffer.from(key, 'latin1'), Buffer.from(value, 'latin1')]);
}

/** An MQTT Variable Byte Integer. */
function mqttVarint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** MQTT's two-byte-length string. */
export const mqttString = (s: string | Buffer): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** MQTT 5 properties: a length, then each property (identifier first) as given. */
export const mqttProperties = (...props: Buffer[]): Buffer => Buffer.concat([mqttVarint(Buffer.concat(props).length), ...props]);

/** An MQTT 5 user property. */
export const mqttUserProperty = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x26]), mqttString(name), mqttString(value)]);

/** An MQTT control packet: the first byte (type and flags), the Remaining Length, the rest. */
export const mqttPacket = (first: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([first]), mqttVarint(body.length), body]);
};

/** A Kafka zigzag varint. */
function kafkaVarint(n: number): Buffer {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  do {
    let b = z % 128;
    z = Math.floor(z / 128);
    if (z > 0) b |= 0x80;
    out.push(b);
  } while (z > 0);
  return Buffer.from(out);
}

/** Big-endian integers and Kafka's int16-length string, as the Kafka seeds, tests and benchmarks build messages. */
export const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
export const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
export const kafkaString = (v: string): Buffer => Buffer.concat([int16(Buffer.byteLength(v)), Buffer.from(v)]);

/** A Kafka record batch (magic 2) of records with headers; `gzip` compresses its records. */
export function kafkaBatch(records: Array<{ value: string; headers?: Array<[string, string]> }>, gzip = false): Buffer {
  const bodies = records.map((r, i) => {
    const headers = r.headers ?? [];
    const body = Buffer.concat([
      Buffer.from([0]),
      kafkaVarint(0),
      kafkaVarint(i),
      kafkaVarint(-1),
      kafkaVarint(r.value.length),
      Buffer.from(r.value),
      kafkaVarint(headers.length),
      ...headers.flatMap(([k, v]) => [kafkaVarint(k.length), Buffer.from(k), kafkaVarint(v.length), Buffer.from(v)]),
    ]);
    return Buffer.concat([kafkaVarint(body.length), body]);
  });
  const payload = gzip ? zlib.gzipSync(Buffer.concat(bodies)) : Buffer.concat(bodies);
  const head = Buffer.alloc(61);
  head.writeInt32BE(61 - 12 + payload.length, 8);
  head[16] = 2;
  head.writeInt16BE(gzip ? 1 : 0, 21);
  head.writeInt32BE(records.length - 1, 23);
  head.writeInt32BE(records.length, 57);
  const batch = Buffer.concat([head, payload]);
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
  return batch;
}

/** CRC-32C (Castagnoli), as a record batch's CRC field holds it (from the attributes to the batch's end). */
function crc32c(b: Buffer): number {
  let crc = ~0;
  for (const byte of b) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** A Kafka message: a 4-byte size, then the parts. */
export const kafkaFrame = (...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
};

/** An AMQP 0-9-1 frame: type, channel, size, payload, 0xCE. */
export function amqpFrame(type: number, channel: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(body.length, 3);
  return Buffer.concat([head, body, Buffer.from([0xce])]);
}

/** AMQP's short string, long string and field table (entries given as name and encoded value, type letter first). */
export const amqpShortstr = (s: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
export const amqpLongstr = (s: string | Buffer): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
};
export const amqpTable = (...entries: Array<[string, Buffer]>): Buffer => {
  const body = Buffer.concat(entries.flatMap(([k, v]) => [amqpShortstr(k), v]));
  const n = Buffer.alloc(4);
  n.writeUInt32BE(body.length);
  return Buffer.concat([n, body]);
};

/** An AMQP method frame's payload: class, method, arguments. */
export const amqpMethod = (classId: number, methodId: number, ...args: Buffer[]): Buffer => {
  const ids = Buffer.alloc(4);
  ids.writeUInt16BE(classId);
  ids.writeUInt16BE(methodId, 2);
  return Buffer.concat([ids, ...args]);
};

/** A basic content header: body size and the headers table (flag bit 13), with a content type (bit 15). */
export const amqpContentHeader = (bodySize: number, headers: Buffer): Buffer => {
  const h = Buffer.alloc(14);
  h.writeUInt16BE(60);
  h.writeUInt32BE(bodySize, 8);
  h.writeUInt16BE(0x8000 | 0x2000, 12);
  return Buffer.concat([h, amqpShortstr('application/json'), headers]);
};

/** Wire messages the captures lack: PostgreSQL's extended protocol, MySQL prepared statements and a result set. */
export function syntheticSeeds(): Map<string, Turn[][]> {
  const pgMsg = (type: string, body: Buffer) => {
    const h = Buffer.alloc(5);
    h.write(type, 0, 'latin1');
    h.writeUInt32BE(body.length + 4, 1);
    return Buffer.concat([h, body]);
  };
  const cstr = (s: string) => Buffer.from(`${s}\0`);
  const i16 = (...v: number[]) =>
    Buffer.concat(
      v.map((x) => {
        const b = Buffer.alloc(2);
        b.writeInt16BE(x);
        return b;
      }),
    );
  const i32 = int32;
  const startup = Buffer.concat([i32(0), i32(196608), cstr('user'), cstr('app'), cstr('database'), cstr('shop'), Buffer.alloc(1)]);
  startup.writeInt32BE(startup.length, 0);
  const extended: Turn[] = [
    { side: 'client', bytes: startup },
    { side: 'server', bytes: Buffer.concat([pgMsg('R', i32(0)), pgMsg('Z', Buffer.from('I'))]) },
    {
      side: 'client',
      bytes: Buffer.concat([
        pgMsg('P', Buffer.concat([cstr('s1'), cstr('SELECT $1::int'), i16(1), i32(23)])),
        pgMsg('B', Buffer.concat([cstr(''), cstr('s1'), i16(1, 0), i16(1), i32(1), Buffer.from('7'), i16(1, 0)])),
        pgMsg('D', Buffer.concat([Buffer.from('P'), cstr('')])),
        pgMsg('E', Buffer.concat([cstr(''), i32(0)])),
        pgMsg('S', Buffer.alloc(0)),
      ]),
    },
    {
      side: 'server',
      bytes: Buffer.concat([
        pgMsg('1', Buffer.alloc(0)),
        pgMsg('2', Buffer.alloc(0)),
        pgMsg('T', Buffer.concat([i16(1), cstr('int4'), i32(0), i16(0), i32(23), i16(4), i32(-1), i16(0)])),
        pgMsg('D', Buffer.concat([i16(1), i32(1), Buffer.from('7')])),
        pgMsg('C', cstr('SELECT 1')),
        pgMsg('Z', Buffer.from('I')),
      ]),
    },
    { side: 'client', bytes: pgMsg('p', cstr('secret-password')) },
    { side: 'server', bytes: pgMsg('E', Buffer.concat([Buffer.from('S'), cstr('ERROR'), Buffer.from('C'), cstr('28P01'), Buffer.from('M'), cstr('no'), Buffer.alloc(1)])) },
  ];
  const my = (seq: number, payload: Buffer) => {
    const h = Buffer.alloc(4);
    h.writeUIntLE(payload.length, 0, 3);
    h[3] = seq;
    return Buffer.concat([h, payload]);
  };
  const lenStr = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const greeting = Buffer.concat([
    Buffer.from([10]),
    cstr('8.0.36'),
    u32(7),
    Buffer.alloc(8, 0x61),
    Buffer.alloc(1),
    u16(0xffff),
    Buffer.from([33]),
    u16(2),
    u16(0x81ff),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.alloc(13, 0x62),
    cstr('mysql_native_password'),
  ]);
  const login = Buffer.concat([u32(0x000fa685), u32(1 << 24), Buffer.from([33]), Buffer.alloc(23), cstr('root'), Buffer.from([20]), Buffer.alloc(20, 0x63), cstr('shop')]);
  const ok = (seq: number) => my(seq, Buffer.from([0, 0, 0, 2, 0, 0, 0]));
  const eof = (seq: number) => my(seq, Buffer.from([0xfe, 0, 0, 2, 0]));
  const column = (seq: number) =>
    my(
      seq,
      Buffer.concat([
        lenStr('def'),
        lenStr(''),
        lenStr(''),
        lenStr(''),
        lenStr('1'),
        lenStr(''),
        Buffer.from([0x0c]),
        u16(63),
        u32(1),
        Buffer.from([8]),
        u16(0x81),
        Buffer.from([0]),
        u16(0),
      ]),
    );
  const prepared: Turn[] = [
    { side: 'server', bytes: my(0, greeting) },
    { side: 'client', bytes: my(1, login) },
    { side: 'server', bytes: ok(2) },
    { side: 'client', bytes: my(0, Buffer.concat([Buffer.from([3]), Buffer.from('SELECT 1')])) },
    { side: 'server', bytes: Buffer.concat([my(1, Buffer.from([1])), column(2), eof(3), my(4, lenStr('1')), eof(5)]) },
    { side: 'client', bytes: my(0, Buffer.concat([Buffer.from([0x16]), Buffer.from('UPDATE t SET a = ? WHERE b = 2')])) },
    { side: 'server', bytes: Buffer.concat([my(1, Buffer.concat([Buffer.from([0]), u32(1), u16(0), u16(1), Buffer.from([0]), u16(0)])), column(2), eof(3)]) },
    { side: 'client', bytes: my(0, Buffer.concat([Buffer.from([0x17]), u32(1), Buffer.from([0]), u32(1), Buffer.from([0, 1]), u16(8), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])])) },
    { side: 'server', bytes: ok(1) },
    { side: 'client', bytes: my(0, Buffer.concat([Buffer.from([0x19]), u32(1)])) },
  ];
  // The compressed protocol (CLIENT_COMPRESS): after the login, packets inside compressed packets, small ones sent as is.
  const zipped = (plain: Buffer, seq = 0) => {
    const asIs = plain.length < 50;
    const body = asIs ? plain : zlib.deflateSync(plain);
    const h = Buffer.alloc(7);
    h.writeUIntLE(body.length, 0, 3);
    h[3] = seq;
    h.writeUIntLE(asIs ? 0 : plain.length, 4, 3);
    return Buffer.concat([h, body]);
  };
  const compressedLogin = Buffer.from(login);
  compressedLogin.writeUInt32LE(0x000fa685 | 0x20, 0);
  const compressed: Turn[] = [
    { side: 'server', bytes: my(0, greeting) },
    { side: 'client', bytes: my(1, compressedLogin) },
    { side: 'server', bytes: ok(2) },
    { side: 'client', bytes: zipped(my(0, Buffer.from("\x03SELECT * FROM users WHERE email = 'ann@example.com' AND pin = 4321", 'latin1'))) },
    { side: 'server', bytes: zipped(Buffer.concat([my(1, Buffer.from([1])), column(2), eof(3), my(4, lenStr('1')), eof(5)])) },
    { side: 'client', bytes: zipped(my(0, Buffer.from("\x03SELECT 'x'", 'latin1'))) },
    { side: 'server', bytes: zipped(ok(1)) },
  ];
  const resp = (...parts: string[]) => Buffer.from(parts.join('\r\n') + '\r\n');
  const redis: Turn[] = [
    { side: 'client', bytes: resp('*2', '$4', 'AUTH', '$6', 'sekret') },
    { side: 'server', bytes: resp('+OK') },
    { side: 'client', bytes: resp('*3', '$5', 'HELLO', '$1', '3', '$4', 'AUTH') },
    {
      side: 'server',
      bytes: resp('%1', '+server', '+redis', '>2', '+message', ':7', '|1', '+a', '+b', '~1', ',1.5', '_', '#t', '(12345678901234567890', '=5', 'txt:x', '!3', 'ERR'),
    },
    { side: 'client', bytes: resp('*2', '$3', 'GET', '$1', 'k') },
    { side: 'server', bytes: resp('$-1', '*-1', '-ERR nope', '*2', '$1', 'a', '*1', ':1') },
  ];
  const text = (s: string) => Buffer.from(s, 'latin1');
  const memcachedText: Turn[] = [
    { side: 'client', bytes: text('set user:1 0 3600 5\r\nhello\r\nget user:1 user:2\r\n') },
    { side: 'server', bytes: text('STORED\r\nVALUE user:1 0 5\r\nhello\r\nEND\r\n') },
    { side: 'client', bytes: text('incr hits 1 noreply\r\ndelete user:9\r\nms k 2 T0 q\r\nhi\r\nmg k v q\r\nmg gone v q\r\nmn\r\nbogus\r\n') },
    { side: 'server', bytes: text('NOT_FOUND\r\nVA 2\r\nhi\r\nMN\r\nERROR\r\n') },
  ];
  const memcachedBinary: Turn[] = [
    { side: 'client', bytes: memcachedPacket(0x80, 0x21, 1, 'PLAIN', '\0user\0sekret') },
    { side: 'server', bytes: memcachedPacket(0x81, 0x21, 1, '', 'Authenticated') },
    {
      side: 'client',
      bytes: Buffer.concat([
        memcachedPacket(0x80, 0x01, 2, 'k', 'value', 8),
        memcachedPacket(0x80, 0x09, 3, 'miss', ''),
        memcachedPacket(0x80, 0x09, 4, 'k', ''),
        memcachedPacket(0x80, 0x0a, 5, '', ''),
      ]),
    },
    { side: 'server', bytes: Buffer.concat([memcachedPacket(0x81, 0x01, 2, '', ''), memcachedPacket(0x81, 0x09, 4, '', 'value', 4), memcachedPacket(0x81, 0x0a, 5, '', '')]) },
  ];
  // memcslap against memcached 1.6 (text sets and gets, binary sets and a multi-get of quiet GETKQs): the first turns
  // of each connection of a live recording, cut at 2000 bytes a turn.
  const memcslap: Turn[][] = fs
    .readFileSync(path.join(ROOT, 'test/fixtures/memcached-memcslap.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as Array<{ side: 'client' | 'server'; hex: string }>).map((t) => ({ side: t.side, bytes: Buffer.from(t.hex, 'hex') })));
  const nats: Turn[] = [
    { side: 'server', bytes: text('INFO {"server_id":"N1","version":"2.15.3","headers":true,"max_payload":1048576}\r\n') },
    { side: 'client', bytes: text('CONNECT {"verbose":true,"user":"app","pass":"sekret","headers":true}\r\nPING\r\n') },
    { side: 'server', bytes: text('+OK\r\nPONG\r\n') },
    {
      side: 'client',
      bytes: text(
        'SUB orders 1\r\nPUB orders 5\r\nhello\r\nHPUB orders _INBOX.1 82 84\r\nNATS/1.0\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\nhi\r\n',
      ),
    },
    {
      side: 'server',
      bytes: text(
        "+OK\r\n+OK\r\nMSG orders 1 5\r\nhello\r\nHMSG orders 1 _INBOX.1 82 84\r\nNATS/1.0\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\nhi\r\n-ERR 'Unknown Protocol Operation'\r\n",
      ),
    },
  ];
  const be16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  // MQTT 5: CONNECT with a password and Authentication Data, publishes at each QoS (trace context in user properties, a topic alias), a subscription, its delivery.
  const mqtt5: Turn[] = [
    {
      side: 'client',
      bytes: mqttPacket(
        0x10,
        mqttString('MQTT'),
        Buffer.from([5, 0xc2]),
        be16(60),
        mqttProperties(Buffer.from([0x15]), mqttString('SCRAM'), Buffer.from([0x16]), mqttString('sekret-auth')),
        mqttString('orders-1'),
        mqttString('app'),
        mqttString('sekret'),
      ),
    },
    { side: 'server', bytes: mqttPacket(0x20, Buffer.from([0, 0]), mqttProperties(Buffer.from([0x22]), be16(10))) },
    {
      side: 'client',
      bytes: Buffer.concat([
        mqttPacket(0x82, be16(1), mqttProperties(), mqttString('orders/#'), Buffer.from([1])),
        mqttPacket(0x30, mqttString('orders/new'), mqttProperties(mqttUserProperty('traceparent', traceparent)), Buffer.from('{"id":1}')),
        mqttPacket(0x32, mqttString('orders/new'), be16(2), mqttProperties(Buffer.from([0x23]), be16(1)), Buffer.from('two')),
        mqttPacket(0x34, mqttString(''), be16(3), mqttProperties(Buffer.from([0x23]), be16(1)), Buffer.from('three')),
        mqttPacket(0xc0),
      ]),
    },
    {
      side: 'server',
      bytes: Buffer.concat([
        mqttPacket(0x90, be16(1), mqttProperties(), Buffer.from([1])),
        mqttPacket(0x40, be16(2)),
        mqttPacket(0x50, be16(3), Buffer.from([0x10]), mqttProperties()),
        mqttPacket(0x32, mqttString('orders/new'), be16(7), mqttProperties(mqttUserProperty('traceparent', traceparent), mqttUserProperty('k', 'v')), Buffer.from('{"id":1}')),
        mqttPacket(0xd0),
      ]),
    },
    { side: 'client', bytes: Buffer.concat([mqttPacket(0x62, be16(3)), mqttPacket(0x40, be16(7))]) },
    { side: 'server', bytes: mqttPacket(0x70, be16(3), Buffer.from([0x80]), mqttProperties(Buffer.from([0x1f]), mqttString('quota exceeded'))) },
    { side: 'client', bytes: Buffer.concat([mqttPacket(0xa2, be16(4), mqttProperties(), mqttString('orders/#')), mqttPacket(0xe0, Buffer.from([0]), mqttProperties())]) },
    { side: 'server', bytes: mqttPacket(0xb0, be16(4), mqttProperties(), Buffer.from([0])) },
  ];
  // MQTT 3.1.1 as mosquitto_pub sends it: CONNECT with a user and password, one QoS 1 publish, DISCONNECT.
  const mqtt311: Turn[] = [
    { side: 'client', bytes: mqttPacket(0x10, mqttString('MQTT'), Buffer.from([4, 0xc2]), be16(60), mqttString('pub-1'), mqttString('app'), mqttString('sekret')) },
    { side: 'server', bytes: mqttPacket(0x20, Buffer.from([0, 0])) },
    { side: 'client', bytes: mqttPacket(0x32, mqttString('sensors/t'), be16(1), Buffer.from('21.5')) },
    { side: 'server', bytes: mqttPacket(0x40, be16(1)) },
    { side: 'client', bytes: mqttPacket(0xe0) },
  ];
  const kstr = kafkaString;
  const request = (api: number, version: number, correlation: number, ...body: Buffer[]) => kafkaFrame(i16(api), i16(version), i32(correlation), kstr('seed'), ...body);
  const response = (correlation: number, ...body: Buffer[]) => kafkaFrame(i32(correlation), ...body);
  const batch = kafkaBatch([{ value: 'order 1', headers: [['traceparent', traceparent]] }, { value: 'order 2' }], true);
  // SASL PLAIN (handshake v1, then SaslAuthenticate), a Produce of a gzip batch whose first record carries trace context, and one with acks=0.
  const kafkaSasl: Turn[] = [
    { side: 'client', bytes: request(18, 0, 1) },
    { side: 'server', bytes: response(1, i16(0), i32(1), i16(0), i16(0), i16(9)) },
    { side: 'client', bytes: request(17, 1, 2, kstr('PLAIN')) },
    { side: 'server', bytes: response(2, i16(0), i32(1), kstr('PLAIN')) },
    { side: 'client', bytes: request(36, 1, 3, i32(12), Buffer.from('\0app\0sekret')) },
    { side: 'server', bytes: response(3, i16(0), i16(-1), i32(0), Buffer.alloc(8)) },
    {
      side: 'client',
      bytes: Buffer.concat([
        request(0, 3, 4, i16(-1), i16(1), i32(1000), i32(1), kstr('orders'), i32(1), i32(0), i32(batch.length), batch),
        request(0, 3, 5, i16(-1), i16(0), i32(1000), i32(1), kstr('audit'), i32(1), i32(2), i32(batch.length), batch),
      ]),
    },
    { side: 'server', bytes: response(4, i32(1), kstr('orders'), i32(1), i32(0), i16(0), Buffer.alloc(8), Buffer.alloc(8), i32(0)) },
  ];
  // kcat (librdkafka 2.0) and the Java client 4.1 (console producer and consumer, a consumer group) against a Kafka 4.1 broker:
  // the first turns of each client connection of a live recording, cut at 4000 bytes a turn.
  const kafkaClients: Turn[][] = fs
    .readFileSync(path.join(ROOT, 'test/fixtures/kafka-clients.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as Array<{ side: 'client' | 'server'; hex: string }>).map((t) => ({ side: t.side, bytes: Buffer.from(t.hex, 'hex') })));
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const tableWithTypes = amqpTable(
    ['traceparent', Buffer.concat([Buffer.from('S'), amqpLongstr(traceparent)])],
    ['retries', Buffer.concat([Buffer.from('I'), i32(3)])],
    ['flag', Buffer.from('t\x01', 'latin1')],
    ['nested', Buffer.concat([Buffer.from('F'), amqpTable(['x', Buffer.concat([Buffer.from('l'), u64(7)])])])],
    ['list', Buffer.concat([Buffer.from('A'), amqpLongstr(Buffer.concat([Buffer.from('s'), i16(1), Buffer.from('V')]))])],
  );
  // The protocol header, a PLAIN login, confirm mode, a publish whose body comes in two frames, a multiple ack, a get answered with content, a heartbeat.
  const amqp: Turn[] = [
    { side: 'client', bytes: Buffer.from('AMQP\x00\x00\x09\x01', 'latin1') },
    { side: 'server', bytes: amqpFrame(1, 0, amqpMethod(10, 10, Buffer.from([0, 9]), amqpTable(), amqpLongstr('PLAIN AMQPLAIN'), amqpLongstr('en_US'))) },
    {
      side: 'client',
      bytes: amqpFrame(
        1,
        0,
        amqpMethod(
          10,
          11,
          amqpTable(['product', Buffer.concat([Buffer.from('S'), amqpLongstr('seed')])]),
          amqpShortstr('PLAIN'),
          amqpLongstr('\0app\0sekret'),
          amqpShortstr('en_US'),
        ),
      ),
    },
    { side: 'server', bytes: amqpFrame(1, 0, amqpMethod(10, 30, i16(2047), i32(131072), i16(60))) },
    {
      side: 'client',
      bytes: Buffer.concat([
        amqpFrame(1, 0, amqpMethod(10, 31, i16(2047), i32(131072), i16(60))),
        amqpFrame(1, 0, amqpMethod(10, 40, amqpShortstr('/'), amqpShortstr(''), Buffer.from([0]))),
        amqpFrame(1, 1, amqpMethod(20, 10, amqpShortstr(''))),
        amqpFrame(1, 1, amqpMethod(85, 10, Buffer.from([0]))),
        amqpFrame(1, 1, amqpMethod(60, 40, i16(0), amqpShortstr('orders'), amqpShortstr('new'), Buffer.from([0]))),
        amqpFrame(2, 1, amqpContentHeader(9, tableWithTypes)),
        amqpFrame(3, 1, Buffer.from('{"id":')),
        amqpFrame(3, 1, Buffer.from('42}')),
        amqpFrame(1, 1, amqpMethod(60, 40, i16(0), amqpShortstr(''), amqpShortstr('tasks'), Buffer.from([0]))),
        amqpFrame(2, 1, amqpContentHeader(0, amqpTable())),
      ]),
    },
    {
      side: 'server',
      bytes: Buffer.concat([
        amqpFrame(1, 0, amqpMethod(10, 41, amqpShortstr(''))),
        amqpFrame(1, 1, amqpMethod(20, 11, amqpLongstr(''))),
        amqpFrame(1, 1, amqpMethod(85, 11)),
        amqpFrame(1, 1, amqpMethod(60, 80, u64(2), Buffer.from([1]))),
        amqpFrame(8, 0),
      ]),
    },
    { side: 'client', bytes: amqpFrame(1, 1, amqpMethod(60, 70, i16(0), amqpShortstr('tasks'), Buffer.from([0]))) },
    {
      side: 'server',
      bytes: Buffer.concat([
        amqpFrame(1, 1, amqpMethod(60, 71, u64(1), Buffer.from([0]), amqpShortstr(''), amqpShortstr('tasks'), i32(0))),
        amqpFrame(2, 1, amqpContentHeader(2, amqpTable(['traceparent', Buffer.concat([Buffer.from('S'), amqpLongstr(traceparent)])]))),
        amqpFrame(3, 1, Buffer.from('ok')),
        amqpFrame(1, 1, amqpMethod(20, 40, i16(406), amqpShortstr('PRECONDITION_FAILED'), i16(50), i16(10))),
      ]),
    },
  ];
  // pika 1.4 publishing in confirm mode and amqplib 2.3 consuming, against RabbitMQ 3.10: the first turns of a live recording.
  const amqpClients: Turn[][] = fs
    .readFileSync(path.join(ROOT, 'test/fixtures/amqp-clients.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as Array<{ side: 'client' | 'server'; hex: string }>).map((t) => ({ side: t.side, bytes: Buffer.from(t.hex, 'hex') })));
  const http: Turn[] = [
    {
      side: 'client',
      bytes: Buffer.from(
        'POST /upload?token=abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer t\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
      ),
    },
    { side: 'server', bytes: Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: s=1\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n') },
  ];
  // mysql-connector-python 9.1.0 sending query attributes (test/mysql-query-attributes.test.ts recorded it).
  const attributes: Turn[] = fs
    .readFileSync(path.join(ROOT, 'test/fixtures/mysql-query-attributes.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { side: 'client' | 'server'; hex: string })
    .map((t) => ({ side: t.side, bytes: Buffer.from(t.hex, 'hex') }));
  return new Map([
    ['postgres', [extended]],
    ['mysql', [prepared, compressed, attributes]],
    ['redis', [redis]],
    ['memcached', [memcachedText, memcachedBinary, ...memcslap]],
    ['nats', [nats]],
    ['mqtt', [mqtt5, mqtt311]],
    ['kafka', [kafkaSasl, ...kafkaClients]],
    ['amqp', [amqp, ...amqpClients]],
    ['http1', [http]],
  ]);
}

/** Every seed, by protocol: the captures' conversations and the synthetic ones. */
export function allSeeds(): Map<string, Turn[][]> {
  const all = seedsByProtocol();
  for (const [protocol, list] of syntheticSeeds()) all.set(protocol, [...(all.get(protocol) ?? []), ...list]);
  return all;
}
