import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MqttParser } from './parser';
import { mqttMasker } from './masker';
import { detectMqtt } from './detect';
import type { MqttMessage } from './messages';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';
import { mqttPacket, mqttProperties, mqttString, mqttUserProperty, syntheticSeeds } from '../../../test/fuzz/seeds';
import { services } from '../../../test/services';

const [v5, v311] = syntheticSeeds().get('mqtt')!;
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new MqttParser(), turns, cuts) as MqttMessage[];
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const be16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

describe('MqttParser', () => {
  it('reads MQTT 5 packets: QoS flows, topic aliases, user properties with trace context, reason codes', () => {
    const ms = parse(v5!);
    expect(ms.map((m) => [m.kind, m.packet, m.topic ?? m.topics?.join(','), m.qos, m.packetId])).toEqual([
      ['request', 'CONNECT', undefined, undefined, undefined],
      ['response', 'CONNACK', undefined, undefined, undefined],
      ['request', 'SUBSCRIBE', 'orders/#', undefined, 1],
      ['request', 'PUBLISH', 'orders/new', 0, undefined],
      ['request', 'PUBLISH', 'orders/new', 1, 2],
      ['request', 'PUBLISH', 'orders/new', 2, 3], // sent with an empty topic and alias 1
      ['request', 'PINGREQ', undefined, undefined, undefined],
      ['response', 'SUBACK', undefined, undefined, 1],
      ['response', 'PUBACK', undefined, undefined, 2],
      ['response', 'PUBREC', undefined, undefined, 3],
      ['response', 'PUBLISH', 'orders/new', 1, 7],
      ['response', 'PINGRESP', undefined, undefined, undefined],
      ['request', 'PUBREL', undefined, undefined, 3],
      ['request', 'PUBACK', undefined, undefined, 7],
      ['response', 'PUBCOMP', undefined, undefined, 3],
      ['request', 'UNSUBSCRIBE', 'orders/#', undefined, 4],
      ['request', 'DISCONNECT', undefined, undefined, undefined],
      ['response', 'UNSUBACK', undefined, undefined, 4],
    ]);
    expect(ms.every((m) => m.version === 5 && m.error === undefined)).toBe(true);
    expect(ms.filter((m) => m.traceparent).map((m) => [m.kind, m.userProperties, m.bytes])).toEqual([
      ['request', 1, 8],
      ['response', 2, 8],
    ]);
    expect(ms.find((m) => m.packet === 'PUBCOMP')).toMatchObject({ reasonCode: 0x80, reasonString: 'quota exceeded' });
    expect(ms[0]).toMatchObject({ clientId: 'orders-1', username: true, password: true, keepAlive: 60 });
    expect(JSON.stringify(ms, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('sekret');
  });

  it('reads MQTT 3.1.1 (no properties) by the level its CONNECT named', () => {
    expect(parse(v311!).map((m) => [m.packet, m.version, m.topic, m.bytes, m.packetId])).toEqual([
      ['CONNECT', 4, undefined, undefined, undefined],
      ['CONNACK', 4, undefined, undefined, undefined],
      ['PUBLISH', 4, 'sensors/t', 4, 1],
      ['PUBACK', 4, undefined, undefined, 1],
      ['DISCONNECT', 4, undefined, undefined, undefined],
    ]);
  });

  it('gives the same messages however the bytes are cut', () => {
    for (const conversation of [v5!, v311!]) {
      const whole = JSON.stringify(shape(parse(conversation)));
      fc.assert(
        fc.property(fc.array(fc.nat(400), { maxLength: 30 }), (cuts) => {
          expect(JSON.stringify(shape(parse(conversation, cuts)))).toBe(whole);
        }),
      );
    }
  });

  it('counts a large payload without holding it, frames over bytes not copied, and bounds a Remaining Length of 256 MB', () => {
    const big: Turn[] = [
      { side: 'client', bytes: mqttPacket(0x30, mqttString('bulk'), Buffer.alloc(300_000, 0x41)) },
      { side: 'client', bytes: mqttPacket(0x32, mqttString('next'), be16(9), Buffer.from('x')) },
    ];
    expect(parse(big, [1, 7, 70_000]).map((m) => [m.packet, m.topic, m.bytes, m.lostBytes])).toEqual([
      ['PUBLISH', 'bulk', 300_000, undefined],
      ['PUBLISH', 'next', 1, undefined],
    ]);
    expect(runCopied(() => new MqttParser(), big, 4096).map((m) => [(m as MqttMessage).packet, (m as MqttMessage).topic, m.lostBytes])).toEqual([
      ['PUBLISH', 'bulk', big[0]!.bytes.length - 4096],
      ['PUBLISH', 'next', undefined],
    ]);
    // 0xff 0xff 0xff 0x7f: 268,435,455 bytes announced; the parser holds at most its head limit and waits.
    const parser = new MqttParser();
    const out: MqttMessage[] = [];
    parser.onMessage = (m) => out.push(m);
    parser.feed('client', { data: Buffer.concat([Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), mqttString('t'), Buffer.alloc(200_000)]), ts: 1n, tid: 1 });
    expect(out.map((m) => [m.packet, m.topic, m.bytes])).toEqual([]);
    parser.gap('client', 268_435_455 - 200_003, 2n);
    expect(out.map((m) => [m.packet, m.topic, m.bytes, m.lostBytes])).toEqual([['PUBLISH', 't', 268_435_455 - 3, 268_435_455 - 200_003]]);
  });

  it('reports a broken fixed header and a packet whose fields overrun it with their codes, and reads on', () => {
    const turns: Turn[] = [
      { side: 'client', bytes: Buffer.from([0x00, 0x00]) },
      { side: 'client', bytes: mqttPacket(0x82, be16(1)) }, // SUBSCRIBE with no filter: fine
      { side: 'client', bytes: mqttPacket(0x30, be16(50), Buffer.from('short')) },
      { side: 'client', bytes: mqttPacket(0xc0) },
    ];
    expect(parse(turns).map((m) => [m.packet, m.parseErrorCode])).toEqual([
      ['Unparsable', 'MQTT_INVALID_HEADER'],
      ['SUBSCRIBE', undefined],
      ['PUBLISH', 'MQTT_MALFORMED_PACKET'],
      ['PINGREQ', undefined],
    ]);
  });

  it('is detected from CONNECT (3.1, 3.1.1, 5), and mid-connection from whole packets naming a topic', () => {
    expect(detectMqtt(v5![0]!.bytes)).toEqual({ sender: 'client', connectionStart: true });
    expect(detectMqtt(v311![0]!.bytes.subarray(0, 5))).toBe('need-more');
    expect(detectMqtt(mqttPacket(0x10, mqttString('MQIsdp'), Buffer.from([3, 0]), be16(10), mqttString('c')))).toEqual({ sender: 'client', connectionStart: true });
    expect(detectMqtt(v311![2]!.bytes)).toEqual({ sender: undefined, connectionStart: false });
    expect(detectMqtt(mqttPacket(0x40, be16(1)))).toBeUndefined(); // an acknowledgement alone is four bytes anything could send
    expect(detectMqtt(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });

  it('masks the password and MQTT 5 Authentication Data in the bytes however they are cut, and nothing else', () => {
    for (const conversation of [v5!, v311!]) {
      const client = Buffer.concat(conversation.filter((t) => t.side === 'client').map((t) => t.bytes));
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: client.length - 1 }), { maxLength: 8 }), (cuts) => {
          const bytes = Buffer.from(client);
          const masker = mqttMasker();
          let prev = 0;
          for (const at of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
            masker.mask(bytes.subarray(prev, at));
            prev = at;
          }
          const text = bytes.toString('latin1');
          expect(text).not.toContain('sekret');
          expect(text).toContain('app'); // the user name stays
          expect(Buffer.compare(bytes.subarray(60), client.subarray(60)) === 0 || conversation === v5).toBe(true);
          // Only the secrets' bytes changed.
          let changed = 0;
          for (let i = 0; i < bytes.length; i++) if (bytes[i] !== client[i]) changed++;
          expect(changed).toBe(conversation === v5 ? 'sekret-auth'.length + 'sekret'.length : 'sekret'.length);
        }),
      );
    }
  });

  it('links a delivery without context to the publish of the same message (topic, size, first bytes), through a topic alias too', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [publisher] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 1883 });
    const [subscriber] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 1883 });
    const connect = (id: string, level: number) =>
      mqttPacket(0x10, mqttString('MQTT'), Buffer.from([level, 2]), be16(60), ...(level === 5 ? [mqttProperties()] : []), mqttString(id));
    s.send(publisher, connect('pub', 5), { at: 1000n });
    s.send(subscriber, connect('sub', 4), { at: 1000n });
    // MQTT 5: the topic named once with alias 1, then by the alias alone; the 3.1.1 subscriber gets the names.
    s.send(publisher, mqttPacket(0x30, mqttString('orders/new'), mqttProperties(Buffer.from([0x23]), be16(1)), Buffer.from('order 1')), { at: 2000n });
    s.send(publisher, mqttPacket(0x30, mqttString(''), mqttProperties(Buffer.from([0x23]), be16(1)), Buffer.from('order 2')), { at: 2100n });
    s.recv(subscriber, mqttPacket(0x30, mqttString('orders/new'), Buffer.from('order 2')), { at: 3000n });
    s.recv(subscriber, mqttPacket(0x30, mqttString('orders/old'), Buffer.from('order 1')), { at: 3100n });
    const spans = run.spans();
    const [, second] = spans.filter((x) => x.kind === 'producer').sort((x, y) => Number(x.startNs - y.startNs));
    const got = spans.filter((x) => x.kind === 'consumer').sort((x, y) => Number(x.startNs - y.startNs));
    expect(got.map((x) => [x.parentSpanId, x.links])).toEqual([
      ['', [{ traceId: second!.traceId, spanId: second!.spanId, traceState: '' }]],
      ['', undefined],
    ]);
  });

  it('makes a QoS 1 publish a PRODUCER span ended by its PUBACK, and the delivery in another process its child by the context both carried', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [publisher] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 1883 });
    const [subscriber] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 1883 });
    const connect = (id: string) => mqttPacket(0x10, mqttString('MQTT'), Buffer.from([5, 2]), be16(60), mqttProperties(), mqttString(id));
    const props = mqttProperties(mqttUserProperty('traceparent', TRACEPARENT));
    s.send(publisher, connect('pub'), { at: 1000n });
    s.send(subscriber, connect('sub'), { at: 1000n });
    s.send(publisher, mqttPacket(0x32, mqttString('orders/new'), be16(5), props, Buffer.from('hi')), { at: 2000n });
    s.recv(subscriber, mqttPacket(0x30, mqttString('orders/new'), props, Buffer.from('hi')), { at: 3000n });
    s.recv(publisher, mqttPacket(0x40, be16(5)), { at: 4000n });
    const spans = run.spans();
    const producer = spans.find((x) => x.kind === 'producer')!;
    const consumer = spans.find((x) => x.kind === 'consumer')!;
    expect([producer.name, producer.parentSpanId, producer.endNs - producer.startNs, producer.attributes['messaging.mqtt.qos']]).toEqual([
      'publish orders/new',
      '00f067aa0ba902b7',
      2000n,
      1,
    ]);
    expect([consumer.name, consumer.service, consumer.traceId, consumer.parentSpanId, consumer.attributes['loupe.context']]).toEqual([
      'process orders/new',
      'billing',
      producer.traceId,
      producer.spanId,
      'message',
    ]);
  });
});
