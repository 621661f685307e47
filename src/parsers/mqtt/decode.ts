/**
 * One MQTT control packet's fields, from its bytes after the fixed header:
 * the whole packet, or the first bytes of a large one (a PUBLISH's payload
 * is counted, not held). Reads are bounded; a field that runs past the bytes
 * ends the decoding: quietly when only a prefix was held, as a malformed
 * packet when the packet was whole.
 */
import { BoundedReader, whole } from '../shared/bounded-reader';
import { payloadDigest } from '../shared/messaging';
import { FIXED_SIZE, PROPERTY, PROPERTY_TYPES, varint } from './wire';
import type { MqttMessage, PacketType } from './messages';

export type Fields = Partial<Omit<MqttMessage, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset' | 'packet'>>;

/** A property MQTT 5 does not define: the rest of the packet cannot be read. Caught in decodePacket. */
class UnknownProperty extends Error {}

class Reader extends BoundedReader {
  varint(): number {
    const v = varint(this.b, this.at, this.end);
    if (v === undefined || v === 'more') return this.stop();
    this.at += v[1];
    return v[0];
  }

  /** A UTF-8 string or binary data: two bytes of length, then the bytes. */
  string(): string {
    return this.text(this.u16());
  }

  /** A properties block that does not end where its length says. */
  misframed(): never {
    return this.stop();
  }
}

/** What a connection's two directions share while decoding: the level CONNECT named, topic aliases per direction. */
export interface ConnectionState {
  version: 3 | 4 | 5 | undefined;
  /** Heard a packet only MQTT 5 sends, on a connection met mid-way. */
  seenV5: boolean;
  aliases: Record<'client' | 'server', Map<number, string>>;
}

const isV5 = (s: ConnectionState) => s.version === 5 || (s.version === undefined && s.seenV5);

/** MQTT 5 properties: a length, then identifier and value pairs; user properties counted, trace context and a reason string kept. */
function properties(r: Reader, f: Fields): { topicAlias?: number } {
  const length = r.varint();
  const end = r.at + length;
  const out: { topicAlias?: number } = {};
  while (r.at < end) {
    const id = r.varint();
    const type = PROPERTY_TYPES.get(id);
    if (type === undefined) throw new UnknownProperty(`property 0x${id.toString(16)}`);
    if (type === 'pair') {
      const name = r.string();
      const value = r.string();
      f.userProperties = (f.userProperties ?? 0) + 1;
      const lower = name.toLowerCase();
      if (lower === 'traceparent') f.traceparent = value;
      else if (lower === 'tracestate') f.tracestate = value;
    } else if (type === 'string') {
      const s = r.string();
      if (id === PROPERTY.REASON_STRING) f.reasonString = s;
    } else if (type === 'binary') r.string();
    else if (type === 'varint') r.varint();
    else if (id === PROPERTY.TOPIC_ALIAS) out.topicAlias = r.u16();
    else r.skip(FIXED_SIZE[type]!);
  }
  if (r.at !== end) r.misframed();
  return out;
}

/**
 * The fields of a packet of `type` with `flags`, from `b[at, end)`, into `f`;
 * `state` learns the connection's level and aliases. What stopped the
 * decoding early: its fields ran past the bytes (`short`), or a property MQTT
 * 5 does not define (named).
 */
export function decodePacket(
  type: PacketType,
  flags: number,
  b: Buffer,
  at: number,
  end: number,
  remaining: number,
  side: 'client' | 'server',
  state: ConnectionState,
  f: Fields,
): { short: true } | { unknownProperty: string } | undefined {
  try {
    return whole(() => readFields(type, flags, new Reader(b, at, end), at, remaining, side, state, f)) ? undefined : { short: true };
  } catch (e) {
    if (e instanceof UnknownProperty) return { unknownProperty: e.message };
    throw e;
  }
}

function readFields(type: PacketType, flags: number, r: Reader, at: number, remaining: number, side: 'client' | 'server', state: ConnectionState, f: Fields): void {
  // MQTT 3.1.1 acknowledgements are exactly two bytes (the packet identifier); longer ones are MQTT 5's.
  if (state.version === undefined && ((['CONNACK', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'UNSUBACK'].includes(type) && remaining > 2) || type === 'AUTH')) state.seenV5 = true;
  switch (type) {
    case 'CONNECT': {
      const name = r.string();
      const level = r.u8();
      if (level === 3 || level === 4 || level === 5) state.version = level;
      f.version = state.version;
      const connectFlags = r.u8();
      f.keepAlive = r.u16();
      f.username = (connectFlags & 0x80) !== 0;
      f.password = (connectFlags & 0x40) !== 0;
      if (name !== 'MQTT' && name !== 'MQIsdp') return;
      if (level === 5) properties(r, f);
      f.clientId = r.string();
      return;
    }
    case 'CONNACK':
      r.u8();
      f.reasonCode = r.u8();
      if (isV5(state) && r.left > 0) properties(r, f);
      return;
    case 'PUBLISH': {
      const qos = (flags >> 1) & 3;
      f.qos = qos as 0 | 1 | 2;
      f.retain = (flags & 1) !== 0;
      f.dup = (flags & 8) !== 0;
      let topic = r.string();
      if (qos > 0) f.packetId = r.u16();
      const headerEnd = () => r.at - at;
      if (isV5(state)) {
        const { topicAlias } = properties(r, f);
        const aliases = state.aliases[side];
        if (topicAlias !== undefined) {
          if (topic !== '') aliases.set(topicAlias, topic);
          else topic = aliases.get(topicAlias) ?? `alias ${topicAlias}`;
        }
      }
      f.topic = topic;
      f.bytes = remaining - headerEnd();
      const digest = payloadDigest(f.bytes, r.b, r.at, r.end);
      if (digest !== undefined) f.payloadDigest = digest;
      return;
    }
    case 'PUBACK':
    case 'PUBREC':
    case 'PUBREL':
    case 'PUBCOMP':
      f.packetId = r.u16();
      if (r.left > 0) {
        f.reasonCode = r.u8();
        if (r.left > 0) properties(r, f);
      }
      return;
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      f.packetId = r.u16();
      if (isV5(state)) properties(r, f);
      const topics: string[] = [];
      f.topics = topics;
      while (r.left > 0) {
        topics.push(r.string());
        if (type === 'SUBSCRIBE') r.u8();
      }
      return;
    }
    case 'SUBACK':
    case 'UNSUBACK': {
      f.packetId = r.u16();
      if (isV5(state)) properties(r, f);
      const codes: number[] = [];
      while (r.left > 0) codes.push(r.u8());
      if (codes.length > 0) f.reasonCodes = codes;
      return;
    }
    case 'DISCONNECT':
    case 'AUTH':
      if (r.left > 0) {
        f.reasonCode = r.u8();
        if (r.left > 0) properties(r, f);
      }
      return;
    default:
      return; // PINGREQ, PINGRESP: no fields
  }
}
