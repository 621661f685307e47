/**
 * AMQP 0-9-1's argument types, bounded (shared/bounded-reader.ts: a field
 * past the frame stops the decoding): octets, shorts, longs,
 * long-longs, short and long strings, and field tables (RabbitMQ's field
 * types, its errata to the specification's).
 */
import { BoundedReader, whole } from '../shared/bounded-reader';
import { methodName, type AmqpMessage } from './messages';

export type Fields = Partial<Omit<AmqpMessage, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'>>;

/** Nesting of tables and arrays believed at most. */
const MAX_DEPTH = 16;

class Reader extends BoundedReader {
  shortstr(): string {
    return this.text(this.u8());
  }

  longstr(): string {
    return this.text(this.u32());
  }

  /** A field table: entries counted, trace context kept. */
  table(f?: Fields, depth = 0): number {
    const length = this.u32();
    const end = this.at + length;
    if (end > this.end) this.stop();
    let entries = 0;
    while (this.at < end) {
      // Names compared as bytes: only trace context is kept, and a string per header name was most of a table's cost.
      const nameLength = this.u8();
      this.need(nameLength);
      const traceField = f ? traceFieldAt(this.b, this.at, nameLength) : undefined;
      this.at += nameLength;
      const value = this.value(depth, traceField !== undefined);
      entries++;
      if (traceField && typeof value === 'string') f![traceField] = value;
    }
    if (this.at !== end) this.stop();
    return entries;
  }

  /** A field value: a string returned when `wanted`, the rest skipped. */
  private value(depth: number, wanted = false): string | undefined {
    if (depth > MAX_DEPTH) this.stop();
    const type = String.fromCharCode(this.u8());
    switch (type) {
      case 't':
      case 'b':
      case 'B':
        this.skip(1);
        return undefined;
      case 's':
      case 'u':
        this.skip(2);
        return undefined;
      case 'I':
      case 'i':
      case 'f':
        this.skip(4);
        return undefined;
      case 'l':
      case 'L':
      case 'd':
      case 'T':
        this.skip(8);
        return undefined;
      case 'D':
        this.skip(5);
        return undefined;
      case 'S':
        if (wanted) return this.longstr();
        this.skip(this.u32());
        return undefined;
      case 'x':
        this.skip(this.u32());
        return undefined;
      case 'A': {
        const length = this.u32();
        const end = this.at + length;
        while (this.at < end) this.value(depth + 1);
        if (this.at !== end) this.stop();
        return undefined;
      }
      case 'F':
        this.table(undefined, depth + 1);
        return undefined;
      case 'V':
        return undefined;
      default:
        return this.stop();
    }
  }
}

const TRACEPARENT = Buffer.from('traceparent');
const TRACESTATE = Buffer.from('tracestate');

/** Whether the `n` bytes at `at` name `want`, ASCII letters in any case. */
function namesAt(b: Buffer, at: number, n: number, want: Buffer): boolean {
  if (n !== want.length) return false;
  for (let i = 0; i < n; i++) if ((b[at + i]! | 0x20) !== want[i]) return false;
  return true;
}

/** The trace context field a table entry's name is, if any. */
function traceFieldAt(b: Buffer, at: number, n: number): 'traceparent' | 'tracestate' | undefined {
  if (namesAt(b, at, n, TRACEPARENT)) return 'traceparent';
  return namesAt(b, at, n, TRACESTATE) ? 'tracestate' : undefined;
}

/** A method frame's payload `b[at, end)`: its name and the arguments Loupe keeps. */
export function decodeMethod(b: Buffer, at: number, end: number, f: Fields): boolean {
  const r = new Reader(b, at, end);
  return whole(() => {
    f.method = methodName(r.u16(), r.u16());
    switch (f.method) {
      case 'connection.start-ok':
        r.table(); // client properties
        f.mechanism = r.shortstr();
        return; // the response (credentials) is never read
      case 'connection.open':
        f.vhost = r.shortstr();
        return;
      case 'connection.close':
      case 'channel.close':
        f.replyCode = r.u16();
        f.replyText = r.shortstr();
        return;
      case 'exchange.declare':
      case 'exchange.delete':
        r.u16();
        f.exchange = r.shortstr();
        return;
      case 'queue.declare':
      case 'queue.delete':
      case 'queue.purge':
      case 'basic.get':
        r.u16();
        f.queue = r.shortstr();
        return;
      case 'queue.declare-ok':
        f.queue = r.shortstr();
        f.messageCount = r.u32();
        return;
      case 'queue.bind':
      case 'queue.unbind':
        r.u16();
        f.queue = r.shortstr();
        f.exchange = r.shortstr();
        f.routingKey = r.shortstr();
        return;
      case 'basic.consume':
        r.u16();
        f.queue = r.shortstr();
        f.consumerTag = r.shortstr();
        return;
      case 'basic.consume-ok':
      case 'basic.cancel':
      case 'basic.cancel-ok':
        f.consumerTag = r.shortstr();
        return;
      case 'basic.publish':
        r.u16();
        f.exchange = r.shortstr();
        f.routingKey = r.shortstr();
        return;
      case 'basic.return':
        f.replyCode = r.u16();
        f.replyText = r.shortstr();
        f.exchange = r.shortstr();
        f.routingKey = r.shortstr();
        return;
      case 'basic.deliver':
        f.consumerTag = r.shortstr();
        f.deliveryTag = r.u64();
        r.u8(); // redelivered
        f.exchange = r.shortstr();
        f.routingKey = r.shortstr();
        return;
      case 'basic.get-ok':
        f.deliveryTag = r.u64();
        r.u8();
        f.exchange = r.shortstr();
        f.routingKey = r.shortstr();
        f.messageCount = r.u32();
        return;
      case 'basic.ack':
      case 'basic.nack':
      case 'basic.reject':
        f.deliveryTag = r.u64();
        if (f.method !== 'basic.reject') f.multiple = (r.u8() & 1) === 1;
        return;
      default:
        return;
    }
  });
}

/** Basic's content properties, by flag bit (bit 15 first). */
const PROPERTY_READERS: Array<(r: Reader, f: Fields) => void> = [
  (r, f) => (f.contentType = r.shortstr()),
  (r) => r.shortstr(), // content-encoding
  (r, f) => (f.headers = r.table(f)),
  (r, f) => (f.deliveryMode = r.u8()),
  (r) => r.u8(), // priority
  (r, f) => (f.correlationId = r.shortstr()),
  (r, f) => (f.replyTo = r.shortstr()),
  (r) => r.shortstr(), // expiration
  (r, f) => (f.messageId = r.shortstr()),
  (r) => r.u64(), // timestamp
  (r) => r.shortstr(), // type
  (r) => r.shortstr(), // user-id
  (r) => r.shortstr(), // app-id
  (r) => r.shortstr(), // cluster-id
];

/** A content header frame's payload: the body size and the properties (headers table included). */
export function decodeContentHeader(b: Buffer, at: number, end: number, f: Fields): boolean {
  const r = new Reader(b, at, end);
  return whole(() => {
    r.u16(); // class
    r.u16(); // weight
    f.bodySize = r.u64();
    const flags = r.u16();
    for (let bit = 0; bit < PROPERTY_READERS.length; bit++) if (flags & (0x8000 >> bit)) PROPERTY_READERS[bit]!(r, f);
  });
}
