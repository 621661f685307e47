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
 * A digest (FNV-1a, word-wise) of a message's first PAYLOAD_ID_BYTES, `b[at, end)` holding them: with its
 * destination and length (messageKey) it is the message's identity as both ends of a broker see it, for a
 * consumer to link to its producer (SpanStart.messages). Undefined when those bytes are not all held (a
 * payload cut short by the capture). A number, so a parser pays no string per message; kept in memory only,
 * never written: a digest of a short payload could be reversed.
 */
export function payloadDigest(length: number, b: Uint8Array, at: number, end: number): number | undefined {
  const n = Math.min(length, PAYLOAD_ID_BYTES);
  if (end - at < n) return undefined;
  let hash = 0x811c9dc5;
  let i = at;
  for (const words = at + (n & ~3); i < words; i += 4) hash = Math.imul(hash ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)), 0x01000193);
  for (; i < at + n; i++) hash = Math.imul(hash ^ b[i]!, 0x01000193);
  return hash >>> 0;
}

/** The identity of a message with a payload digest, built only where a span is made (a module's role). */
export function messageKey(protocol: string, destination: string, length: number, digest: number | undefined): string[] | undefined {
  return digest === undefined ? undefined : [`${protocol} ${destination} ${length} ${digest}`];
}
