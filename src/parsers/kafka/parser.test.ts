import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KafkaParser } from './parser';
import { kafkaModule } from './module';
import { kafkaMasker } from './masker';
import { detectKafka } from './detect';
import type { KafkaMessage } from './messages';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';
import { int16 as i16, int32 as i32, kafkaBatch, kafkaFrame, kafkaString as kstr, syntheticSeeds } from '../../../test/fuzz/seeds';
import { services } from '../../../test/services';

const [sasl, ...clients] = syntheticSeeds().get('kafka')!;
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new KafkaParser(), turns, cuts) as KafkaMessage[];
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const produce = (correlation: number, topic: string, batch: Buffer) =>
  kafkaFrame(i16(0), i16(3), i32(correlation), kstr('app'), i16(-1), i16(1), i32(1000), i32(1), kstr(topic), i32(1), i32(0), i32(batch.length), batch);
/** A Fetch v4 response: one topic, one partition, its records. */
const fetchResponse = (correlation: number, topic: string, batch: Buffer) =>
  kafkaFrame(i32(correlation), i32(0), i32(1), kstr(topic), i32(1), i32(0), i16(0), Buffer.alloc(8), Buffer.alloc(8), i32(-1), i32(batch.length), batch);
const fetchRequest = (correlation: number, topic: string) =>
  kafkaFrame(
    i16(1),
    i16(4),
    i32(correlation),
    kstr('app'),
    i32(-1),
    i32(500),
    i32(1),
    i32(1 << 20),
    Buffer.from([0]),
    i32(1),
    kstr(topic),
    i32(1),
    i32(0),
    Buffer.alloc(8),
    i32(1 << 20),
  );

describe('KafkaParser', () => {
  it('reads request headers for every API and pairs responses by correlation id; SASL secrets never reach a message; a gzip batch gives its trace context', () => {
    const ms = parse(sasl!);
    expect(ms.map((m) => [m.kind, m.api, m.apiVersion, m.correlationId])).toEqual([
      ['request', 'ApiVersions', 0, 1],
      ['response', 'ApiVersions', 0, 1],
      ['request', 'SaslHandshake', 1, 2],
      ['response', 'SaslHandshake', 1, 2],
      ['request', 'SaslAuthenticate', 1, 3],
      ['response', 'SaslAuthenticate', 1, 3],
      ['request', 'Produce', 3, 4],
      ['request', 'Produce', 3, 5],
      ['response', 'Produce', 3, 4],
    ]);
    expect(ms[6]).toMatchObject({ acks: 1, records: 2, traceparent: TRACEPARENT, topics: [{ name: 'orders', partitions: [{ partition: 0, records: 2 }] }] });
    expect(ms[7]).toMatchObject({ acks: 0, topics: [{ name: 'audit' }] });
    expect(ms.every((m) => m.error === undefined)).toBe(true);
    expect(JSON.stringify(ms, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('sekret');
  });

  it("reads kcat's and the Java client's traffic to a Kafka 4.1 broker: classic and flexible versions, record headers, Fetch v18 topic ids named from Metadata", () => {
    const all = clients.flatMap((c) => parse(c));
    expect(all.filter((m) => m.error !== undefined)).toEqual([]);
    const apis = new Set(all.map((m) => `${m.api} v${m.apiVersion}`));
    for (const api of [
      'Produce v7',
      'Produce v13',
      'Fetch v11',
      'Fetch v18',
      'Metadata v4',
      'Metadata v13',
      'ApiVersions v3',
      'ApiVersions v4',
      'JoinGroup v9',
      'SyncGroup v5',
      'OffsetCommit v9',
      'OffsetFetch v9',
      'ListOffsets v10',
      'FindCoordinator v6',
    ])
      expect(apis, api).toContain(api);
    const fetches = all.filter((m) => m.api === 'Fetch' && m.kind === 'response' && (m.records ?? 0) > 0);
    expect(fetches.map((m) => [m.apiVersion, m.topics![0]!.name, m.records, m.traceparent?.slice(0, 35)])).toEqual([
      [11, 'orders', 3, '00-4bf92f3577b34da6a3ce929d0e0e4736'],
      [18, 'jorders', 2, '00-0af7651916cd43dd8448eb211c80319c'],
    ]);
    expect(fetches[1]!.topics![0]!.topicId).toMatch(/^[0-9a-f]{32}$/);
    const produced = all.filter((m) => m.api === 'Produce' && m.kind === 'request');
    // (kcat's connection is in the fixture twice: as kcat's and as the broker's socket saw it.)
    expect(new Set(produced.map((m) => `${m.apiVersion} ${m.topics![0]!.name} ${m.records} ${m.traceparent !== undefined}`))).toEqual(
      new Set(['7 orders 1 true', '13 jorders 2 true']),
    );
    // Group membership as the Java consumer went through it: the topics it subscribed to (the consumer protocol's metadata),
    // the assignors offered and chosen, the leader told of every member, and the partitions the leader's assignment gave it.
    const group = all.filter((m) => m.api === 'JoinGroup' || m.api === 'SyncGroup');
    expect(group.find((m) => m.api === 'JoinGroup' && m.kind === 'request')).toMatchObject({
      groupId: 'g1',
      protocolType: 'consumer',
      protocols: ['range', 'cooperative-sticky'],
      topics: [{ name: 'jorders', partitions: [] }],
    });
    const led = group.find((m) => m.api === 'JoinGroup' && m.kind === 'response' && m.members === 1)!;
    expect([led.leader, led.protocols, led.errorCode]).toEqual([led.memberId, ['range'], undefined]);
    expect(led.memberId).toMatch(/^console-consumer-/);
    expect(group.filter((m) => m.api === 'SyncGroup').map((m) => [m.kind, m.memberId, m.protocols, m.members, m.topics])).toEqual([
      ['request', led.memberId, ['range'], 1, undefined],
      ['response', undefined, ['range'], undefined, [{ name: 'jorders', partitions: [{ partition: 0 }] }]],
    ]);
  });

  it("names a topic a Fetch or Produce names by id from a Metadata response on another of the run's connections (franz-go asks on one of its own), not from another run's", () => {
    const java = clients[9]!; // the Java consumer: Metadata v13 at turns 2-3, a Fetch v18 bringing records at turns 20-21
    const fetched = (parser: KafkaParser) => {
      const out: KafkaMessage[] = [];
      parser.onMessage = (m) => out.push(m);
      java.slice(20, 22).forEach((t, i) => parser.feed(t.side, { data: t.bytes, ts: BigInt(i + 1), tid: 1 }));
      return out.find((m) => m.api === 'Fetch' && m.kind === 'response')!.topics![0]!.name;
    };
    const shared = new Map<string, unknown>();
    const metadata = kafkaModule.parser!({ shared });
    java.slice(0, 4).forEach((t, i) => metadata.feed(t.side, { data: t.bytes, ts: BigInt(i + 1), tid: 1 }));
    expect([fetched(kafkaModule.parser!({ shared }) as KafkaParser), fetched(kafkaModule.parser!({ shared: new Map() }) as KafkaParser)]).toEqual(['jorders', 'unknown']);
  });

  it('gives the same messages however the bytes are cut', () => {
    for (const conversation of [sasl!, ...clients]) {
      const whole = JSON.stringify(shape(parse(conversation)));
      fc.assert(
        fc.property(fc.array(fc.nat(5000), { maxLength: 30 }), (cuts) => {
          expect(JSON.stringify(shape(parse(conversation, cuts)))).toBe(whole);
        }),
        { numRuns: 30 },
      );
    }
  });

  it('decodes a Fetch response over 1 MiB from its head, frames over bytes not copied, and refuses a size of 2 GB', () => {
    // A record's headers follow its value: the first record's are inside a 4096-byte copy when its value is small.
    const big = kafkaBatch(
      Array.from({ length: 300 }, (_, i) => (i === 0 ? { value: 'first', headers: [['traceparent', TRACEPARENT]] as Array<[string, string]> } : { value: 'v'.repeat(5000) })),
    );
    const turns: Turn[] = [
      { side: 'client', bytes: fetchRequest(7, 'orders') },
      { side: 'server', bytes: fetchResponse(7, 'orders', big) },
      { side: 'client', bytes: fetchRequest(8, 'orders') },
    ];
    const shapeOf = (ms: KafkaMessage[]) => ms.map((m) => [m.kind, m.api, m.correlationId, m.records, m.traceparent !== undefined, m.lostBytes]);
    expect(shapeOf(parse(turns))).toEqual([
      ['request', 'Fetch', 7, undefined, false, undefined],
      ['response', 'Fetch', 7, 300, true, undefined],
      ['request', 'Fetch', 8, undefined, false, undefined],
    ]);
    expect(shapeOf(runCopied(() => new KafkaParser(), turns, 4096) as KafkaMessage[])).toEqual([
      ['request', 'Fetch', 7, undefined, false, undefined],
      ['response', 'Fetch', 7, 300, true, turns[1]!.bytes.length - 4096], // counted from the batch header; the first record's header read
      ['request', 'Fetch', 8, undefined, false, undefined],
    ]);
    const huge = parse([{ side: 'client', bytes: Buffer.concat([i32(0x7fffffff), Buffer.alloc(20)]) }]);
    expect(huge.map((m) => m.parseErrorCode)).toEqual(['KAFKA_INVALID_SIZE']);
  });

  it('is detected from a request on any port, not from a response read as one', () => {
    expect(detectKafka(sasl![0]!.bytes)).toEqual({ sender: 'client', connectionStart: true });
    expect(detectKafka(produce(9, 'orders', kafkaBatch([{ value: 'x' }])))).toEqual({ sender: 'client', connectionStart: false });
    for (const c of clients) expect(detectKafka(c[0]!.bytes)).toMatchObject({ sender: 'client' });
    // A Produce response with correlation id 2 reads as "Produce v2": its fields do not decode as a request's.
    expect(detectKafka(kafkaFrame(i32(2), i32(1), kstr('orders'), i32(1), i32(0), i16(0), Buffer.alloc(8), i32(0)))).toBeUndefined();
    // The broker's answers on a controller connection opened before the agent (a Kafka 4.1 recording): "acks 256".
    expect(detectKafka(kafkaFrame(i16(0), i16(2), i32(233), i16(0), i16(256), i32(1000), i32(0)))).toBeUndefined();
    expect(detectKafka(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
  });

  it('masks SaslAuthenticate bytes and a SaslHandshake v0 raw token however they are cut, and nothing else', () => {
    const v0: Turn[] = [
      {
        side: 'client',
        bytes: Buffer.concat([
          kafkaFrame(i16(17), i16(0), i32(1), kstr('app'), kstr('PLAIN')),
          kafkaFrame(Buffer.from('\0app\0t0ken-pw')),
          produce(2, 'orders', kafkaBatch([{ value: 'x' }])),
        ]),
      },
    ];
    for (const [conversation, secret] of [
      [sasl!, '\0app\0sekret'],
      [v0, '\0app\0t0ken-pw'],
    ] as const) {
      const client = Buffer.concat(conversation.filter((t) => t.side === 'client').map((t) => t.bytes));
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: client.length - 1 }), { maxLength: 8 }), (cuts) => {
          const bytes = Buffer.from(client);
          const masker = kafkaMasker();
          let prev = 0;
          for (const at of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
            masker.mask(bytes.subarray(prev, at));
            prev = at;
          }
          let changed = 0;
          for (let i = 0; i < bytes.length; i++) if (bytes[i] !== client[i]) changed++;
          expect(bytes.includes(secret)).toBe(false);
          expect(changed).toBe(secret.length); // its length field stays: a replay still frames the request
          expect(parse([{ side: 'client', bytes }]).filter((m) => m.error !== undefined)).toEqual([]);
          if (conversation === v0) {
            // In the order a client and broker speak: the handshake answered, the token, the broker's (empty) answer token.
            const handshake = kafkaFrame(i16(17), i16(0), i32(1), kstr('app'), kstr('PLAIN')).length;
            const answered = parse([
              { side: 'client', bytes: bytes.subarray(0, handshake) },
              { side: 'server', bytes: kafkaFrame(i32(1), i16(0), i32(1), kstr('PLAIN')) },
              { side: 'client', bytes: bytes.subarray(handshake) },
              { side: 'server', bytes: kafkaFrame() },
            ]);
            expect(answered.map((m) => `${m.kind} ${m.api}${m.error ? ' error' : ''}`)).toEqual([
              'request SaslHandshake',
              'response SaslHandshake',
              'request SaslToken',
              'request Produce',
              'response SaslToken',
            ]);
          }
        }),
      );
    }
  });

  it('makes a Produce a PRODUCER span ended by its response, and the Fetch response bringing its record in another process a CONSUMER span under it', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [producer] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 9092 });
    const [consumer] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 9092 });
    const batch = kafkaBatch([{ value: 'order', headers: [['traceparent', TRACEPARENT]] }]);
    s.send(producer, produce(11, 'orders', batch), { at: 1000n });
    s.send(consumer, fetchRequest(21, 'orders'), { at: 1500n });
    s.recv(producer, kafkaFrame(i32(11), i32(1), kstr('orders'), i32(1), i32(0), i16(0), Buffer.from([0, 0, 0, 0, 0, 0, 0, 42]), Buffer.alloc(8), i32(0)), { at: 3000n });
    s.recv(consumer, fetchResponse(21, 'orders', batch), { at: 4000n });
    const spans = run.spans();
    const send = spans.find((x) => x.kind === 'producer')!;
    const poll = spans.find((x) => x.kind === 'consumer')!;
    expect([send.name, send.parentSpanId, send.endNs - send.startNs, send.attributes['messaging.kafka.offset'], send.attributes['messaging.batch.message_count']]).toEqual([
      'send orders',
      '00f067aa0ba902b7',
      2000n,
      42,
      1,
    ]);
    expect([poll.name, poll.service, poll.traceId, poll.parentSpanId, poll.attributes['loupe.context'], poll.attributes['messaging.operation.type']]).toEqual([
      'poll orders',
      'billing',
      send.traceId,
      send.spanId,
      'message',
      'receive',
    ]);
  });

  it("links a poll to the Produce of each batch it brought, known by partition and CRC: a parent from the first record's context, links to the rest; without context, a trace of its own with a link to each", () => {
    const run = services('kcat', 'orders', 'billing');
    const s = run.script;
    const [plain] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 9092 });
    const [traced] = s.connection({ pid: 2, tid: 2, fd: 5, port: 40001 }, { pid: 9, tid: 9, fd: 5, port: 9092 });
    const [consumer] = s.connection({ pid: 3, tid: 3, fd: 6, port: 40002 }, { pid: 9, tid: 9, fd: 7, port: 9092 });
    const produced = (conn: typeof plain, correlation: number, batch: Buffer, at: bigint) => {
      s.send(conn, produce(correlation, 'orders', batch), { at });
      s.recv(conn, kafkaFrame(i32(correlation), i32(1), kstr('orders'), i32(1), i32(0), i16(0), Buffer.alloc(8), Buffer.alloc(8), i32(0)), { at: at + 100n });
    };
    const [a, b] = [kafkaBatch([{ value: 'order a1' }, { value: 'order a2' }]), kafkaBatch([{ value: 'order b' }])];
    const c = kafkaBatch([{ value: 'order c', headers: [['traceparent', TRACEPARENT]] }]);
    produced(plain, 1, a, 1000n);
    produced(plain, 2, b, 2000n);
    produced(traced, 1, c, 3000n);
    // One poll brings a and b (no context), the next c then a again (a re-read from an earlier offset).
    s.send(consumer, fetchRequest(1, 'orders'), { at: 4000n });
    s.recv(consumer, fetchResponse(1, 'orders', Buffer.concat([a, b])), { at: 5000n });
    s.send(consumer, fetchRequest(2, 'orders'), { at: 6000n });
    s.recv(consumer, fetchResponse(2, 'orders', Buffer.concat([c, a])), { at: 7000n });
    const spans = run.spans();
    const [sendA, sendB, sendC] = spans.filter((x) => x.kind === 'producer').sort((x, y) => Number(x.startNs - y.startNs));
    const [first, second] = spans.filter((x) => x.kind === 'consumer').sort((x, y) => Number(x.startNs - y.startNs));
    const link = (x: typeof sendA) => ({ traceId: x!.traceId, spanId: x!.spanId, traceState: '' });
    expect([first!.parentSpanId, first!.attributes['loupe.context'], first!.links]).toEqual(['', 'new', [link(sendA), link(sendB)]]);
    expect([first!.traceId === sendA!.traceId, first!.traceId === sendB!.traceId]).toEqual([false, false]);
    expect([second!.parentSpanId, second!.attributes['loupe.context'], second!.links]).toEqual([sendC!.spanId, 'message', [link(sendA)]]);
    expect(sendA!.links).toBeUndefined();
  });
});
