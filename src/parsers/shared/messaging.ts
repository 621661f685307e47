/** What the messaging modules (NATS, MQTT, Kafka, AMQP) share in the span of a message published or received. */
import { ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@opentelemetry/semantic-conventions';
import type { ConnectionView, SpanStart } from '../module';
import type { Attributes } from '../spans';

/**
 * A message's span: named `OPERATION DESTINATION`, with the module's attributes and the broker's address
 * after them, and the trace context the message carried. `fingerprint` is what both ends of the message
 * see alike (a consumer finds its producer by it and the context both carry).
 */
export function messageSpan(
  kind: 'producer' | 'consumer',
  name: string,
  attributes: Attributes,
  fingerprint: string,
  carried: { traceparent?: string | undefined; tracestate?: string | undefined },
  connection: ConnectionView,
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
  };
}
