/**
 * NATS, both directions: control lines (an operation word and its
 * arguments, CRLF), PUB/HPUB/MSG/HMSG followed by their headers and payload
 * of the sizes the line states. Headers (`NATS/1.0` then fields) are read for
 * trace context; payloads are counted, never kept.
 */
import { drainBody, framedBody, loseIntoBody, type FramedBody } from '../shared/framed-body';
import { PAYLOAD_ID_BYTES, payloadDigest } from '../shared/messaging';
import { brokenAt, StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import { NATS_ERROR, type NatsMessage } from './messages';

const LF = 0x0a;
const CR = 0x0d;
/** NATS's default max_control_line is 4096: a longer line is broken framing. */
const MAX_LINE = 4096;
/** Payloads larger than this are not believed (max_payload defaults to 1 MB, at most 64 MB). */
const MAX_PAYLOAD = 64 * 1024 * 1024;
/** Header blocks are read into memory for trace context up to this; larger ones are counted, not read. */
const MAX_HEADERS_READ = 16 * 1024;

const CLIENT_OPS: ReadonlySet<string> = new Set(['CONNECT', 'PUB', 'HPUB', 'SUB', 'UNSUB', 'PING', 'PONG']);
const SERVER_OPS: ReadonlySet<string> = new Set(['INFO', 'MSG', 'HMSG', 'PING', 'PONG', '+OK', '-ERR']);

type Fields = Omit<NatsMessage, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'>;

class Broken extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const count = (token: string | undefined) => (token !== undefined && /^\d{1,10}$/.test(token) ? Number(token) : undefined);

/** The operation a line starts with, as the protocol spells it (case-insensitive on the wire). */
function operationOf(line: string): string {
  const space = line.search(/[ \t]/);
  return (space < 0 ? line : line.slice(0, space)).toUpperCase();
}

export class NatsParser implements ProtocolParser<NatsMessage> {
  readonly protocol = 'nats';
  onMessage: (message: NatsMessage) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  /** A message's headers and payload under way: bytes left (the CRLF after them included), what to do at their end. */
  private readonly body: Record<Side, FramedBody | undefined> = { client: undefined, server: undefined };
  /** After lost bytes: resume at a syscall boundary that starts an operation; after broken bytes: at a line that does. */
  private readonly resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };

  feed(side: Side, chunk: Chunk): void {
    this.buffers[side].push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, _ts: bigint): void {
    if (!this.resync[side]) {
      // Inside a payload: its size frames the loss (headers lost with it are not read); what follows it is not framed.
      bytes = loseIntoBody(this.buffers[side], this.body, side, bytes);
      if (bytes === 0) return;
    }
    this.buffers[side].clear(bytes);
    this.body[side] = undefined;
    this.resync[side] = 'gap';
  }

  end(_ts: bigint): void {}

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      const body = this.body[side];
      if (body) {
        try {
          if (!this.drain(side, body)) return;
        } catch (e) {
          if (!(e instanceof Broken)) throw e;
          this.broken(side, e.message, e.code);
        }
        continue;
      }
      if (this.resync[side] === 'gap') {
        if (!buf.atChunkStart() || !this.startsOperation(side)) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = undefined;
      } else if (this.resync[side] === 'content') {
        const lf = buf.indexOf(LF, 0, MAX_LINE + 2);
        if (lf < 0) {
          if (buf.available > MAX_LINE) buf.skip(buf.available - MAX_LINE);
          return;
        }
        buf.skip(lf + 1);
        this.resync[side] = undefined;
        continue;
      }
      try {
        if (!this.line(side)) return;
      } catch (e) {
        if (!(e instanceof Broken)) throw e;
        this.broken(side, e.message, e.code);
      }
    }
  }

  /** Do the bytes held start an operation this side sends? Judged on the first word once it is whole. */
  private startsOperation(side: Side): boolean {
    const buf = this.buffers[side];
    const head = buf.peek(Math.min(buf.available, 8))!.toString('latin1');
    return (side === 'client' ? CLIENT_OPS : SERVER_OPS).has(operationOf(head.split(/[\r\n]/)[0]!));
  }

  private broken(side: Side, reason: string, code: string): void {
    const buf = this.buffers[side];
    this.onMessage({
      protocol: 'nats',
      kind: side === 'client' ? 'request' : 'response',
      op: 'Unparsable',
      ...brokenAt(buf, reason, code),
    });
    this.resync[side] = 'content';
  }

  /** Skip (and keep the headers of) a message body; at its end check the CRLF; false when more bytes are needed. */
  private drain(side: Side, body: FramedBody): boolean {
    const state = drainBody(this.buffers[side], body);
    if (state === 'more') return false;
    this.body[side] = undefined;
    if (state === 'no-crlf') throw new Broken('a payload not followed by CRLF', NATS_ERROR.CRLF_EXPECTED);
    body.then(Buffer.concat(body.kept));
    return true;
  }

  /** One control line (and the body it announces); false when its end is not held yet. */
  private line(side: Side): boolean {
    const buf = this.buffers[side];
    const lf = buf.indexOf(LF, 0, MAX_LINE + 2);
    if (lf < 0) {
      if (buf.available > MAX_LINE) throw new Broken(`a control line longer than ${MAX_LINE} bytes`, NATS_ERROR.LINE_TOO_LONG);
      return false;
    }
    const start = buf.when();
    const offset = buf.offset;
    const text = buf.peek(lf + 1)!.toString('latin1', 0, lf > 0 && buf.byteAt(lf - 1) === CR ? lf - 1 : lf);
    const op = operationOf(text);
    if (!(side === 'client' ? CLIENT_OPS : SERVER_OPS).has(op)) throw new Broken(`${JSON.stringify(text.slice(0, 24))} starts no operation`, NATS_ERROR.UNKNOWN_OPERATION);
    buf.skip(lf + 1);
    const args = op === 'CONNECT' || op === 'INFO' || op === '-ERR' ? [] : text.split(/[ \t]+/).slice(1);
    const emit = (fields: Fields, endTs = buf.when().ts > start.ts ? buf.when().ts : start.ts) =>
      this.onMessage({ protocol: 'nats', kind: side === 'client' ? 'request' : 'response', tsStart: start.ts, tsEnd: endTs, tid: start.tid, offset, ...fields });
    switch (op) {
      case 'PUB':
      case 'HPUB':
      case 'MSG':
      case 'HMSG': {
        // PUB subject [reply] size; HPUB subject [reply] headers total; MSG subject sid [reply] size; HMSG subject sid [reply] headers total.
        const withHeaders = op === 'HPUB' || op === 'HMSG';
        const fixed = (op === 'MSG' || op === 'HMSG' ? 2 : 1) + (withHeaders ? 2 : 1);
        const reply = args.length > fixed ? args[op === 'MSG' || op === 'HMSG' ? 2 : 1] : undefined;
        const total = count(args[args.length - 1]);
        const headerBytes = withHeaders ? count(args[args.length - 2]) : 0;
        if (args.length < fixed || args.length > fixed + 1 || total === undefined || headerBytes === undefined || headerBytes > total || total > MAX_PAYLOAD) {
          throw new Broken(`${op} with sizes ${JSON.stringify(args.slice(-2).join(' '))}`, NATS_ERROR.INVALID_SIZE);
        }
        const fields: Fields = { op, subject: args[0]!, bytes: total - headerBytes };
        if (op === 'MSG' || op === 'HMSG') fields.sid = args[1]!;
        if (reply !== undefined) fields.replyTo = reply;
        // The headers are kept to be read, and the payload's first bytes after them to know the message by.
        const payloadKept = headerBytes <= MAX_HEADERS_READ ? Math.min(fields.bytes!, PAYLOAD_ID_BYTES) : 0;
        this.body[side] = framedBody(
          total,
          true,
          (kept) => {
            if (withHeaders) Object.assign(fields, readHeaders(kept.subarray(0, Math.min(headerBytes, MAX_HEADERS_READ))));
            const digest = headerBytes <= MAX_HEADERS_READ ? payloadDigest(fields.bytes!, kept, headerBytes, kept.length) : undefined;
            if (digest !== undefined) fields.payloadDigest = digest;
            emit(fields, buf.lastTs() > start.ts ? buf.lastTs() : start.ts);
          },
          Math.min(headerBytes, MAX_HEADERS_READ) + payloadKept,
        );
        return true;
      }
      case 'SUB':
        emit({ op, subject: args[0] ?? '', ...(args.length > 2 ? { queue: args[1]! } : {}), sid: args[args.length - 1] ?? '' });
        return true;
      case 'UNSUB':
        emit({ op, sid: args[0] ?? '' });
        return true;
      case '-ERR':
        emit({ op, errorMessage: text.slice(4).trim().replace(/^'|'$/g, '') });
        return true;
      default:
        // CONNECT and INFO carry JSON (a client's credentials among it): counted as an operation, never kept.
        emit({ op });
        return true;
    }
  }
}

/** The header block of an HPUB or HMSG (`NATS/1.0`, fields, an empty line): the trace context, and how many fields. */
function readHeaders(block: Buffer): Partial<Fields> {
  const lines = block.toString('latin1').split('\r\n');
  const out: Partial<Fields> = { headers: 0 };
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.headers!++;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'traceparent') out.traceparent = line.slice(colon + 1).trim();
    if (name === 'tracestate') out.tracestate = line.slice(colon + 1).trim();
  }
  return out;
}
