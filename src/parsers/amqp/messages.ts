/**
 * AMQP 0-9-1 (RabbitMQ): frames (method, content header, body, heartbeat)
 * on channels. One message per method; a content-bearing method
 * (basic.publish, basic.deliver, basic.get-ok, basic.return) is one message
 * with its content header and body, emitted when its body is complete.
 * Bodies are counted, never kept.
 */
import { LOST_BYTES_ERROR, type MessageBase } from '../types';

export const AMQP_ERROR = {
  /** A frame type AMQP 0-9-1 does not define, or a size over what is believed (16 MiB; frame_max defaults to 128 KiB). */
  INVALID_FRAME: 'AMQP_INVALID_FRAME',
  /** A frame not ended by 0xCE. */
  FRAME_END_EXPECTED: 'AMQP_FRAME_END_EXPECTED',
  /** A method or content header whose fields run past its frame. */
  MALFORMED: 'AMQP_MALFORMED',
  /** A content header or body with no content-bearing method before it on its channel, or a method before a content was complete. */
  UNEXPECTED_CONTENT: 'AMQP_UNEXPECTED_CONTENT',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

// prettier-ignore
const METHODS: ReadonlyMap<number, string> = new Map([
  [0x000a000a, 'connection.start'], [0x000a000b, 'connection.start-ok'], [0x000a0014, 'connection.secure'], [0x000a0015, 'connection.secure-ok'],
  [0x000a001e, 'connection.tune'], [0x000a001f, 'connection.tune-ok'], [0x000a0028, 'connection.open'], [0x000a0029, 'connection.open-ok'],
  [0x000a0032, 'connection.close'], [0x000a0033, 'connection.close-ok'], [0x000a003c, 'connection.blocked'], [0x000a003d, 'connection.unblocked'],
  [0x0014000a, 'channel.open'], [0x0014000b, 'channel.open-ok'], [0x00140014, 'channel.flow'], [0x00140015, 'channel.flow-ok'],
  [0x00140028, 'channel.close'], [0x00140029, 'channel.close-ok'],
  [0x0028000a, 'exchange.declare'], [0x0028000b, 'exchange.declare-ok'], [0x00280014, 'exchange.delete'], [0x00280015, 'exchange.delete-ok'],
  [0x0028001e, 'exchange.bind'], [0x0028001f, 'exchange.bind-ok'], [0x00280028, 'exchange.unbind'], [0x00280033, 'exchange.unbind-ok'],
  [0x0032000a, 'queue.declare'], [0x0032000b, 'queue.declare-ok'], [0x00320014, 'queue.bind'], [0x00320015, 'queue.bind-ok'],
  [0x0032001e, 'queue.purge'], [0x0032001f, 'queue.purge-ok'], [0x00320028, 'queue.delete'], [0x00320029, 'queue.delete-ok'],
  [0x00320032, 'queue.unbind'], [0x00320033, 'queue.unbind-ok'],
  [0x003c000a, 'basic.qos'], [0x003c000b, 'basic.qos-ok'], [0x003c0014, 'basic.consume'], [0x003c0015, 'basic.consume-ok'],
  [0x003c001e, 'basic.cancel'], [0x003c001f, 'basic.cancel-ok'], [0x003c0028, 'basic.publish'], [0x003c0032, 'basic.return'],
  [0x003c003c, 'basic.deliver'], [0x003c0046, 'basic.get'], [0x003c0047, 'basic.get-ok'], [0x003c0048, 'basic.get-empty'],
  [0x003c0050, 'basic.ack'], [0x003c005a, 'basic.reject'], [0x003c0064, 'basic.recover-async'], [0x003c006e, 'basic.recover'],
  [0x003c006f, 'basic.recover-ok'], [0x003c0078, 'basic.nack'],
  [0x0055000a, 'confirm.select'], [0x0055000b, 'confirm.select-ok'],
  [0x005a000a, 'tx.select'], [0x005a000b, 'tx.select-ok'], [0x005a0014, 'tx.commit'], [0x005a0015, 'tx.commit-ok'], [0x005a001e, 'tx.rollback'], [0x005a001f, 'tx.rollback-ok'],
]);

export const methodName = (classId: number, methodId: number): string => METHODS.get(classId * 0x10000 + methodId) ?? `method ${classId}.${methodId}`;

/** The methods whose content (a content header and body frames) follows them on their channel. */
export const CONTENT_METHODS: ReadonlySet<string> = new Set(['basic.publish', 'basic.return', 'basic.deliver', 'basic.get-ok']);

export const KNOWN_CLASSES: ReadonlySet<number> = new Set([10, 20, 40, 50, 60, 85, 90]);

export interface AmqpMessage extends MessageBase {
  protocol: 'amqp';
  /** What the client sends is a `request`, what the broker sends a `response`. */
  kind: 'request' | 'response';
  /** The method (`basic.publish`, …), `protocol-header`, `heartbeat`, or `Unparsable`. */
  method: string;
  channel?: number;
  exchange?: string;
  routingKey?: string;
  queue?: string;
  consumerTag?: string;
  /** basic.deliver, basic.get-ok, basic.ack, basic.nack, basic.reject: the delivery tag; a confirmed publish: its sequence number on the channel. */
  deliveryTag?: number;
  /** basic.ack and basic.nack: every tag up to this one (expanded into one message per publish a broker's multiple ack confirms). */
  multiple?: boolean;
  /** Content: body bytes, its content type, the headers table's entries (counted), trace context from them. */
  bodySize?: number;
  /** A digest of the body's first bytes, for linking its deliveries to its publish (shared/messaging.ts; never output). */
  payloadDigest?: number;
  contentType?: string;
  headers?: number;
  traceparent?: string;
  tracestate?: string;
  messageId?: string;
  correlationId?: string;
  replyTo?: string;
  deliveryMode?: number;
  /** connection.close, channel.close, basic.return: the reply code and text. */
  replyCode?: number;
  replyText?: string;
  /** queue.declare-ok, basic.get-ok: messages in the queue. */
  messageCount?: number;
  /** connection.open: the virtual host; connection.start-ok: the mechanism (never the response). */
  vhost?: string;
  mechanism?: string;
}
