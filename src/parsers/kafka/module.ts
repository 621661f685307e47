/**
 * Kafka as a protocol module. A watched client's Produce is a PRODUCER span
 * (`send TOPIC`) ended by the broker's response for its correlation id (a
 * Produce with acks=0 gets none and ends with itself); a Fetch response
 * that brings records is a CONSUMER span (`poll TOPIC`) that ends with it —
 * the records arrive with the response, and so does their trace context,
 * which a span's parent must be known at its start for. A `traceparent`
 * record header parents the span: a consumer joins the trace of the
 * producer that sent the record (the first record that carried one, for a
 * batch). Other APIs (Metadata, group membership, offsets) are parsed for
 * `loupe parse` and make no span; a watched broker makes none.
 */
import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  ATTR_MESSAGING_KAFKA_OFFSET,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
} from '@opentelemetry/semantic-conventions/incubating';
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import type { ConnectionView, MessageRole, ProtocolModule } from '../module';
import { messageSpan } from '../shared/messaging';
import type { Attributes, SpanDraft } from '../spans';
import { detectKafka, kafkaFrames } from './detect';
import { kafkaMasker } from './masker';
import { API, errorName, KAFKA_ERROR, type KafkaMessage } from './messages';
import { KafkaParser } from './parser';

function role(m: KafkaMessage, connection: ConnectionView): MessageRole {
  if (connection.role !== 'client' || m.error !== undefined || m.correlationId === undefined) return { is: 'none' };
  if (m.apiKey === API.Produce && m.kind === 'response') return { is: 'response', key: m.correlationId };
  const produce = m.apiKey === API.Produce && m.kind === 'request';
  const fetched = m.apiKey === API.Fetch && m.kind === 'response' && (m.records ?? 0) > 0;
  if (!produce && !fetched) return { is: 'none' };
  const withRecords = (m.topics ?? []).filter((t) => t.partitions.some((p) => (p.records ?? 0) > 0));
  const topic = (withRecords[0] ?? m.topics?.[0])?.name ?? 'unknown';
  const operation = produce ? 'send' : 'poll';
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: 'kafka',
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: produce ? 'send' : 'receive',
    [ATTR_MESSAGING_DESTINATION_NAME]: topic,
  };
  const partitions = withRecords.flatMap((t) => t.partitions.filter((p) => (p.records ?? 0) > 0));
  if (withRecords.length === 1 && partitions.length === 1) attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID] = String(partitions[0]!.partition);
  if (m.records !== undefined) attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = m.records;
  if (!produce && partitions[0]?.baseOffset !== undefined) attributes[ATTR_MESSAGING_KAFKA_OFFSET] = partitions[0].baseOffset;
  if (m.clientId) attributes[ATTR_MESSAGING_CLIENT_ID] = m.clientId;
  // The same at both ends of a record: its topic (a consumer finds its producer by it and the context both carry).
  // A batch is known by its partition and CRC at both ends (the broker rewrites only its base offset and leader epoch, outside the CRC).
  const batches = (m.topics ?? []).flatMap((t) => t.partitions.flatMap((p) => (p.batches ?? []).map((crc) => `kafka ${p.partition} ${crc}`)));
  const span = messageSpan(produce ? 'producer' : 'consumer', `${operation} ${topic}`, attributes, topic, m, connection, batches);
  return produce && m.acks !== 0 ? { is: 'request', span, key: m.correlationId } : { is: 'one-way', span };
}

function respond(span: SpanDraft, answer: KafkaMessage): void {
  const offset = answer.topics?.[0]?.partitions[0]?.baseOffset;
  if (offset !== undefined && offset >= 0) span.attributes[ATTR_MESSAGING_KAFKA_OFFSET] = offset;
  if (answer.errorCode !== undefined && answer.errorCode !== 0) {
    span.attributes[ATTR_ERROR_TYPE] = errorName(answer.errorCode);
    span.status = { code: 'error', message: errorName(answer.errorCode) };
  }
}

const FIELDS = [
  'apiKey',
  'apiVersion',
  'correlationId',
  'clientId',
  'acks',
  'transactionalId',
  'topics',
  'records',
  'compressed',
  'traceparent',
  'tracestate',
  'errorCode',
  'groupId',
  'memberId',
  'groupInstanceId',
  'generationId',
  'protocolType',
  'protocols',
  'leader',
  'members',
  'coordinatorKey',
  'apis',
  'brokers',
] as const;

function record(m: KafkaMessage): Record<string, unknown> {
  const r: Record<string, unknown> = { api: m.api };
  for (const k of FIELDS) if (m[k] !== undefined) r[k] = m[k];
  return r;
}

function summary(r: Record<string, unknown>): string {
  const topics = (r.topics as Array<{ name: string }> | undefined)?.map((t) => t.name).join(',');
  return [
    r.api,
    `v${r.apiVersion}`,
    `#${r.correlationId}`,
    topics,
    r.records !== undefined ? `${r.records} records` : undefined,
    r.errorCode ? errorName(r.errorCode as number) : undefined,
  ]
    .filter((x) => x !== undefined && x !== '' && x !== 'vundefined' && x !== '#undefined')
    .join(' ');
}

export const kafkaModule: ProtocolModule<KafkaMessage, 'kafka'> = {
  name: 'kafka',
  family: 'messaging',
  detect: { verdict: detectKafka, frames: kafkaFrames },
  parseErrors: KAFKA_ERROR,
  parser: (options) => new KafkaParser(options.shared),
  // A response names its request's correlation id (a client may pipeline several requests on a connection).
  pairing: { answers: 'by-key', acrossConnection: 'same-bytes', servesCalls: false, goClientCalls: false },
  role,
  respond,
  record,
  summary,
  masking: { client: kafkaMasker },
};
