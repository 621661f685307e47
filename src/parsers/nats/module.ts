/**
 * NATS as a protocol module. A watched client's PUB and HPUB are PRODUCER
 * spans and the MSG and HMSG delivered to it CONSUMER spans, each one-way
 * (NATS answers a publish with nothing, or a bare +OK in verbose mode): a
 * span that ends with its message — except a request (request-reply), a
 * publish whose reply subject is an inbox, which ends when the reply is
 * delivered to that inbox. Trace context in a message's headers is
 * the span's parent — a consumer joins the trace of the publish that sent it.
 * A watched server (the broker) makes no spans: what it relays is the
 * clients' spans already.
 */
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
} from '@opentelemetry/semantic-conventions/incubating';
import type { ConnectionView, MessageRole, ProtocolModule } from '../module';
import { messageKey, messageSpan } from '../shared/messaging';
import type { Attributes } from '../spans';
import { detectNats } from './detect';
import { NatsMasker } from './masker';
import { NATS_ERROR, type NatsMessage } from './messages';
import { NatsParser } from './parser';

/** NATS's attributes beside OpenTelemetry's messaging ones (which name none for NATS), in the messaging.<system>.* pattern. */
export const NATS_ATTR = { REPLY_TO: 'messaging.nats.reply_to' } as const;

/** The inbox prefix every official NATS client gives the subjects replies come to (`_INBOX.` and a unique token). */
const INBOX = '_INBOX.';

/** A reply subject as a pairing key (FNV-1a, 32 bits): a request and the reply delivered to its inbox share it. */
function inboxKey(subject: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < subject.length; i++) h = Math.imul(h ^ subject.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function role(m: NatsMessage, connection: ConnectionView): MessageRole {
  if (connection.role !== 'client' || m.subject === undefined) return { is: 'none' };
  const publish = m.op === 'PUB' || m.op === 'HPUB';
  const deliver = m.op === 'MSG' || m.op === 'HMSG';
  if (!publish && !deliver) return { is: 'none' };
  // Request-reply: a delivery to an inbox is the reply that ends the request published with that inbox as its reply subject.
  if (deliver && m.subject.startsWith(INBOX)) return { is: 'response', key: inboxKey(m.subject) };
  const operation = publish ? 'publish' : 'process';
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: 'nats',
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: publish ? 'send' : 'process',
    [ATTR_MESSAGING_DESTINATION_NAME]: m.subject,
  };
  if (m.bytes !== undefined) attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = m.bytes;
  // The same at both ends of a message: its subject (a consumer finds its producer by it and the context both carry).
  const span = messageSpan(
    publish ? 'producer' : 'consumer',
    `${operation} ${m.subject}`,
    attributes,
    m.subject,
    m,
    connection,
    messageKey('nats', m.subject, m.bytes ?? 0, m.payloadDigest),
  );
  if (publish && m.replyTo?.startsWith(INBOX)) span.attributes[NATS_ATTR.REPLY_TO] = m.replyTo;
  // A request waits for its reply; every other publish and delivery ends with itself.
  return publish && m.replyTo?.startsWith(INBOX) ? { is: 'request', span, key: inboxKey(m.replyTo) } : { is: 'one-way', span };
}

function record(m: NatsMessage): Record<string, unknown> {
  const r: Record<string, unknown> = { op: m.op };
  for (const k of ['subject', 'sid', 'replyTo', 'queue', 'bytes', 'headers', 'traceparent', 'tracestate', 'errorMessage'] as const) if (m[k] !== undefined) r[k] = m[k];
  return r;
}

export const natsModule: ProtocolModule<NatsMessage, 'nats'> = {
  name: 'nats',
  family: 'messaging',
  detect: { verdict: detectNats },
  parseErrors: NATS_ERROR,
  parser: () => new NatsParser(),
  // A request's reply comes to its inbox (by-key: replies to concurrent requests come in any order); other publishes and deliveries are one-way.
  pairing: { answers: 'by-key', acrossConnection: 'same-bytes', servesCalls: false, goClientCalls: false },
  role,
  respond: () => {},
  record,
  summary: (r) => [r.op, r.subject, r.bytes !== undefined ? `${r.bytes} B` : undefined].filter((x) => x !== undefined).join(' '),
  masking: { client: () => new NatsMasker() },
};
