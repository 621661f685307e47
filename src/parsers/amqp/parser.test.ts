import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AmqpParser } from './parser';
import { amqpMasker } from './masker';
import { detectAmqp } from './detect';
import type { AmqpMessage } from './messages';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';
import { amqpContentHeader, amqpFrame, amqpMethod, amqpShortstr, amqpTable, amqpLongstr, syntheticSeeds } from '../../../test/fuzz/seeds';
import { services } from '../../../test/services';

const [seed, ...clients] = syntheticSeeds().get('amqp')!;
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new AmqpParser(), turns, cuts) as AmqpMessage[];
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const publish = (channel: number, exchange: string, key: string, body: string, headers = amqpTable()) =>
  Buffer.concat([
    amqpFrame(1, channel, amqpMethod(60, 40, u16(0), amqpShortstr(exchange), amqpShortstr(key), Buffer.from([0]))),
    amqpFrame(2, channel, amqpContentHeader(body.length, headers)),
    amqpFrame(3, channel, Buffer.from(body)),
  ]);
const deliver = (channel: number, tag: number, exchange: string, key: string, body: string, headers = amqpTable()) =>
  Buffer.concat([
    amqpFrame(1, channel, amqpMethod(60, 60, amqpShortstr('ctag'), u64(tag), Buffer.from([0]), amqpShortstr(exchange), amqpShortstr(key))),
    amqpFrame(2, channel, amqpContentHeader(body.length, headers)),
    amqpFrame(3, channel, Buffer.from(body)),
  ]);
const traced = amqpTable(['traceparent', Buffer.concat([Buffer.from('S'), amqpLongstr(TRACEPARENT)])]);

describe('AmqpParser', () => {
  it('reads methods, content headers with their headers table (every field type), bodies over several frames, and expands a multiple ack per publish it confirms', () => {
    const ms = parse(seed!);
    expect(ms.map((m) => [m.kind, m.method, m.channel])).toEqual([
      ['request', 'protocol-header', undefined],
      ['response', 'connection.start', 0],
      ['request', 'connection.start-ok', 0],
      ['response', 'connection.tune', 0],
      ['request', 'connection.tune-ok', 0],
      ['request', 'connection.open', 0],
      ['request', 'channel.open', 1],
      ['request', 'confirm.select', 1],
      ['request', 'basic.publish', 1],
      ['request', 'basic.publish', 1],
      ['response', 'connection.open-ok', 0],
      ['response', 'channel.open-ok', 1],
      ['response', 'confirm.select-ok', 1],
      ['response', 'basic.ack', 1],
      ['response', 'basic.ack', 1],
      ['response', 'heartbeat', undefined],
      ['request', 'basic.get', 1],
      ['response', 'basic.get-ok', 1],
      ['response', 'channel.close', 1],
    ]);
    expect(ms.filter((m) => m.method === 'basic.publish').map((m) => [m.exchange, m.routingKey, m.deliveryTag, m.bodySize, m.headers, m.traceparent])).toEqual([
      ['orders', 'new', 1, 9, 5, TRACEPARENT],
      ['', 'tasks', 2, 0, 0, undefined],
    ]);
    expect(ms.filter((m) => m.method === 'basic.ack').map((m) => [m.deliveryTag, m.multiple])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(ms.find((m) => m.method === 'basic.get-ok')).toMatchObject({ routingKey: 'tasks', bodySize: 2, traceparent: TRACEPARENT });
    expect(ms.find((m) => m.method === 'channel.close')).toMatchObject({ replyCode: 406, replyText: 'PRECONDITION_FAILED' });
    expect(ms.every((m) => m.error === undefined)).toBe(true);
    expect(JSON.stringify(ms, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('sekret');
  });

  it("reads pika's and amqplib's traffic to RabbitMQ 3.10 without an error: confirms paired to publishes, deliveries with their trace context", () => {
    const all = clients.flatMap((c) => parse(c));
    expect(all.filter((m) => m.error !== undefined)).toEqual([]);
    const publishes = all.filter((m) => m.method === 'basic.publish');
    const acks = all.filter((m) => m.method === 'basic.ack' && m.kind === 'response');
    const deliveries = all.filter((m) => m.method === 'basic.deliver');
    expect(publishes.length).toBeGreaterThan(0);
    expect(publishes.map((m) => m.deliveryTag)).toEqual(publishes.map((_, i) => i + 1));
    expect(acks.map((m) => m.deliveryTag)).toEqual(publishes.slice(0, acks.length).map((m) => m.deliveryTag));
    expect(deliveries.length).toBeGreaterThan(0);
    expect(deliveries.every((m) => m.traceparent?.startsWith('00-4bf92f3577b34da6a3ce929d0e0e4736-') && m.routingKey === 'orders')).toBe(true);
  });

  it('gives the same messages however the bytes are cut', () => {
    for (const conversation of [seed!, ...clients]) {
      const whole = JSON.stringify(shape(parse(conversation)));
      fc.assert(
        fc.property(fc.array(fc.nat(4000), { maxLength: 30 }), (cuts) => {
          expect(JSON.stringify(shape(parse(conversation, cuts)))).toBe(whole);
        }),
        { numRuns: 40 },
      );
    }
  });

  it('numbers publishes only on a channel in confirm mode, and forgets the mode when the channel is closed and its number reused', () => {
    const ms = parse([
      {
        side: 'client',
        bytes: Buffer.concat([amqpFrame(1, 1, amqpMethod(20, 10, amqpShortstr(''))), amqpFrame(1, 1, amqpMethod(85, 10, Buffer.from([0]))), publish(1, 'x', 'k', 'a')]),
      },
      { side: 'server', bytes: amqpFrame(1, 1, amqpMethod(20, 40, u16(406), amqpShortstr('PRECONDITION_FAILED'), u16(60), u16(40))) },
      {
        side: 'client',
        bytes: Buffer.concat([amqpFrame(1, 1, amqpMethod(20, 41)), amqpFrame(1, 1, amqpMethod(20, 10, amqpShortstr(''))), publish(1, 'x', 'k', 'b'), publish(2, 'x', 'k', 'c')]),
      },
    ]);
    expect(ms.filter((m) => m.method === 'basic.publish').map((m) => [m.channel, m.deliveryTag])).toEqual([
      [1, 1],
      [1, undefined],
      [2, undefined],
    ]);
  });

  it('frames over a body frame not copied whole and bounds a frame size of 4 GB', () => {
    const turns: Turn[] = [
      { side: 'client', bytes: publish(1, 'orders', 'new', 'x'.repeat(100_000), traced) },
      { side: 'client', bytes: publish(1, 'orders', 'new', 'small') },
    ];
    expect(
      runCopied(() => new AmqpParser(), turns, 4096).map((m) => [
        (m as AmqpMessage).method,
        (m as AmqpMessage).bodySize,
        m.lostBytes,
        (m as AmqpMessage).traceparent !== undefined,
      ]),
    ).toEqual([
      ['basic.publish', 100_000, turns[0]!.bytes.length - 4096, true],
      ['basic.publish', 5, undefined, false],
    ]);
    const huge = parse([{ side: 'client', bytes: Buffer.concat([Buffer.from([1, 0, 1, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(16)]) }]);
    expect(huge.map((m) => m.parseErrorCode)).toEqual(['AMQP_INVALID_FRAME']);
  });

  it('is detected from the protocol header, and mid-connection from whole frames ended by 0xCE', () => {
    expect(detectAmqp(seed![0]!.bytes)).toEqual({ sender: 'client', connectionStart: true });
    expect(detectAmqp(Buffer.from('AMQ'))).toBe('need-more');
    expect(detectAmqp(publish(1, 'orders', 'new', 'hi'))).toEqual({ sender: undefined, connectionStart: false });
    expect(detectAmqp(amqpFrame(3, 1, Buffer.from('body only')))).toBeUndefined(); // no method: not evidence
    expect(detectAmqp(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });

  it("masks start-ok's and secure-ok's response however the bytes are cut, its length kept, and nothing else", () => {
    const secure = amqpFrame(1, 0, amqpMethod(10, 21, amqpLongstr('scram-proof-xyz')));
    const client = Buffer.concat([...seed!.filter((t) => t.side === 'client').map((t) => t.bytes), secure]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: client.length - 1 }), { maxLength: 8 }), (cuts) => {
        const bytes = Buffer.from(client);
        const masker = amqpMasker();
        let prev = 0;
        for (const at of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
          masker.mask(bytes.subarray(prev, at));
          prev = at;
        }
        let changed = 0;
        for (let i = 0; i < bytes.length; i++) if (bytes[i] !== client[i]) changed++;
        expect(bytes.includes('sekret') || bytes.includes('scram-proof')).toBe(false);
        expect(changed).toBe('\0app\0sekret'.length + 'scram-proof-xyz'.length);
      }),
    );
  });

  it('links a delivery without context to the publish of the same message (exchange, routing key, body), also of an empty body; a different body gets none', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [producer] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 5672 });
    const [consumer] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 5672 });
    s.send(producer, Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), { at: 1000n });
    s.send(producer, publish(1, '', 'orders', '{"id":1}'), { at: 2000n });
    s.send(producer, publish(1, '', 'orders', ''), { at: 2500n });
    s.recv(consumer, deliver(1, 1, '', 'orders', '{"id":1}'), { at: 3000n });
    s.recv(consumer, deliver(1, 2, '', 'orders', ''), { at: 3500n });
    s.recv(consumer, deliver(1, 3, '', 'orders', '{"id":2}'), { at: 4000n });
    const spans = run.spans();
    const sends = spans.filter((x) => x.kind === 'producer').sort((x, y) => Number(x.startNs - y.startNs));
    const got = spans.filter((x) => x.kind === 'consumer').sort((x, y) => Number(x.startNs - y.startNs));
    const link = (x: (typeof sends)[0]) => [{ traceId: x.traceId, spanId: x.spanId, traceState: '' }];
    expect(got.map((x) => [x.parentSpanId, x.links])).toEqual([
      ['', link(sends[0]!)],
      ['', link(sends[1]!)],
      ['', undefined],
    ]);
  });

  it('makes a confirmed publish a PRODUCER span ended by its basic.ack, and its delivery in another process a CONSUMER span under it', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [producer] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 5672 });
    const [consumer] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 5672 });
    s.send(producer, Buffer.concat([Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'), amqpFrame(1, 1, amqpMethod(85, 10, Buffer.from([0])))]), { at: 1000n });
    s.send(producer, publish(1, 'orders', 'new', '{"id":1}', traced), { at: 2000n });
    s.recv(consumer, deliver(1, 1, 'orders', 'new', '{"id":1}', traced), { at: 3000n });
    s.recv(producer, amqpFrame(1, 1, amqpMethod(60, 80, u64(1), Buffer.from([0]))), { at: 5000n });
    const spans = run.spans();
    const send = spans.find((x) => x.kind === 'producer')!;
    const process = spans.find((x) => x.kind === 'consumer')!;
    expect([send.name, send.parentSpanId, send.endNs - send.startNs, send.attributes['messaging.rabbitmq.destination.routing_key']]).toEqual([
      'publish orders',
      '00f067aa0ba902b7',
      3000n,
      'new',
    ]);
    expect([process.name, process.service, process.traceId, process.parentSpanId, process.attributes['loupe.context']]).toEqual([
      'process orders',
      'billing',
      send.traceId,
      send.spanId,
      'message',
    ]);
  });
});
