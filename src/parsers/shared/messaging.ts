/** What the messaging modules (NATS, MQTT, Kafka, AMQP) share in the span of a message published or received. */
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@opentelemetry/semantic-conventions';
import type { ConnectionView, SpanStart } from '../module';
import type { Attributes } from '../spans';

/**
 * A message's span: named `OPERATION DESTINATION`, with the module's attributes and the broker's address
 * after them, and the trace context the message carried. `fingerprint` is what both ends of the message
 * see alike (a consumer finds its producer by it and the context both carry); `messages` the identities of
 * the messages themselves, when the module can tell them (SpanStart.messages).
 */
export function messageSpan(
  kind: 'producer' | 'consumer',
  name: string,
  attributes: Attributes,
  fingerprint: string,
  carried: { traceparent?: string | undefined; tracestate?: string | undefined },
  connection: ConnectionView,
  messages?: string[],
): SpanStart {
  if (connection.remote) {
    attributes[ATTR_SERVER_ADDRESS] = connection.remote.addr;
    attributes[ATTR_SERVER_PORT] = connection.remote.port;
  }
  return {
    name,
    kind,
    attributes,
    family: 'messaging',
    fingerprint,
    ...(carried.traceparent !== undefined ? { traceparent: carried.traceparent } : {}),
    ...(carried.tracestate !== undefined ? { tracestate: carried.tracestate } : {}),
    ...(messages?.length ? { messages } : {}),
  };
}

/** Payload bytes a message is known by: enough to tell apart the messages of a destination (ids, counters, timestamps lead most payloads). */
export const PAYLOAD_ID_BYTES = 64;

/**
 * A message's identity as both ends of a broker see it, for a consumer to link to its producer
 * (SpanStart.messages): its destination, length and a digest (FNV-1a) of its first PAYLOAD_ID_BYTES.
 * Undefined when those bytes are not all in `b[at, end)` (a payload cut short by the capture). Kept in
 * memory only, never written: a digest of a short payload could be reversed.
 */
export function payloadId(protocol: string, destination: string, length: number, b: Uint8Array, at: number, end: number): string | undefined {
  const n = Math.min(length, PAYLOAD_ID_BYTES);
  if (end - at < n) return undefined;
  let hash = 0x811c9dc5;
  for (let i = at; i < at + n; i++) hash = Math.imul(hash ^ b[i]!, 0x01000193);
  return `${protocol} ${destination} ${length} ${(hash >>> 0).toString(16)}`;
}
