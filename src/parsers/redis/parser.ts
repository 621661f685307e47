/**
 * Redis serialization protocol, RESP2 and RESP3, both directions.
 *
 * Requests: arrays of bulk strings, or inline commands (`PING\r\n`); any
 * number may be pipelined, and replies answer them in order. Replies: every
 * RESP2 and RESP3 type, nested to any depth; an attribute (`|`) belongs to the
 * reply after it. RESP3 pushes (`>`) and everything after SUBSCRIBE, PSUBSCRIBE,
 * SSUBSCRIBE or MONITOR in RESP2 answer no request (`push`).
 *
 * Argument values are counted, never kept: a request's `query` is the command
 * and its first key, then one `?` per further argument.
 */
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';

const CR = 0x0d;
const LF = 0x0a;
/** Lines (and inline commands) longer than this are taken as broken framing. */
const MAX_LINE = 64 * 1024;
const MAX_DEPTH = 64;
const MAX_BULK = 512 * 1024 * 1024;

/** Commands whose first argument is not a key. */
const NO_KEY = new Set(['PING', 'ECHO', 'AUTH', 'HELLO', 'SELECT', 'INFO', 'CONFIG', 'CLIENT', 'COMMAND', 'MULTI', 'EXEC', 'DISCARD', 'QUIT', 'SCRIPT', 'EVAL', 'EVALSHA', 'PUBLISH', 'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'FLUSHDB', 'FLUSHALL', 'DBSIZE', 'SCAN', 'KEYS', 'MONITOR', 'RESET', 'SAVE', 'BGSAVE', 'TIME', 'LASTSAVE', 'SHUTDOWN', 'SLOWLOG', 'MEMORY', 'LATENCY', 'ACL', 'FUNCTION', 'FCALL', 'WAIT']);
const STREAMING = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR']);
const TYPE_NAMES: Record<string, string> = {
  '+': 'SimpleString', '-': 'Error', ':': 'Integer', '$': 'BulkString', '*': 'Array', '_': 'Null', ',': 'Double', '#': 'Boolean',
  '!': 'BulkError', '=': 'VerbatimString', '(': 'BigNumber', '%': 'Map', '~': 'Set', '>': 'Push', '|': 'Attribute',
};

/** A value read whole: its type, what it says, and how many bytes it took. */
interface Value {
  type: string;
  size: number;
  /** Strings of a request's array, or the error text. */
  strings?: string[];
  text?: string;
  /** Elements of an aggregate. */
  count?: number;
}

/** Not enough bytes yet: come back when at least `need` are held. */
interface NeedMore {
  need: number;
}

class Broken extends Error {}

/** Read one RESP value at `at` of `b`; `keepStrings` keeps an array's bulk strings (requests). */
function readValue(b: Buffer, at: number, keepStrings: boolean, depth = 0): Value | NeedMore {
  if (at >= b.length) return { need: at + 1 };
  if (depth > MAX_DEPTH) throw new Broken(`values nested deeper than ${MAX_DEPTH}`);
  const type = String.fromCharCode(b[at]!);
  const lineEnd = b.indexOf(LF, at);
  if (lineEnd < 0) {
    if (b.length - at > MAX_LINE) throw new Broken(`a line longer than ${MAX_LINE} bytes`);
    return { need: b.length + 1 };
  }
  if (lineEnd === at || b[lineEnd - 1] !== CR) throw new Broken('a line not ended by CRLF');
  const line = b.toString('latin1', at + 1, lineEnd - 1);
  const next = lineEnd + 1;
  const name = TYPE_NAMES[type];
  if (name === undefined) throw new Broken(`0x${b[at]!.toString(16)} starts no RESP value`);
  switch (type) {
    case '+': case ':': case '_': case ',': case '#': case '(':
      return { type: name, size: next - at, text: line };
    case '-':
      return { type: name, size: next - at, text: b.toString('utf8', at + 1, lineEnd - 1) };
    case '$': case '!': case '=': {
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1 || n > MAX_BULK) throw new Broken(`bulk length ${JSON.stringify(line)}`);
      if (n === -1) return { type: 'Null', size: next - at };
      if (b.length < next + n + 2) return { need: next + n + 2 };
      if (b[next + n] !== CR || b[next + n + 1] !== LF) throw new Broken('a bulk string not followed by CRLF');
      const v: Value = { type: name, size: next + n + 2 - at };
      if (keepStrings || type !== '$') v.text = b.toString('utf8', next, next + n);
      return v;
    }
    default: {
      // Aggregates: *, %, ~, >, |
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1 || n > 1 << 24) throw new Broken(`aggregate length ${JSON.stringify(line)}`);
      if (n === -1) return { type: 'Null', size: next - at };
      const elements = type === '%' || type === '|' ? 2 * n : n;
      let pos = next;
      const strings: string[] = [];
      for (let i = 0; i < elements; i++) {
        const v = readValue(b, pos, keepStrings, depth + 1);
        if ('need' in v) return v;
        if (keepStrings) strings.push(v.text ?? '');
        pos += v.size;
      }
      if (type === '|') {
        // An attribute decorates the reply that follows it: they are one reply.
        const reply = readValue(b, pos, keepStrings, depth + 1);
        if ('need' in reply) return reply;
        return { ...reply, size: pos + reply.size - at };
      }
      return { type: name, size: pos - at, count: n, ...(keepStrings ? { strings } : {}) };
    }
  }
}

export class RedisParser implements ProtocolParser<DbMessage> {
  readonly protocol = 'redis';
  onMessage: (message: DbMessage) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  /** Bytes a side must hold before trying again (a value known to be incomplete). */
  private need: Record<Side, number> = { client: 0, server: 0 };
  private resync: Record<Side, boolean> = { client: false, server: false };
  /** Requests still owed a reply. */
  private owed = 0;
  /** After SUBSCRIBE or MONITOR every reply is a push. */
  private streaming = false;

  feed(side: Side, chunk: Chunk): void {
    const buf = this.buffers[side];
    buf.push(chunk);
    if (buf.available < this.need[side]) return;
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    this.buffers[side].clear(bytes);
    this.need[side] = 0;
    this.resync[side] = true;
    if (side === 'server' || this.owed > 0) {
      // Which replies were lost cannot be told: answer every waiting request with the loss.
      for (; this.owed > 0; this.owed--) {
        this.onMessage({
          protocol: 'redis', kind: 'response', command: 'Lost', tsStart: ts, tsEnd: ts, tid: 0, offset: this.buffers.server.offset,
          lostBytes: bytes, error: `${bytes} bytes of the ${side} stream were not captured`,
        });
      }
    }
  }

  end(_ts: bigint): void {}

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      if (this.resync[side]) {
        // Resume at a syscall boundary that starts a value.
        if (!buf.atChunkStart() || TYPE_NAMES[String.fromCharCode(buf.byteAt(0)!)] === undefined || (side === 'client' && buf.byteAt(0) !== 0x2a)) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = false;
      }
      const first = buf.byteAt(0)!;
      const inline = side === 'client' && first !== 0x2a; /* '*' */
      const all = buf.peek(buf.available)!;
      let value: Value | NeedMore;
      try {
        value = inline ? this.inline(all) : readValue(all, 0, side === 'client');
      } catch (e) {
        if (!(e instanceof Broken)) throw e;
        this.broken(side, buf, e.message);
        continue;
      }
      if ('need' in value) {
        this.need[side] = value.need;
        return;
      }
      this.need[side] = 0;
      if (side === 'client') this.request(value, buf);
      else this.reply(value, buf);
      buf.skip(value.size);
    }
  }

  /** An inline command: one line of space-separated words. */
  private inline(b: Buffer): Value | NeedMore {
    const end = b.indexOf(LF);
    if (end < 0) {
      if (b.length > MAX_LINE) throw new Broken(`an inline command longer than ${MAX_LINE} bytes`);
      return { need: b.length + 1 };
    }
    const words = b.toString('utf8', 0, end).replace(/\r$/, '').split(/\s+/).filter(Boolean);
    return { type: 'Inline', size: end + 1, strings: words };
  }

  private request(v: Value, buf: StreamBuffer): void {
    const args = v.strings ?? [];
    if (args.length === 0) return; // an empty line or array asks for nothing
    const command = args[0]!.toUpperCase();
    const keyed = !NO_KEY.has(command) && args.length > 1;
    const query = [command, ...(keyed ? [args[1]!] : []), ...new Array(Math.max(0, args.length - 1 - (keyed ? 1 : 0))).fill('?')].join(' ');
    const streaming = STREAMING.has(command);
    const start = buf.when();
    const request: DbRequest = {
      protocol: 'redis', kind: 'request', command, query, params: args.length - 1,
      tsStart: start.ts, tsEnd: buf.whenAt(v.size - 1).ts, tid: start.tid, offset: buf.offset,
    };
    if (streaming) {
      request.noResponse = true;
      request.note = `${command} turns the connection into a stream: what the server sends next answers no request`;
      this.streaming = true;
    }
    this.onMessage(request);
    if (!streaming && !this.streaming) this.owed++;
  }

  private reply(v: Value, buf: StreamBuffer): void {
    const start = buf.when();
    const push = v.type === 'Push' || this.streaming || this.owed === 0;
    const response: DbResponse = {
      protocol: 'redis', kind: 'response', command: v.type, tsStart: start.ts, tsEnd: buf.whenAt(v.size - 1).ts, tid: start.tid, offset: buf.offset,
    };
    if (v.count !== undefined) response.rows = v.count;
    if (v.type === 'Error' || v.type === 'BulkError') {
      const text = v.text ?? '';
      const space = text.indexOf(' ');
      response.errorCode = space > 0 ? text.slice(0, space) : text;
      response.errorMessage = text;
    }
    if (push) response.push = true;
    else this.owed--;
    this.onMessage(response);
  }

  private broken(side: Side, buf: StreamBuffer, reason: string): void {
    const start = buf.when();
    this.onMessage({
      protocol: 'redis', kind: side === 'client' ? 'request' : 'response', command: 'Unparsable', tsStart: start.ts, tsEnd: start.ts, tid: start.tid,
      offset: buf.offset, error: `byte ${buf.offset}: ${reason}`, ...(side === 'client' ? { control: true, noResponse: true } : { push: true }),
    } as DbMessage);
    this.resync[side] = true;
    this.need[side] = 0;
    buf.skipToNextChunk();
  }
}
