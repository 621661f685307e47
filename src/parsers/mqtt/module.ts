/**
 * MQTT as a protocol module. A watched client's PUBLISH is a PRODUCER span
 * and a PUBLISH the broker delivers to it a CONSUMER span. QoS 0 publishes
 * get no answer (their span ends with them); QoS 1 and 2 publishes end at
 * the broker's PUBACK or PUBCOMP for their packet identifier, so the span
 * measures the broker's acknowledgement. MQTT 5 user properties carry trace
 * context (`traceparent`), which parents the span — a delivery joins the
 * trace of the publish that sent it. A watched broker makes no spans: what
 * it relays is the clients' spans already.
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
import type { Attributes, SpanDraft } from '../spans';
import { detectMqtt, mqttFrames } from './detect';
import { mqttMasker } from './masker';
import { MQTT_ERROR, type MqttMessage } from './messages';
import { MqttParser } from './parser';

/** MQTT's attributes beside OpenTelemetry's messaging ones (which name none for MQTT), in the messaging.<system>.* pattern. */
export const MQTT_ATTR = { QOS: 'messaging.mqtt.qos', RETAIN: 'messaging.mqtt.retain', PACKET_ID: 'messaging.mqtt.packet_id' } as const;

/** Reason codes of 0x80 and above are failures (MQTT 5 section 2.4). */
const failed = (code: number | undefined) => code !== undefined && code >= 0x80;

function role(m: MqttMessage, connection: ConnectionView): MessageRole {
  if (connection.role !== 'client' || m.error !== undefined) return { is: 'none' };
  if (m.packet === 'PUBACK' || m.packet === 'PUBCOMP' || (m.packet === 'PUBREC' && failed(m.reasonCode)))
    return m.kind === 'response' && m.packetId !== undefined ? { is: 'response', key: m.packetId } : { is: 'none' };
  if (m.packet !== 'PUBLISH' || m.topic === undefined) return { is: 'none' };
  const publish = m.kind === 'request';
  const operation = publish ? 'publish' : 'process';
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: 'mqtt',
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: publish ? 'send' : 'process',
    [ATTR_MESSAGING_DESTINATION_NAME]: m.topic,
    [MQTT_ATTR.QOS]: m.qos ?? 0,
  };
  if (m.retain) attributes[MQTT_ATTR.RETAIN] = true;
  if (m.packetId !== undefined) attributes[MQTT_ATTR.PACKET_ID] = m.packetId;
  if (m.bytes !== undefined) attributes[ATTR_MESSAGING_MESSAGE_BODY_SIZE] = m.bytes;
  // The same at both ends of a message: its topic (a consumer finds its producer by it and the context both carry).
  const span = messageSpan(
    publish ? 'producer' : 'consumer',
    `${operation} ${m.topic}`,
    attributes,
    m.topic,
    m,
    connection,
    messageKey('mqtt', m.topic, m.bytes ?? 0, m.payloadDigest),
  );
  // A client's QoS 1 or 2 publish waits for the broker's acknowledgement of its packet identifier; the rest end with themselves.
  return publish && m.qos !== 0 && m.packetId !== undefined ? { is: 'request', span, key: m.packetId } : { is: 'one-way', span };
}

function respond(span: SpanDraft, answer: MqttMessage): void {
  if (failed(answer.reasonCode)) {
    span.status = { code: 'error', message: answer.reasonString ?? `${answer.packet} reason code 0x${answer.reasonCode!.toString(16)}` };
  }
}

const FIELDS = [
  'version',
  'topic',
  'topics',
  'qos',
  'retain',
  'dup',
  'packetId',
  'bytes',
  'reasonCode',
  'reasonCodes',
  'clientId',
  'keepAlive',
  'username',
  'password',
  'userProperties',
  'traceparent',
  'tracestate',
  'reasonString',
] as const;

function record(m: MqttMessage): Record<string, unknown> {
  const r: Record<string, unknown> = { packet: m.packet };
  for (const k of FIELDS) if (m[k] !== undefined) r[k] = m[k];
  return r;
}

export const mqttModule: ProtocolModule<MqttMessage, 'mqtt'> = {
  name: 'mqtt',
  family: 'messaging',
  detect: { verdict: detectMqtt, frames: mqttFrames },
  parseErrors: MQTT_ERROR,
  parser: () => new MqttParser(),
  // A publish's acknowledgement names its packet identifier; acknowledgements of different publishes may come in any order across QoS levels.
  pairing: { answers: 'by-key', acrossConnection: 'same-bytes', servesCalls: false, goClientCalls: false },
  role,
  respond,
  record,
  summary: (r) =>
    [r.packet, r.topic, r.qos !== undefined ? `qos ${r.qos}` : undefined, r.bytes !== undefined ? `${r.bytes} B` : undefined].filter((x) => x !== undefined).join(' '),
  masking: { client: () => mqttMasker() },
};
