/**
 * Kafka, both directions: a 4-byte size, then a request (header: API key,
 * version, correlation id, client id; tagged fields in flexible versions)
 * or a response (correlation id first). A response is read by the request
 * it answers, found by correlation id, so both directions share the parser.
 * Messages up to HOLD_LIMIT are held whole; of a larger one (a Fetch
 * response of many batches) the first bytes are decoded and the rest framed
 * over as it arrives.
 */
import { drainBody, endBody, framedBody, loseIntoBody, type FramedBody } from '../shared/framed-body';
import { brokenAt, StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import { decodeRequest, decodeResponse, type Fields, type KafkaContext } from './apis';
import { API, apiName, isFlexible, KAFKA_ERROR, MAX_API_KEY, type KafkaMessage } from './messages';
import { KafkaReader, whole } from './reader';

/** socket.request.max.bytes' default: a larger size is broken framing. */
const MAX_SIZE = 100 * 1024 * 1024;
/** Bytes of one message decoded at most; the rest of a larger one is counted. */
const HOLD_LIMIT = 1024 * 1024;
/** Requests awaiting their response, remembered at most (a client pipelines a few; a connection met mid-way leaves some). */
const MAX_PENDING = 4096;
/** Versions above this are no Kafka release's (Fetch, the highest, is at 17). */
const MAX_VERSION = 30;

/** Does a request header start here: a size, a known API key and version, a client id that fits? Decided on content alone. */
function plausibleRequest(b: Buffer): boolean | 'more' {
  if (b.length < 14) return 'more';
  const size = b.readInt32BE(0);
  const apiKey = b.readInt16BE(4);
  const version = b.readInt16BE(6);
  const clientIdLength = b.readInt16BE(12);
  return size >= 10 && size <= MAX_SIZE && apiKey >= 0 && apiKey <= MAX_API_KEY && version >= 0 && version <= MAX_VERSION && clientIdLength >= -1 && clientIdLength <= size - 10;
}

/** The key of Kafka's topic names by id in ParserOptions.shared. */
const TOPIC_NAMES = 'kafka.topicNames';

export class KafkaParser implements ProtocolParser<KafkaMessage> {
  readonly protocol = 'kafka';
  onMessage: (message: KafkaMessage) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  private readonly body: Record<Side, FramedBody | undefined> = { client: undefined, server: undefined };
  /**
   * After bytes lost where no size framed them: resume at a syscall boundary that starts a plausible
   * message; after a size no message can have: at the next bytes that read as a request header (the
   * client's) or a response to a pending request (the server's), by content alone.
   */
  private readonly resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  /** Requests sent and not yet answered, by correlation id: what their response is. */
  private readonly pending = new Map<number, { apiKey: number; version: number }>();
  /** Topic names by id: shared by the run's Kafka connections (a client's Metadata on one names the topics its Produce and Fetch on others name by id). */
  private readonly context: KafkaContext;
  /** A SaslHandshake v0 was sent: the client's next message is the raw SASL token, framed by a size alone; then the broker's answer token. */
  private rawToken = false;
  private rawTokenAnswer = false;

  constructor(shared?: Map<string, unknown>) {
    let topicNames = shared?.get(TOPIC_NAMES) as Map<string, string> | undefined;
    if (!topicNames) {
      topicNames = new Map();
      shared?.set(TOPIC_NAMES, topicNames);
    }
    this.context = { topicNames };
  }

  feed(side: Side, chunk: Chunk): void {
    this.buffers[side].push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    const buf = this.buffers[side];
    if (!this.body[side] && !this.resync[side] && buf.available >= 4) {
      // A message whose size is held but not its end: what is held of it is decoded, the loss falls in its size.
      const size = buf.peek(4)!.readInt32BE(0);
      if (size >= 4 && size <= MAX_SIZE && 4 + size > buf.available) this.message(side, 4 + size, buf.available);
    }
    if (!this.resync[side]) {
      bytes = loseIntoBody(buf, this.body, side, bytes);
      if (bytes === 0) return;
    }
    const at = buf.offset + buf.available;
    buf.clear(bytes);
    this.body[side] = undefined;
    this.resync[side] = 'gap';
    this.onMessage({
      protocol: 'kafka',
      kind: side === 'client' ? 'request' : 'response',
      api: 'Lost',
      tsStart: ts,
      tsEnd: ts,
      tid: 0,
      offset: at,
      error: `byte ${at}: ${bytes} bytes of the ${side} stream were not captured`,
      parseErrorCode: KAFKA_ERROR.LOST_BYTES,
      lostBytes: bytes,
    });
  }

  end(_ts: bigint): void {}

  private plausible(side: Side, b: Buffer): boolean | 'more' {
    if (side === 'client') return plausibleRequest(b);
    if (b.length < 8) return 'more';
    const size = b.readInt32BE(0);
    return size >= 4 && size <= MAX_SIZE && this.pending.has(b.readInt32BE(4));
  }

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      const body = this.body[side];
      if (body) {
        if (drainBody(buf, body) === 'more') return;
        endBody(this.body, side);
        continue;
      }
      if (this.resync[side] === 'content') {
        const found = this.seek(side);
        if (!found) return;
        this.resync[side] = undefined;
      } else if (this.resync[side] === 'gap') {
        const head = buf.peek(Math.min(buf.available, 14))!;
        const ok = this.plausible(side, head);
        if (ok === 'more' && buf.atChunkStart()) return;
        if (!buf.atChunkStart() || ok !== true) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = undefined;
      }
      if (buf.available < 4) return;
      const size = buf.peek(4)!.readInt32BE(0);
      if ((size < 4 && !(side === 'server' && this.rawTokenAnswer && size >= 0)) || size > MAX_SIZE) {
        this.broken(side, `a message size of ${size}`, KAFKA_ERROR.INVALID_SIZE);
        continue;
      }
      const need = Math.min(4 + size, HOLD_LIMIT);
      if (buf.available < need) return;
      this.message(side, 4 + size, need);
    }
  }

  /** Drop bytes one at a time until a plausible message starts; false when more bytes are needed to tell. */
  private seek(side: Side): boolean {
    const buf = this.buffers[side];
    for (;;) {
      const ok = this.plausible(side, buf.peek(Math.min(buf.available, 14))!);
      if (ok === 'more') return false;
      if (ok) return true;
      buf.skip(1);
    }
  }

  /** Decode a message of `total` bytes (size included) from its first `held`, consume them; the rest becomes a body. */
  private message(side: Side, total: number, held: number): void {
    const buf = this.buffers[side];
    const start = buf.when();
    const offset = buf.offset;
    const bytes = buf.peek(held)!;
    const f: Fields = { api: 'Unknown' };
    let error: { error: string; parseErrorCode: string } | undefined;
    const end = Math.min(held, total);
    const r = new KafkaReader(bytes, 4, end);
    let complete: boolean;
    if ((side === 'client' && this.rawToken) || (side === 'server' && this.rawTokenAnswer)) {
      this.rawTokenAnswer = side === 'client';
      this.rawToken = false;
      f.api = 'SaslToken';
      complete = true;
    } else if (side === 'client') {
      let apiKey = -1;
      let version = -1;
      complete = whole(() => {
        apiKey = r.i16();
        version = r.i16();
        f.apiKey = apiKey;
        f.apiVersion = version;
        f.api = apiName(apiKey);
        f.correlationId = r.i32();
        const clientId = r.string(); // never compact, even in flexible headers
        if (clientId !== undefined) f.clientId = clientId;
        if (apiKey < 0 || apiKey > MAX_API_KEY || version < 0 || version > MAX_VERSION) {
          error = { error: `byte ${offset}: API key ${apiKey} version ${version} is no Kafka API`, parseErrorCode: KAFKA_ERROR.UNKNOWN_API };
          return;
        }
        if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
        this.pending.set(f.correlationId, { apiKey, version });
        r.flexible = isFlexible(apiKey, version);
        r.tags();
        decodeRequest(apiKey, version, r, f, this.context);
      });
      // A Produce with acks=0 gets no response: nothing waits for it.
      if (apiKey === API.Produce && f.acks === 0) this.pending.delete(f.correlationId!);
      if (apiKey === API.SaslHandshake && version === 0) this.rawToken = true;
    } else {
      complete = whole(() => {
        f.correlationId = r.i32();
        const request = this.pending.get(f.correlationId);
        if (!request) {
          f.api = 'unknown';
          return;
        }
        this.pending.delete(f.correlationId);
        f.apiKey = request.apiKey;
        f.apiVersion = request.version;
        f.api = apiName(request.apiKey);
        r.flexible = isFlexible(request.apiKey, request.version);
        // ApiVersions answers with header v0 (no tagged fields) in every version: a client must read it before it knows the broker's.
        if (request.apiKey !== API.ApiVersions) r.tags();
        decodeResponse(request.apiKey, request.version, r, f, this.context);
      });
    }
    if (!complete && held >= total && !error) error = { error: `byte ${offset}: ${f.api} fields run past the message's ${total - 4} bytes`, parseErrorCode: KAFKA_ERROR.MALFORMED };
    buf.skip(held);
    const emit = (tsEnd: bigint, lost?: number) =>
      this.onMessage({
        protocol: 'kafka',
        kind: side === 'client' ? 'request' : 'response',
        tsStart: start.ts,
        tsEnd: tsEnd > start.ts ? tsEnd : start.ts,
        tid: start.tid,
        offset,
        ...(f as Fields & { api: string }),
        ...error,
        ...(lost ? { lostBytes: lost } : {}),
      });
    if (held >= total) emit(buf.lastTs());
    else {
      const body: FramedBody = framedBody(total - held, false, () => emit(buf.lastTs(), body.lost));
      this.body[side] = body;
    }
  }

  private broken(side: Side, reason: string, code: string): void {
    const buf = this.buffers[side];
    this.onMessage({
      protocol: 'kafka',
      kind: side === 'client' ? 'request' : 'response',
      api: 'Unparsable',
      ...brokenAt(buf, reason, code),
    });
    this.resync[side] = 'content';
    buf.skip(1);
  }
}
