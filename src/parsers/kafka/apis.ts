/**
 * The bodies of the APIs Loupe decodes, per version (the layouts of Kafka's
 * message definitions, clients/src/main/resources/common/message/*.json):
 * Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,
 * FindCoordinator, JoinGroup, Heartbeat, SyncGroup, ApiVersions. What a
 * span or `loupe parse` needs is kept: topics, partitions, record counts,
 * trace context, error codes, group and member.
 */
import { API, type KafkaMessage, type KafkaPartition, type KafkaTopic } from './messages';
import { KafkaReader, whole } from './reader';
import { readRecordSet, type RecordsSummary } from './records';

export type Fields = Partial<Omit<KafkaMessage, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'>>;

/** Topic ids remembered at most (the oldest named first forgotten): a cluster with more topics than this names the rest `unknown`. */
const MAX_TOPIC_IDS = 65536;

/** What decoding knows beyond the message: topic names by id, from Metadata responses on any of the run's Kafka connections (Fetch and Produce v13+ name topics by id only). */
export interface KafkaContext {
  topicNames: Map<string, string>;
}

/** Fold a partition's records into the message's totals and trace context. */
function records(r: KafkaReader, f: Fields, p: KafkaPartition): void {
  const set = r.bytesPrefix();
  if (!set || set.length === 0) return;
  const summary: RecordsSummary = { records: 0, bytes: 0 };
  readRecordSet(r.b.subarray(0, r.end), set.at, set.length, summary);
  p.records = summary.records;
  p.recordBytes = summary.bytes;
  if (summary.batches) p.batches = summary.batches;
  if (summary.baseOffset !== undefined && p.baseOffset === undefined) p.baseOffset = summary.baseOffset;
  f.records = (f.records ?? 0) + summary.records;
  if (summary.compressed) f.compressed = summary.compressed;
  if (f.traceparent === undefined && summary.traceparent !== undefined) {
    f.traceparent = summary.traceparent;
    if (summary.tracestate !== undefined) f.tracestate = summary.tracestate;
  }
}

/**
 * The consumer protocol's subscription (ConsumerProtocolSubscription, inside a JoinGroup protocol's metadata;
 * never flexible, whatever the JoinGroup version): its version, then the topics subscribed to. What follows
 * (user data, owned partitions, rack) is not read.
 */
function subscription(b: Buffer, at: { at: number; length: number }): KafkaTopic[] {
  const r = new KafkaReader(b, at.at, at.at + at.length);
  const topics: KafkaTopic[] = [];
  whole(() => {
    r.i16();
    const n = r.count();
    for (let i = 0; i < n; i++) topics.push({ name: r.string() ?? '', partitions: [] });
  });
  return topics;
}

/** The consumer protocol's assignment (ConsumerProtocolAssignment, a SyncGroup's bytes, never flexible): the partitions per topic. */
function assigned(b: Buffer, at: { at: number; length: number }): KafkaTopic[] {
  const r = new KafkaReader(b, at.at, at.at + at.length);
  const topics: KafkaTopic[] = [];
  whole(() => {
    r.i16();
    const n = r.count();
    for (let i = 0; i < n; i++) {
      const topic: KafkaTopic = { name: r.string() ?? '', partitions: [] };
      topics.push(topic);
      const m = r.count();
      for (let j = 0; j < m; j++) topic.partitions.push({ partition: r.i32() });
    }
  });
  return topics;
}

/** A topic named by name (older versions) or by id (newer ones), resolved through the connection's Metadata where it can be. */
function topicOf(r: KafkaReader, byId: boolean, ctx: KafkaContext): KafkaTopic {
  if (!byId) return { name: r.string() ?? '', partitions: [] };
  const topicId = r.uuid();
  return { name: ctx.topicNames.get(topicId) ?? 'unknown', topicId, partitions: [] };
}

/** Read topics into `f.topics` one by one, so a message cut short keeps those read. */
function topics(r: KafkaReader, f: Fields, topic: () => KafkaTopic, partition: (t: KafkaTopic) => void): void {
  const list: KafkaTopic[] = (f.topics = []);
  const n = r.count();
  for (let i = 0; i < n; i++) {
    const t = topic();
    list.push(t);
    const m = r.count();
    for (let j = 0; j < m; j++) partition(t);
    r.tags();
  }
}

const firstError = (f: Fields, code: number) => {
  if (code !== 0 && f.errorCode === undefined) f.errorCode = code;
};

export function decodeRequest(api: number, v: number, r: KafkaReader, f: Fields, ctx: KafkaContext): void {
  switch (api) {
    case API.Produce: {
      if (v >= 3) {
        const txn = r.string();
        if (txn !== undefined) f.transactionalId = txn;
      }
      f.acks = r.i16();
      r.i32(); // timeout
      topics(
        r,
        f,
        () => topicOf(r, v >= 13, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32() };
          t.partitions.push(p);
          records(r, f, p);
          r.tags();
        },
      );
      return;
    }
    case API.Fetch: {
      if (v <= 14) r.i32(); // replica id
      r.i32(); // max wait
      r.i32(); // min bytes
      if (v >= 3) r.i32(); // max bytes
      if (v >= 4) r.i8(); // isolation level
      if (v >= 7) r.skip(8); // session id and epoch
      topics(
        r,
        f,
        () => topicOf(r, v >= 13, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32() };
          t.partitions.push(p);
          if (v >= 9) r.i32(); // current leader epoch
          p.offset = r.i64();
          if (v >= 12) r.i32(); // last fetched epoch
          if (v >= 5) r.i64(); // log start offset
          r.i32(); // partition max bytes
          r.tags();
        },
      );
      return;
    }
    case API.ListOffsets: {
      r.i32(); // replica id
      if (v >= 2) r.i8(); // isolation level
      topics(
        r,
        f,
        () => topicOf(r, false, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32() };
          t.partitions.push(p);
          if (v >= 4) r.i32(); // current leader epoch
          p.offset = r.i64(); // the timestamp asked for (-1 latest, -2 earliest)
          if (v === 0) r.i32(); // max offsets
          r.tags();
        },
      );
      return;
    }
    case API.Metadata: {
      const n = r.count();
      const list: KafkaTopic[] = (f.topics = []);
      for (let i = 0; i < n; i++) {
        const topicId = v >= 10 ? r.uuid() : undefined;
        list.push({ name: r.string() ?? (topicId !== undefined ? (ctx.topicNames.get(topicId) ?? 'unknown') : ''), ...(topicId !== undefined ? { topicId } : {}), partitions: [] });
        r.tags();
      }
      return;
    }
    case API.OffsetCommit: {
      f.groupId = r.string();
      if (v >= 1) {
        f.generationId = r.i32();
        f.memberId = r.string();
      }
      if (v >= 7) r.string(); // group instance id
      if (v >= 2 && v <= 4) r.i64(); // retention time
      topics(
        r,
        f,
        () => topicOf(r, false, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32() };
          t.partitions.push(p);
          p.offset = r.i64();
          if (v >= 6) r.i32(); // leader epoch
          if (v === 1) r.i64(); // commit timestamp
          r.string(); // metadata
          r.tags();
        },
      );
      return;
    }
    case API.OffsetFetch: {
      if (v <= 7) {
        f.groupId = r.string();
        const n = r.count();
        const list: KafkaTopic[] = (f.topics = []);
        for (let i = 0; i < n; i++) {
          const t: KafkaTopic = { name: r.string() ?? '', partitions: [] };
          list.push(t);
          for (const partition of r.array(() => r.i32())) t.partitions.push({ partition });
          r.tags();
        }
        return;
      }
      const groups = r.count();
      for (let g = 0; g < groups; g++) {
        const group = r.string();
        if (g === 0) f.groupId = group;
        if (v >= 9) {
          r.string(); // member id
          r.i32(); // member epoch
        }
        const n = r.count();
        for (let i = 0; i < n; i++) {
          if (v >= 10) r.uuid();
          else r.string();
          r.array(() => r.i32());
          r.tags();
        }
        r.tags();
      }
      return;
    }
    case API.FindCoordinator:
      if (v <= 3) {
        f.coordinatorKey = r.string();
        if (v >= 1) r.i8(); // key type
      } else {
        r.i8(); // key type
        const keys = r.array(() => r.string());
        if (keys[0] !== undefined) f.coordinatorKey = keys[0];
      }
      return;
    case API.JoinGroup:
    case API.SyncGroup:
    case API.Heartbeat: {
      f.groupId = r.string();
      if (api === API.JoinGroup) {
        r.i32(); // session timeout
        if (v >= 1) r.i32(); // rebalance timeout
      } else f.generationId = r.i32();
      f.memberId = r.string();
      if ((api === API.JoinGroup && v >= 5) || (api !== API.JoinGroup && v >= 3)) {
        const instance = r.string();
        if (instance !== undefined) f.groupInstanceId = instance;
      }
      if (api === API.JoinGroup) {
        f.protocolType = r.string();
        // The assignors offered, each with its metadata: for the consumer protocol, the topics the member subscribes to.
        const protocols = r.array(() => {
          const name = r.string() ?? '';
          const metadata = r.bytes();
          r.tags();
          return { name, metadata };
        });
        f.protocols = protocols.map((p) => p.name);
        if (f.protocolType === 'consumer' && protocols[0]?.metadata) f.topics = subscription(r.b, protocols[0].metadata);
      } else if (api === API.SyncGroup) {
        if (v >= 5) {
          f.protocolType = r.string();
          const name = r.string();
          if (name !== undefined) f.protocols = [name];
        }
        // The leader's assignments, one per member (the others send none).
        f.members = r.array(() => {
          r.string();
          r.bytes();
          r.tags();
        }).length;
      }
      return;
    }
    default:
      return;
  }
}

export function decodeResponse(api: number, v: number, r: KafkaReader, f: Fields, ctx: KafkaContext): void {
  switch (api) {
    case API.Produce: {
      topics(
        r,
        f,
        () => topicOf(r, v >= 13, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32(), errorCode: r.i16() };
          t.partitions.push(p);
          firstError(f, p.errorCode!);
          p.baseOffset = r.i64();
          if (v >= 2) r.i64(); // log append time
          if (v >= 5) r.i64(); // log start offset
          if (v >= 8) {
            r.array(() => {
              r.i32();
              r.string();
              r.tags();
            });
            r.string(); // error message
          }
          r.tags();
        },
      );
      return;
    }
    case API.Fetch: {
      if (v >= 1) r.i32(); // throttle
      if (v >= 7) {
        firstError(f, r.i16());
        r.i32(); // session id
      }
      topics(
        r,
        f,
        () => topicOf(r, v >= 13, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32(), errorCode: r.i16() };
          t.partitions.push(p);
          firstError(f, p.errorCode!);
          p.highWatermark = r.i64();
          if (v >= 4) r.i64(); // last stable offset
          if (v >= 5) r.i64(); // log start offset
          if (v >= 4) {
            r.array(() => {
              r.i64();
              r.i64();
              r.tags();
            });
          }
          if (v >= 11) r.i32(); // preferred read replica
          records(r, f, p);
          r.tags();
        },
      );
      return;
    }
    case API.ListOffsets: {
      if (v >= 2) r.i32(); // throttle
      topics(
        r,
        f,
        () => topicOf(r, false, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32(), errorCode: r.i16() };
          t.partitions.push(p);
          firstError(f, p.errorCode!);
          if (v === 0) r.array(() => r.i64());
          else {
            r.i64(); // timestamp
            p.offset = r.i64();
          }
          if (v >= 4) r.i32(); // leader epoch
          r.tags();
        },
      );
      return;
    }
    case API.Metadata: {
      if (v >= 3) r.i32(); // throttle
      const brokers = r.count();
      f.brokers = brokers;
      for (let i = 0; i < brokers; i++) {
        r.i32();
        r.string();
        r.i32();
        if (v >= 1) r.string(); // rack
        r.tags();
      }
      if (v >= 2) r.string(); // cluster id
      if (v >= 1) r.i32(); // controller id
      const n = r.count();
      const list: KafkaTopic[] = (f.topics = []);
      for (let i = 0; i < n; i++) {
        const errorCode = r.i16();
        const name = r.string();
        const topicId = v >= 10 ? r.uuid() : undefined;
        // Learnt here, used by Fetch v13+ (and Produce v13+) on this connection, which name topics by id only.
        if (topicId !== undefined && name !== undefined && /[^0]/.test(topicId)) {
          ctx.topicNames.set(topicId, name);
          if (ctx.topicNames.size > MAX_TOPIC_IDS) ctx.topicNames.delete(ctx.topicNames.keys().next().value!);
        }
        const t: KafkaTopic = { name: name ?? 'unknown', ...(topicId !== undefined ? { topicId } : {}), partitions: [] };
        list.push(t);
        firstError(f, errorCode);
        if (v >= 1) r.i8(); // is internal
        const partitions = r.count();
        for (let j = 0; j < partitions; j++) {
          const p: KafkaPartition = { errorCode: r.i16(), partition: r.i32() };
          t.partitions.push(p);
          r.i32(); // leader
          if (v >= 7) r.i32(); // leader epoch
          r.array(() => r.i32()); // replicas
          r.array(() => r.i32()); // in-sync replicas
          if (v >= 5) r.array(() => r.i32()); // offline replicas
          r.tags();
        }
        if (v >= 8) r.i32(); // topic authorized operations
        r.tags();
      }
      return;
    }
    case API.OffsetCommit:
      if (v >= 3) r.i32(); // throttle
      topics(
        r,
        f,
        () => topicOf(r, false, ctx),
        (t) => {
          const p: KafkaPartition = { partition: r.i32(), errorCode: r.i16() };
          t.partitions.push(p);
          firstError(f, p.errorCode!);
          r.tags();
        },
      );
      return;
    case API.OffsetFetch:
      if (v >= 3) r.i32(); // throttle
      if (v <= 7) {
        topics(
          r,
          f,
          () => topicOf(r, false, ctx),
          (t) => {
            const p: KafkaPartition = { partition: r.i32() };
            t.partitions.push(p);
            p.offset = r.i64();
            if (v >= 5) r.i32(); // leader epoch
            r.string(); // metadata
            p.errorCode = r.i16();
            firstError(f, p.errorCode);
            r.tags();
          },
        );
        if (v >= 2) firstError(f, r.i16());
      }
      return;
    case API.FindCoordinator:
      if (v >= 1) r.i32(); // throttle
      if (v <= 3) {
        firstError(f, r.i16());
        return;
      }
      r.array(() => {
        const key = r.string();
        if (f.coordinatorKey === undefined && key !== undefined) f.coordinatorKey = key;
        r.i32();
        r.string();
        r.i32();
        firstError(f, r.i16());
        r.string();
        r.tags();
      });
      return;
    case API.JoinGroup:
    case API.SyncGroup:
    case API.Heartbeat:
      if ((api === API.JoinGroup && v >= 2) || (api !== API.JoinGroup && v >= 1)) r.i32(); // throttle
      firstError(f, r.i16());
      if (api === API.JoinGroup) {
        f.generationId = r.i32();
        if (v >= 7) f.protocolType = r.string();
        const name = r.string();
        if (name !== undefined) f.protocols = [name];
        f.leader = r.string();
        if (v >= 9) r.i8(); // skip assignment
        f.memberId = r.string();
        // The leader is told every member (with its metadata) to assign partitions among them; the others get none.
        f.members = r.array(() => {
          r.string(); // member id
          if (v >= 5) r.string(); // group instance id
          r.bytes(); // metadata
          r.tags();
        }).length;
      } else if (api === API.SyncGroup) {
        if (v >= 5) {
          f.protocolType = r.string();
          const name = r.string();
          if (name !== undefined) f.protocols = [name];
        }
        // This member's assignment: for the consumer protocol, the partitions it is to consume.
        const assignment = r.bytes();
        if (assignment && assignment.length > 0) f.topics = assigned(r.b, assignment);
      }
      return;
    case API.ApiVersions:
      firstError(f, r.i16());
      f.apis = r.count();
      return;
    default:
      return;
  }
}
