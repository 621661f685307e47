/**
 * Kafka from a client's request: a size, an API key and version Kafka
 * defines, a correlation id and a printable client id that fits. A server
 * speaks only when asked, so its bytes are Kafka by their framing once the
 * client's named it.
 */
import type { ModuleVerdict } from '../module';
import { framesChain, NEED_MORE, seenFrom } from '../shared/detection';
import { decodeRequest, type Fields } from './apis';
import { API, isFlexible, MAX_API_KEY } from './messages';
import { KafkaReader, whole } from './reader';

const NAMED: ReadonlySet<number> = new Set(Object.values(API));

export function detectKafka(b: Buffer): ModuleVerdict {
  if (b.length < 14) return b.length >= 4 && b.readInt32BE(0) > 0 && b.readInt32BE(0) < 1 << 24 && b[0] === 0 ? NEED_MORE : undefined;
  const size = b.readInt32BE(0);
  const apiKey = b.readInt16BE(4);
  const version = b.readInt16BE(6);
  const clientId = b.readInt16BE(12);
  if (size < 10 || size > 100 * 1024 * 1024 || apiKey < 0 || apiKey > MAX_API_KEY || !NAMED.has(apiKey) || version < 0 || version > 20) return undefined;
  if (clientId < -1 || clientId > size - 10) return undefined;
  const id = b.subarray(14, 14 + Math.max(0, clientId));
  if (id.length < clientId && b.length < 14 + clientId) return NEED_MORE;
  for (const c of id) if (c < 0x20 || c > 0x7e) return undefined;
  // Held in part, a request must name its client (every client library does: rdkafka, the Java client, kafkajs, franz-go, sarama):
  // an HTTP/2 server's SETTINGS frame reads as a Produce v0 with an empty client id.
  if (b.length < 4 + size && clientId < 1) return undefined;
  // A response read as a request has its correlation id where the API key and version are (a small id
  // reads as Produce v-id): when the message is held whole, its body must decode within its size.
  if (b.length >= 4 + size && !decodesWhole(b.subarray(0, 4 + size), apiKey, version, clientId)) return undefined;
  return seenFrom('client', apiKey === API.ApiVersions || apiKey === API.SaslHandshake);
}

/** Whole size-framed messages, once the client's bytes named Kafka. */
export const kafkaFrames = (b: Buffer): boolean => {
  const v = framesChain(
    b,
    8,
    (at) => 4 + b.readInt32BE(at),
    () => seenFrom(undefined, false),
  );
  return v !== undefined && v !== NEED_MORE;
};

function decodesWhole(message: Buffer, apiKey: number, version: number, clientId: number): boolean {
  const r = new KafkaReader(message, 14 + Math.max(0, clientId), message.length, isFlexible(apiKey, version));
  const f: Fields = {};
  const read = whole(() => {
    r.tags();
    decodeRequest(apiKey, version, r, f, { topicNames: new Map() });
  });
  if (!read) return false;
  // A Produce names acks -1, 0 or 1 and at least one partition's records (a response read as one rarely does both).
  return apiKey !== API.Produce || ((f.acks === -1 || f.acks === 0 || f.acks === 1) && (f.records ?? 0) > 0);
}
