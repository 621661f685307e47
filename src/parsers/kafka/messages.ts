/**
 * Apache Kafka's wire protocol (kafka.apache.org/protocol): requests and
 * responses framed by a 4-byte size, a request header naming the API, its
 * version and a correlation id the response repeats. One message per
 * request or response; record values are counted, never kept.
 */
import { LOST_BYTES_ERROR, type MessageBase } from '../types';

export const KAFKA_ERROR = {
  /** A size under the smallest header, or over what a broker accepts (socket.request.max.bytes is 100 MiB by default). */
  INVALID_SIZE: 'KAFKA_INVALID_SIZE',
  /** A request whose API key or version no Kafka release defines. */
  UNKNOWN_API: 'KAFKA_UNKNOWN_API',
  /** Fields that run past the message's size, or a length no field can have. */
  MALFORMED: 'KAFKA_MALFORMED',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

/** API keys by name: those decoded in full, and the rest named (their header is read). */
export const API = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  AddPartitionsToTxn: 24,
  AddOffsetsToTxn: 25,
  EndTxn: 26,
  TxnOffsetCommit: 28,
  DescribeConfigs: 32,
  SaslAuthenticate: 36,
  ConsumerGroupHeartbeat: 68,
  GetTelemetrySubscriptions: 71,
  PushTelemetry: 72,
} as const;

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(API).map(([name, key]) => [key, name]));

/** The largest API key Kafka 4.1 defines; requests above it are not Kafka's. */
export const MAX_API_KEY = 90;

export const apiName = (key: number): string => NAMES.get(key) ?? `api ${key}`;

/**
 * The first version of each API whose messages are "flexible" (KIP-482: compact
 * strings and arrays, tagged fields). An API missing here is read as never
 * flexible, which only its header needs (its body is not decoded).
 */
// prettier-ignore
export const FIRST_FLEXIBLE: ReadonlyMap<number, number> = new Map([
  [0, 9], [1, 12], [2, 6], [3, 9], [8, 8], [9, 6], [10, 3], [11, 6], [12, 4], [13, 4], [14, 4], [15, 5], [16, 3],
  [18, 3], [19, 5], [20, 4], [22, 2], [24, 3], [25, 3], [26, 3], [28, 3], [32, 4], [36, 2],
  // Every API added since KIP-482 is flexible from its first version.
  ...Array.from({ length: MAX_API_KEY - 49 }, (_, i) => [i + 50, 0] as [number, number]),
]);

export const isFlexible = (apiKey: number, version: number): boolean => version >= (FIRST_FLEXIBLE.get(apiKey) ?? Infinity);

/** Kafka's error codes a span's status names (the rest by number). */
// prettier-ignore
export const ERROR_NAMES: ReadonlyMap<number, string> = new Map([
  [-1, 'UNKNOWN_SERVER_ERROR'], [1, 'OFFSET_OUT_OF_RANGE'], [2, 'CORRUPT_MESSAGE'], [3, 'UNKNOWN_TOPIC_OR_PARTITION'],
  [5, 'LEADER_NOT_AVAILABLE'], [6, 'NOT_LEADER_OR_FOLLOWER'], [7, 'REQUEST_TIMED_OUT'], [10, 'MESSAGE_TOO_LARGE'],
  [14, 'COORDINATOR_LOAD_IN_PROGRESS'], [15, 'COORDINATOR_NOT_AVAILABLE'], [16, 'NOT_COORDINATOR'], [17, 'INVALID_TOPIC_EXCEPTION'],
  [19, 'NOT_ENOUGH_REPLICAS'], [22, 'ILLEGAL_GENERATION'], [25, 'UNKNOWN_MEMBER_ID'], [27, 'REBALANCE_IN_PROGRESS'],
  [29, 'TOPIC_AUTHORIZATION_FAILED'], [30, 'GROUP_AUTHORIZATION_FAILED'], [31, 'CLUSTER_AUTHORIZATION_FAILED'],
  [35, 'UNSUPPORTED_VERSION'], [36, 'TOPIC_ALREADY_EXISTS'], [58, 'SASL_AUTHENTICATION_FAILED'], [79, 'MEMBER_ID_REQUIRED'],
  [87, 'INVALID_RECORD'], [100, 'UNKNOWN_TOPIC_ID'],
]);

export const errorName = (code: number): string => ERROR_NAMES.get(code) ?? `error ${code}`;

/** A partition of a topic in a request or response: what Loupe reads of it. */
export interface KafkaPartition {
  partition: number;
  errorCode?: number;
  /** Produce, Fetch: records in the partition's batches, and their bytes as the batches say. */
  records?: number;
  recordBytes?: number;
  /** Produce, Fetch: the CRC of each v2 record batch, which both ends of the broker see alike. */
  batches?: number[];
  /** Produce response: the first record's offset; Fetch: the first record's offset and the partition's high watermark. */
  baseOffset?: number;
  highWatermark?: number;
  /** Fetch and ListOffsets requests: the offset asked for; OffsetCommit: the offset committed. */
  offset?: number;
}

export interface KafkaTopic {
  /** Its name; for a topic named by id only (Fetch v13+) the name a Metadata response on the connection gave, or `unknown`. */
  name: string;
  /** Fetch v13+ and Produce v13+: the topic id. */
  topicId?: string;
  partitions: KafkaPartition[];
}

export interface KafkaMessage extends MessageBase {
  protocol: 'kafka';
  kind: 'request' | 'response';
  /** The API's name (`Produce`, `Fetch`, …; `api N` for one not named here; `SaslToken` for the raw token after a SaslHandshake v0). */
  api: string;
  apiKey?: number;
  apiVersion?: number;
  correlationId?: number;
  clientId?: string;
  /** Produce: the acknowledgements asked for (0: none, no response comes) and the transactional id. */
  acks?: number;
  transactionalId?: string;
  topics?: KafkaTopic[];
  /** Records over all partitions (Produce requests, Fetch responses). */
  records?: number;
  /** Batches whose records are compressed with a codec Loupe does not inflate (snappy, lz4, zstd): counted, headers not read. */
  compressed?: string;
  /** Trace context from the first record header that carried it. */
  traceparent?: string;
  tracestate?: string;
  /** The response's error: its top-level code, else the first partition's that is not 0. */
  errorCode?: number;
  /** Group APIs: the group, the member (and its static instance id), the generation; FindCoordinator: the key. */
  groupId?: string;
  memberId?: string;
  groupInstanceId?: string;
  generationId?: number;
  /** JoinGroup, SyncGroup: the protocol type (`consumer` for consumer groups) and the assignors offered (request) or chosen (response). */
  protocolType?: string;
  protocols?: string[];
  /** JoinGroup response: the leader's member id, and the members listed (the leader's response lists all, others none); SyncGroup request: the assignments the leader sent. */
  leader?: string;
  members?: number;
  coordinatorKey?: string;
  /** ApiVersions response: how many APIs the broker offers. */
  apis?: number;
  /** Metadata response: brokers and topics listed. */
  brokers?: number;
}
