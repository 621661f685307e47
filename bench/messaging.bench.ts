/**
 * Messaging protocol decoding: Loupe's Kafka, MQTT and AMQP parsers against
 * the decoders of the client libraries the tests drive, on the same bytes,
 * in one run (issue 22's goal: at least 2x each).
 *
 * The work is not identical and the table says so: the peers are client
 * libraries and materialise what they decode (kafkajs builds a message
 * object per record, with its headers and value; mqtt-packet a packet object
 * with its properties and payload; amqplib an object per frame with decoded
 * fields), while Loupe frames every message and keeps what a span needs —
 * topic, counts, trace context — never payloads. Each candidate must see
 * every message.
 */
import { KafkaParser } from '../src/parsers/kafka/parser';
import { MqttParser } from '../src/parsers/mqtt/parser';
import { AmqpParser } from '../src/parsers/amqp/parser';
import type { KafkaMessage } from '../src/parsers/kafka/messages';
import type { MqttMessage } from '../src/parsers/mqtt/messages';
import type { AmqpMessage } from '../src/parsers/amqp/messages';
import {
  amqpContentHeader,
  amqpFrame,
  amqpLongstr,
  amqpMethod,
  amqpShortstr,
  amqpTable,
  int16 as i16,
  int32 as i32,
  kafkaBatch,
  kafkaFrame,
  kafkaString as kstr,
  mqttPacket,
  mqttProperties,
  mqttString,
  mqttUserProperty,
} from '../test/fuzz/seeds';
import { compare, compareAsync, report } from './harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const kafkajsFetchV4 = require('kafkajs/src/protocol/requests/fetch/v4/response') as {
  decode(b: Buffer): Promise<unknown>;
  parse(d: unknown): Promise<{ responses: Array<{ partitions: Array<{ messages: unknown[] }> }> }>;
};
const mqttPacketLib = require('mqtt-packet') as { parser(o: { protocolVersion: number }): { on(e: 'packet', cb: (p: unknown) => void): void; parse(b: Buffer): number } };
// amqplib exports only its API: its frame module by path, as mysql2's packet parser in sql.bench.ts.
const amqplibFrame = require(require('node:path').join(require.resolve('amqplib'), '../lib/frame.js')) as {
  parseFrame(b: Buffer, max: number): false | { rest: Buffer };
  decodeFrame(f: unknown): unknown;
};
/* eslint-enable @typescript-eslint/no-require-imports */

const CHUNK = 16 * 1024;
const chunksOf = (b: Buffer) => Array.from({ length: Math.ceil(b.length / CHUNK) }, (_, i) => b.subarray(i * CHUNK, (i + 1) * CHUNK));
const traceparent = (i: number) => `00-4bf92f3577b34da6a3ce929d0e0e4736-${i.toString(16).padStart(16, '0')}-01`;

// Kafka: 400 Fetch v4 responses, each a batch of 20 records of ~200 bytes with a traceparent header (a consumer's poll loop).
const FETCHES = 400;
const RECORDS = 20;
const batch = kafkaBatch(
  Array.from({ length: RECORDS }, (_, i) => ({
    value: JSON.stringify({ order: i, customer: `c-${i}`, items: [1, 2, 3], note: 'x'.repeat(120) }),
    headers: [['traceparent', traceparent(i + 1)]],
  })),
);
const fetchBody = Buffer.concat([i32(0), i32(1), kstr('orders'), i32(1), i32(0), i16(0), Buffer.alloc(8), Buffer.alloc(8), i32(-1), i32(batch.length), batch]);
const fetchRequest = (c: number) =>
  kafkaFrame(i16(1), i16(4), i32(c), kstr('app'), i32(-1), i32(500), i32(1), i32(1 << 20), Buffer.from([0]), i32(1), kstr('orders'), i32(1), i32(0), Buffer.alloc(8), i32(1 << 20));
const kafkaClient = Buffer.concat(Array.from({ length: FETCHES }, (_, c) => fetchRequest(c)));
const kafkaServer = Buffer.concat(Array.from({ length: FETCHES }, (_, c) => kafkaFrame(i32(c), fetchBody)));

function loupeKafka(): number {
  const p = new KafkaParser();
  let records = 0;
  p.onMessage = (m: KafkaMessage) => {
    if (m.kind === 'response') records += m.records ?? 0;
  };
  // A poll loop: each request, then its response.
  const request = kafkaClient.length / FETCHES;
  const response = kafkaServer.length / FETCHES;
  for (let c = 0; c < FETCHES; c++) {
    p.feed('client', { data: kafkaClient.subarray(c * request, (c + 1) * request), ts: 0n, tid: 0 });
    p.feed('server', { data: kafkaServer.subarray(c * response, (c + 1) * response), ts: 0n, tid: 0 });
  }
  return records;
}

async function kafkajs(): Promise<number> {
  let records = 0;
  for (let c = 0; c < FETCHES; c++) {
    const decoded = await kafkajsFetchV4.decode(fetchBody);
    const parsed = await kafkajsFetchV4.parse(decoded);
    for (const r of parsed.responses) for (const p of r.partitions) records += p.messages.length;
  }
  return records;
}

// MQTT 5: a CONNECT, then 20,000 QoS 1 PUBLISHes of ~150-byte payloads with a traceparent user property, as a broker delivers them.
const PUBLISHES = 20_000;
const connect = mqttPacket(0x10, mqttString('MQTT'), Buffer.from([5, 2, 0, 60]), mqttProperties(), mqttString('bench'));
const publishes = Buffer.concat(
  Array.from({ length: PUBLISHES }, (_, i) =>
    mqttPacket(
      0x32,
      mqttString('sensors/site-1/temperature'),
      i16((i % 65535) + 1),
      mqttProperties(mqttUserProperty('traceparent', traceparent(i + 1))),
      Buffer.from(JSON.stringify({ t: 21.5, i, pad: 'y'.repeat(100) })),
    ),
  ),
);
const mqttChunks = chunksOf(publishes);

function loupeMqtt(): number {
  const p = new MqttParser();
  let n = 0;
  p.onMessage = (m: MqttMessage) => {
    if (m.packet === 'PUBLISH') n++;
  };
  p.feed('client', { data: connect, ts: 0n, tid: 0 });
  for (const c of mqttChunks) p.feed('server', { data: c, ts: 0n, tid: 0 });
  return n;
}

function mqttPacketPeer(): number {
  const parser = mqttPacketLib.parser({ protocolVersion: 5 });
  let n = 0;
  parser.on('packet', () => n++);
  for (const c of mqttChunks) parser.parse(c);
  return n;
}

// AMQP 0-9-1: 10,000 basic.deliver with a content header (a headers table carrying traceparent) and a ~150-byte body, as RabbitMQ sends them.
const DELIVERIES = 10_000;
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const deliveries = Buffer.concat(
  Array.from({ length: DELIVERIES }, (_, i) => {
    const body = Buffer.from(JSON.stringify({ order: i, pad: 'z'.repeat(120) }));
    return Buffer.concat([
      amqpFrame(1, 1, amqpMethod(60, 60, amqpShortstr('amq.ctag-1'), u64(i + 1), Buffer.from([0]), amqpShortstr('orders'), amqpShortstr('new'))),
      amqpFrame(2, 1, amqpContentHeader(body.length, amqpTable(['traceparent', Buffer.concat([Buffer.from('S'), amqpLongstr(traceparent(i + 1))])]))),
      amqpFrame(3, 1, body),
    ]);
  }),
);
const amqpChunks = chunksOf(deliveries);

function loupeAmqp(): number {
  const p = new AmqpParser();
  let n = 0;
  p.onMessage = (m: AmqpMessage) => {
    if (m.method === 'basic.deliver') n++;
  };
  for (const c of amqpChunks) p.feed('server', { data: c, ts: 0n, tid: 0 });
  return n;
}

function amqplibPeer(): number {
  // As amqplib's connection reads a socket: join what is left with the next chunk, parse and decode frames.
  let n = 0;
  let rest: Buffer = Buffer.alloc(0);
  for (const c of amqpChunks) {
    let buf: Buffer = rest.length ? Buffer.concat([rest, c]) : c;
    for (;;) {
      const frame = amqplibFrame.parseFrame(buf, 0);
      if (!frame) break;
      const decoded = amqplibFrame.decodeFrame(frame) as { id?: number };
      if (decoded.id === 0x003c003c) n++;
      buf = frame.rest;
    }
    rest = buf;
  }
  return n;
}

async function main(): Promise<void> {
  const kafka = await compareAsync(kafkaServer.length, [
    { name: 'Loupe KafkaParser', run: loupeKafka },
    { name: 'kafkajs 2.2.4 Fetch v4 decode + parse', run: kafkajs },
  ]);
  if (kafka.some((r) => r.messages !== FETCHES * RECORDS)) throw new Error(`Kafka: every candidate must see ${FETCHES * RECORDS} records: ${kafka.map((r) => r.messages)}`);
  report(
    `Kafka: ${FETCHES} Fetch v4 responses of ${RECORDS} records with a traceparent header (${(kafkaServer.length / 1e6).toFixed(1)} MB; records/s in the messages column)`,
    kafka,
  );
  const mqtt = compare(publishes.length, [
    { name: 'Loupe MqttParser', run: loupeMqtt },
    { name: 'mqtt-packet 9 parser (protocolVersion 5)', run: mqttPacketPeer },
  ]);
  if (mqtt.some((r) => r.messages !== PUBLISHES)) throw new Error(`MQTT: every candidate must see ${PUBLISHES} publishes: ${mqtt.map((r) => r.messages)}`);
  report(`MQTT 5: ${PUBLISHES} QoS 1 PUBLISHes with a traceparent user property (${(publishes.length / 1e6).toFixed(1)} MB)`, mqtt);
  const amqp = compare(deliveries.length, [
    { name: 'Loupe AmqpParser', run: loupeAmqp },
    { name: 'amqplib 2.3.1 parseFrame + decodeFrame', run: amqplibPeer },
  ]);
  if (amqp.some((r) => r.messages !== DELIVERIES)) throw new Error(`AMQP: every candidate must see ${DELIVERIES} deliveries: ${amqp.map((r) => r.messages)}`);
  report(`AMQP 0-9-1: ${DELIVERIES} basic.deliver with a traceparent header (${(deliveries.length / 1e6).toFixed(1)} MB; messages/s counts deliveries)`, amqp);
}

void main();
