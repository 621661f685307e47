/**
 * MQTT 3.1, 3.1.1 and 5 control packets (OASIS MQTT 3.1.1 and 5.0, section 2
 * and 3): one message per packet, payloads counted and never kept.
 */
import { LOST_BYTES_ERROR, type MessageBase } from '../types';

export const MQTT_ERROR = {
  /** A packet type of 0, or fixed-header flags the type forbids (PUBREL, SUBSCRIBE and UNSUBSCRIBE must say 0010, PUBLISH must not say QoS 3). */
  INVALID_HEADER: 'MQTT_INVALID_HEADER',
  /** A Remaining Length of more than four bytes. */
  INVALID_LENGTH: 'MQTT_INVALID_LENGTH',
  /** A packet whose fields run past its Remaining Length, or a property MQTT 5 does not define. */
  MALFORMED_PACKET: 'MQTT_MALFORMED_PACKET',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

/** The packet types, by their number in the fixed header's upper four bits. */
export const PACKET_TYPES = [
  undefined,
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
] as const;

export type PacketType = Exclude<(typeof PACKET_TYPES)[number], undefined> | 'Unparsable';

export interface MqttMessage extends MessageBase {
  protocol: 'mqtt';
  /** What the client sends is a `request`, what the broker sends a `response` (pairing is the module's: by packet identifier). */
  kind: 'request' | 'response';
  packet: PacketType;
  /** The protocol level the connection's CONNECT named (3: 3.1, 4: 3.1.1, 5: 5.0); absent when the connection was met mid-way and nothing told. */
  version?: 3 | 4 | 5;
  /** PUBLISH: its topic (resolved through the connection's topic aliases in MQTT 5); SUBSCRIBE, UNSUBSCRIBE: the filters. */
  topic?: string;
  topics?: string[];
  /** PUBLISH: quality of service, retain and duplicate flags. */
  qos?: 0 | 1 | 2;
  retain?: boolean;
  dup?: boolean;
  /** The packet identifier of a QoS 1 or 2 PUBLISH, its acknowledgements, SUBSCRIBE, UNSUBSCRIBE and their acknowledgements. */
  packetId?: number;
  /** PUBLISH: payload bytes, and a digest of its first bytes, for linking its deliveries to it (shared/messaging.ts; never output). */
  bytes?: number;
  payloadDigest?: number;
  /** CONNACK's return code (3.1.1) or reason code (5), and the acknowledgements' reason codes (5); SUBACK and UNSUBACK: one per filter. */
  reasonCode?: number;
  reasonCodes?: number[];
  /** CONNECT: client identifier and keep-alive seconds; whether it named a user and a password (never their values). */
  clientId?: string;
  keepAlive?: number;
  username?: boolean;
  password?: boolean;
  /** MQTT 5: user properties counted; trace context ones kept. */
  userProperties?: number;
  traceparent?: string;
  tracestate?: string;
  /** MQTT 5: a reason string the packet carried. */
  reasonString?: string;
}
