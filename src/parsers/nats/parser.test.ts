import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NatsParser } from './parser';
import { NatsMasker } from './masker';
import { detectNats } from './detect';
import type { NatsMessage } from './messages';
import { runCopied, runTurns, shape } from '../../../test/parser-harness';
import { syntheticSeeds } from '../../../test/fuzz/seeds';
import { services } from '../../../test/services';

const conversation = syntheticSeeds().get('nats')![0]!;
const parse = (cuts?: number[]) => runTurns(() => new NatsParser(), conversation, cuts) as NatsMessage[];

describe('NatsParser', () => {
  it('reads each operation, payloads counted, and the trace context of HPUB and HMSG headers', () => {
    const ms = parse();
    expect(ms.map((m) => [m.kind, m.op, m.subject, m.bytes])).toEqual([
      ['response', 'INFO', undefined, undefined],
      ['request', 'CONNECT', undefined, undefined],
      ['request', 'PING', undefined, undefined],
      ['response', '+OK', undefined, undefined],
      ['response', 'PONG', undefined, undefined],
      ['request', 'SUB', 'orders', undefined],
      ['request', 'PUB', 'orders', 5],
      ['request', 'HPUB', 'orders', 2],
      ['response', '+OK', undefined, undefined],
      ['response', '+OK', undefined, undefined],
      ['response', 'MSG', 'orders', 5],
      ['response', 'HMSG', 'orders', 2],
      ['response', '-ERR', undefined, undefined],
    ]);
    expect(ms.filter((m) => m.traceparent).map((m) => [m.op, m.replyTo, m.traceparent])).toEqual([
      ['HPUB', '_INBOX.1', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['HMSG', '_INBOX.1', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ]);
    expect(JSON.stringify(ms, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('sekret');
  });

  it('gives the same messages however the bytes are cut, and frames over bytes not copied inside a payload', () => {
    const whole = JSON.stringify(shape(parse()));
    fc.assert(
      fc.property(fc.array(fc.nat(300), { maxLength: 12 }), (cuts) => {
        expect(JSON.stringify(shape(parse(cuts)))).toBe(whole);
      }),
    );
    const big = [
      { side: 'client' as const, bytes: Buffer.from(`PUB orders 10000\r\n${'x'.repeat(10_000)}\r\n`) },
      { side: 'client' as const, bytes: Buffer.from('PUB orders 2\r\nhi\r\n') },
    ];
    expect((runCopied(() => new NatsParser(), big, 4096) as NatsMessage[]).map((m) => [m.op, m.bytes])).toEqual([
      ['PUB', 10000],
      ['PUB', 2],
    ]);
  });

  it('is detected from INFO and CONNECT, and mid-connection from a PUB or MSG line', () => {
    expect(detectNats(Buffer.from('INFO {"server_id":"x"}\r\n'))).toEqual({ sender: 'server', connectionStart: true });
    expect(detectNats(Buffer.from('CONNECT {"verbose":false}\r\n'))).toEqual({ sender: 'client', connectionStart: true });
    expect(detectNats(Buffer.from('PUB orders 5\r\nhello\r\n'))).toEqual({ sender: 'client', connectionStart: false });
    expect(detectNats(Buffer.from('PING\r\n'))).toBeUndefined(); // Redis's too: not evidence
  });

  it("masks CONNECT's password and token in the bytes however they are cut, and nothing else", () => {
    const line = Buffer.from('CONNECT {"user":"app","pass":"se\\"kret","auth_token":"t0ken","name":"x"}\r\nPUB a 4\r\npass\r\n');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: line.length - 1 }), { maxLength: 6 }), (cuts) => {
        const bytes = Buffer.from(line);
        const masker = new NatsMasker();
        let prev = 0;
        for (const at of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
          masker.mask(bytes.subarray(prev, at));
          prev = at;
        }
        const text = bytes.toString('latin1');
        expect(text).toContain('"pass":"********"');
        expect(text).toContain('"auth_token":"*****"');
        expect(text).toContain('"user":"app"');
        expect(text.endsWith('PUB a 4\r\npass\r\n')).toBe(true);
      }),
    );
  });

  it('links a delivery that carried no context to the publish of the same message (subject, size, first bytes), none to another', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [publisher] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [subscriber] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 4222 });
    const long = `order 2 ${'x'.repeat(100)}`; // past the 64 bytes a message is known by
    s.send(publisher, 'PUB orders 7\r\norder 1\r\n', { at: 1000n });
    s.send(publisher, `PUB orders ${long.length}\r\n${long}\r\n`, { at: 2000n });
    s.recv(subscriber, `MSG orders 1 ${long.length}\r\n${long.slice(0, 50)}`, { at: 3000n });
    s.recv(subscriber, `${long.slice(50)}\r\nMSG orders 1 7\r\norder 3\r\n`, { at: 3100n });
    const spans = run.spans();
    const [, second] = spans.filter((x) => x.kind === 'producer').sort((x, y) => Number(x.startNs - y.startNs));
    const [delivered, other] = spans.filter((x) => x.kind === 'consumer').sort((x, y) => Number(x.startNs - y.startNs));
    expect([delivered!.parentSpanId, delivered!.traceId === second!.traceId, delivered!.links]).toEqual([
      '',
      false,
      [{ traceId: second!.traceId, spanId: second!.spanId, traceState: '' }],
    ]);
    expect(other!.links).toBeUndefined();
  });

  it('makes a publish and its delivery in two processes one trace, the delivery under the publish, by the context both carried', () => {
    const run = services('orders', 'billing');
    const s = run.script;
    const [publisher] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [subscriber] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 4222 });
    const headers = 'NATS/1.0\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n';
    const size = Buffer.byteLength(headers);
    s.recv(publisher, 'INFO {"server_id":"N"}\r\n', { at: 1000n });
    s.send(publisher, `HPUB orders ${size} ${size + 2}\r\n${headers}hi\r\n`, { at: 2000n });
    s.recv(subscriber, `HMSG orders 1 ${size} ${size + 2}\r\n${headers}hi\r\n`, { at: 3000n });
    const spans = run.spans();
    const producer = spans.find((x) => x.kind === 'producer')!;
    const consumer = spans.find((x) => x.kind === 'consumer')!;
    expect([producer.name, producer.service, producer.parentSpanId, producer.attributes['loupe.context']]).toEqual(['publish orders', 'orders', '00f067aa0ba902b7', 'traceparent']);
    expect([consumer.name, consumer.service, consumer.traceId, consumer.parentSpanId, consumer.attributes['loupe.context']]).toEqual([
      'process orders',
      'billing',
      producer.traceId,
      producer.spanId,
      'message',
    ]);
  });

  it('ends a request (a publish whose reply subject is an inbox) at the reply delivered to that inbox; the responder makes its own spans', () => {
    const run = services('checkout', 'pricing');
    const s = run.script;
    const [requester] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [responder] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 4222 });
    s.send(requester, 'PUB price.get _INBOX.k3.7 3\r\nsku\r\n', { at: 1000n });
    s.send(requester, 'PUB price.get _INBOX.k3.8 3\r\nsku\r\n', { at: 1500n });
    s.recv(responder, 'MSG price.get 1 _INBOX.k3.7 3\r\nsku\r\n', { at: 2000n });
    s.send(responder, 'PUB _INBOX.k3.7 2\r\n42\r\n', { at: 3000n });
    s.recv(requester, 'MSG _INBOX.k3.7 9 2\r\n42\r\n', { at: 4000n });
    const spans = run.spans();
    const requests = spans.filter((x) => x.service === 'checkout');
    expect(requests.map((x) => [x.name, x.kind, x.attributes['messaging.nats.reply_to'], x.attributes['loupe.incomplete'] ?? 'answered'])).toEqual([
      ['publish price.get', 'producer', '_INBOX.k3.7', 'answered'],
      ['publish price.get', 'producer', '_INBOX.k3.8', 'capture ended before the response'],
    ]);
    expect(requests[0]!.endNs - requests[0]!.startNs).toBe(3000n);
    expect(spans.filter((x) => x.service === 'pricing').map((x) => [x.name, x.kind])).toEqual([
      ['process price.get', 'consumer'],
      ['publish _INBOX.k3.7', 'producer'],
    ]);
  });
});
