/**
 * AMQP 0-9-1 (RabbitMQ) as a protocol module. A watched client's
 * basic.publish is a PRODUCER span: on a channel in confirm mode it ends at
 * the broker's basic.ack or basic.nack for its sequence number, otherwise
 * with itself; a basic.deliver to it is a CONSUMER span (`process`) and a
 * basic.get one (`receive`) ended by get-ok or get-empty. A `traceparent` in
 * the content's headers table parents the span, as NATS and Kafka headers
 * do. A watched broker makes no spans.
 */
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
  ATTR_MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG,
  ATTR_MESSAGING_SYSTEM,
} from '@opentelemetry/semantic-conventions/incubating';
import type { ConnectionView, MessageRole, ProtocolModule } from '../module';
import { messageKey, messageSpan } from '../shared/messaging';
import type { Attributes, SpanDraft } from '../spans';
import { amqpFrames, detectAmqp } from './detect';
import { amqpMasker } from './masker';
import { AMQP_ERROR, type AmqpMessage } from './messages';
import { AmqpParser } from './parser';

/** A publish's key among a connection's answers: its channel and its confirm sequence number (0: the channel's basic.get). */
const keyOf = (channel: number, seq: number) => channel * 2 ** 32 + seq;

function role(m: AmqpMessage, connection: ConnectionView): MessageRole {
  if (connection.role !== 'client' || m.error !== undefined || m.channel === undefined) return { is: 'none' };
  if (m.kind === 'response' && (m.method === 'basic.ack' || m.method === 'basic.nack') && m.deliveryTag !== undefined)
    return { is: 'response', key: keyOf(m.channel, m.deliveryTag) };
  if (m.kind === 'response' && (m.method === 'basic.get-ok' || m.method === 'basic.get-empty')) return { is: 'response', key: keyOf(m.channel, 0) };
  const publish = m.kind === 'request' && m.method === 'basic.publish';
  const deliver = m.kind === 'response' && m.method === 'basic.deliver';
  const get = m.kind === 'request' && m.method === 'basic.get';
  if (!publish && !deliver && !get) return { is: 'none' };
  // A message is addressed to an exchange, with a routing key (the default exchange "" routes by the key to the queue it names).
  const destination = get ? (m.queue ?? '') : m.exchange || m.routingKey || 'amq.default';
  const operation = publish ? 'publish' : get ? 'receive' : 'process';
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: 'rabbitmq',
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: publish ? 'send' : operation,
    [ATTR_MESSAGING_DESTINATION_NAME]: destination,
  };
  if (m.routingKey) attributes[ATTR_MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY] = m.routingKey;
  if (deliver && m.deliveryTag !== undefined) attributes[ATTR_MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG] = m.deliveryTag;
  if (m.bodySize !== undefined) attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = m.bodySize;
  if (m.messageId) attributes[ATTR_MESSAGING_MESSAGE_ID] = m.messageId;
  if (m.correlationId) attributes[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = m.correlationId;
  // The same at both ends of a message: its exchange and routing key (a delivery names them as its publish did).
  const route = `${m.exchange ?? ''} ${m.routingKey ?? ''}`;
  const span = messageSpan(
    publish ? 'producer' : 'consumer',
    `${operation} ${destination}`,
    attributes,
    route,
    m,
    connection,
    messageKey('amqp', route, m.bodySize ?? 0, m.payloadDigest),
  );
  if (get) return { is: 'request', span, key: keyOf(m.channel, 0) };
  return publish && m.deliveryTag !== undefined ? { is: 'request', span, key: keyOf(m.channel, m.deliveryTag) } : { is: 'one-way', span };
}

function respond(span: SpanDraft, answer: AmqpMessage): void {
  if (answer.method === 'basic.nack') span.status = { code: 'error', message: 'basic.nack: the broker did not take the message' };
}

const FIELDS = [
  'channel',
  'exchange',
  'routingKey',
  'queue',
  'consumerTag',
  'deliveryTag',
  'multiple',
  'bodySize',
  'contentType',
  'headers',
  'traceparent',
  'tracestate',
  'messageId',
  'correlationId',
  'replyTo',
  'deliveryMode',
  'replyCode',
  'replyText',
  'messageCount',
  'vhost',
  'mechanism',
] as const;

function record(m: AmqpMessage): Record<string, unknown> {
  const r: Record<string, unknown> = { method: m.method };
  for (const k of FIELDS) if (m[k] !== undefined) r[k] = m[k];
  return r;
}

export const amqpModule: ProtocolModule<AmqpMessage, 'amqp'> = {
  name: 'amqp',
  family: 'messaging',
  detect: { verdict: detectAmqp, frames: amqpFrames },
  parseErrors: AMQP_ERROR,
  parser: () => new AmqpParser(),
  // A confirm names its publish's sequence number on its channel; a get's answer comes on the get's channel.
  pairing: { answers: 'by-key', acrossConnection: 'same-bytes', servesCalls: false, goClientCalls: false },
  role,
  respond,
  record,
  summary: (r) =>
    [r.method, r.channel !== undefined ? `ch ${r.channel}` : undefined, r.exchange || r.routingKey || r.queue, r.bodySize !== undefined ? `${r.bodySize} B` : undefined]
      .filter((x) => x !== undefined && x !== '')
      .join(' '),
  masking: { client: amqpMasker },
};
