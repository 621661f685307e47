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
import { RESP_ERROR } from './codes';
import type { Chunk, ProtocolParser, Side } from '../types';

const CR = 0x0d;
const LF = 0x0a;
/** Lines (and inline commands) longer than this are taken as broken framing. */
const MAX_LINE = 64 * 1024;
const MAX_DEPTH = 64;
const MAX_BULK = 512 * 1024 * 1024;

/** Commands whose first argument is not a key. */
const NO_KEY = new Set([
  'PING',
  'ECHO',
  'AUTH',
  'HELLO',
  'SELECT',
  'INFO',
  'CONFIG',
  'CLIENT',
  'COMMAND',
  'MULTI',
  'EXEC',
  'DISCARD',
  'QUIT',
  'SCRIPT',
  'EVAL',
  'EVALSHA',
  'PUBLISH',
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'SSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'FLUSHDB',
  'FLUSHALL',
  'DBSIZE',
  'SCAN',
  'KEYS',
  'MONITOR',
  'RESET',
  'SAVE',
  'BGSAVE',
  'TIME',
  'LASTSAVE',
  'SHUTDOWN',
  'SLOWLOG',
  'MEMORY',
  'LATENCY',
  'ACL',
  'FUNCTION',
  'FCALL',
  'WAIT',
]);
const STREAMING = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR']);

interface Command {
  command: string;
  takesKey: boolean;
  streaming: boolean;
}
/** Commands as written, known: a client writes a handful, and upper-casing and two set lookups per request were a tenth of the parse. */
const COMMANDS = new Map<string, Command>();
const MAX_COMMANDS = 512;

/** Command names as their bytes came, by a hash of those bytes: the same string again, not a decode per request. */
const WRITTEN_SLOTS = 256;
const writtenNames: Array<string | undefined> = new Array(WRITTEN_SLOTS);

function writtenCommand(b: Buffer, from: number, to: number): string {
  if (to - from > 32) return b.utf8Slice(from, to);
  let hash = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c >= 0x80) return b.utf8Slice(from, to); // not ASCII: a char code is not a byte
    hash = (Math.imul(hash, 31) + c) | 0;
  }
  const slot = hash & (WRITTEN_SLOTS - 1);
  const cached = writtenNames[slot];
  if (cached !== undefined && cached.length === to - from) {
    let same = true;
    for (let i = 0; i < cached.length && same; i++) same = cached.charCodeAt(i) === b[from + i];
    if (same) return cached;
  }
  return (writtenNames[slot] = b.latin1Slice(from, to));
}

function commandOf(written: string): Command {
  let known = COMMANDS.get(written);
  if (known) return known;
  const command = written.toUpperCase();
  known = { command, takesKey: !NO_KEY.has(command), streaming: STREAMING.has(command) };
  if (COMMANDS.size < MAX_COMMANDS) COMMANDS.set(written, known);
  return known;
}
const TYPE_NAMES: Record<string, string> = {
  '+': 'SimpleString',
  '-': 'Error',
  ':': 'Integer',
  $: 'BulkString',
  '*': 'Array',
  _: 'Null',
  ',': 'Double',
  '#': 'Boolean',
  '!': 'BulkError',
  '=': 'VerbatimString',
  '(': 'BigNumber',
  '%': 'Map',
  '~': 'Set',
  '>': 'Push',
  '|': 'Attribute',
};

/** TYPE_NAMES by a value's first byte. */
const TYPE_BY_BYTE: Array<string | undefined> = Array.from({ length: 256 }, (_, b) => TYPE_NAMES[String.fromCharCode(b)]);
const ARRAY = 0x2a; // '*'

/**
 * The decimal integer `b[from, to)` (an optional minus, then digits), as Number() reads the same text
 * for the lengths RESP allows; undefined for anything else (empty, other bytes, more digits than a safe integer holds).
 */
function integerAt(b: Buffer, from: number, to: number): number | undefined {
  let i = from;
  const negative = b[i] === 0x2d;
  if (negative) i++;
  if (i >= to || to - i > 15) return undefined;
  let n = 0;
  for (; i < to; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

/** Bytes looked at one by one for a line's LF before asking Buffer.indexOf: RESP's lines are mostly a few bytes (`$5`, `:42`), shorter than the native call costs. */
const SHORT_LINE = 24;

/** Where the next LF at or after `from` is in `b`, or -1. */
function lineFeed(b: Buffer, from: number): number {
  const near = Math.min(b.length, from + SHORT_LINE);
  for (let i = from; i < near; i++) if (b[i] === LF) return i;
  return near < b.length ? b.indexOf(LF, near) : -1;
}

/** An aggregate still open: how many elements it still waits for. */
interface Open {
  left: number;
  /** An attribute (`|`): when it ends, the value after it takes its place in the parent. */
  attribute: boolean;
}

/** The top-level value a side is in the middle of, read a line or a bulk piece at a time. */
interface Value {
  start?: { ts: bigint; tid: number; offset: number };
  /** Its type's name, once its first byte (after any attribute) was read. */
  type?: string;
  count?: number;
  text?: string;
  /** A request's arguments: how many, and the first two (command and key), kept. */
  args: number;
  strings: string[];
  open: Open[];
  /** Bytes of a bulk string still to come, its CRLF included; -1 when none is under way. */
  bulkLeft: number;
  /** The bulk string under way is kept (a request's command or key, an error's text). */
  bulkKept?: Buffer[];
  bulkIsError: boolean;
  /** Bytes of it that were never captured. */
  lost: number;
  /** How far the line under way was searched for its LF already (so a line arriving a byte at a time costs linear time). */
  scanned: number;
}

/** Bytes kept of one argument or error text: a key longer than this is cut (it is only named, never matched). */
const KEEP_BYTES = 1024;

/** Every field set, the optional ones too: one object shape for every value keeps this per-byte code's property loads monomorphic. */
const emptyValue = (): Value => ({
  start: undefined,
  type: undefined,
  count: undefined,
  text: undefined,
  args: 0,
  strings: [],
  open: [],
  bulkLeft: -1,
  bulkKept: undefined,
  bulkIsError: false,
  lost: 0,
  scanned: 0,
});

/** Framing broke `at` bytes past the next unconsumed one (where the offending byte is). */
class Broken extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly at = 0,
  ) {
    super(message);
  }
}

/** One direction's bytes and where its parse stands. */
class SideState {
  readonly buf = new StreamBuffer();
  v: Value = emptyValue();
  /**
   * How a side finds its framing again: after lost bytes, at a syscall boundary
   * that starts a value (the kernel's records say where writes began); after
   * bytes that broke framing, by content alone — at a line start that starts a
   * value —, so where it resumes never depends on how the bytes were cut.
   */
  resync: 'gap' | 'content' | undefined = undefined;
  /** In content resync: the next byte starts a line. */
  atLineStart = false;
}

export class RedisParser implements ProtocolParser<DbMessage<'redis'>> {
  readonly protocol = 'redis';
  onMessage: (message: DbMessage<'redis'>) => void = () => {};
  /** Each side's state, picked by a comparison: a property keyed by the side's name cost a megamorphic load per step. */
  private readonly client = new SideState();
  private readonly server = new SideState();
  /** Requests still owed a reply. */
  private owed = 0;
  /** After SUBSCRIBE or MONITOR every reply is a push. */
  private streaming = false;

  private sideOf(side: Side): SideState {
    return side === 'client' ? this.client : this.server;
  }

  feed(side: Side, chunk: Chunk): void {
    this.sideOf(side).buf.push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    const st = this.sideOf(side);
    const v = st.v;
    if (!st.resync && v.bulkLeft > 0) {
      // Inside a bulk string: its length frames the lost bytes, and the value goes on after them.
      const inside = Math.min(bytes, v.bulkLeft);
      v.bulkLeft -= inside;
      v.lost += inside;
      st.buf.lose(inside, inside);
      if (v.bulkLeft === 0) this.bulkEnded(side, ts);
      if (inside === bytes) return;
      bytes -= inside;
    }
    st.buf.clear(bytes);
    st.v = emptyValue();
    st.resync = 'gap';
    if (side === 'server' || this.owed > 0) {
      // Which replies were lost cannot be told: answer every waiting request with the loss.
      for (; this.owed > 0; this.owed--) {
        this.onMessage({
          protocol: 'redis',
          kind: 'response',
          command: 'Lost',
          tsStart: ts,
          tsEnd: ts,
          tid: 0,
          offset: this.server.buf.offset,
          lostBytes: bytes,
          error: `${bytes} bytes of the ${side} stream were not captured`,
          parseErrorCode: RESP_ERROR.LOST_BYTES,
        });
      }
    }
  }

  end(_ts: bigint): void {}

  private parse(side: Side): void {
    const st = this.sideOf(side);
    const buf = st.buf;
    while (buf.available > 0) {
      const v = st.v;
      if (st.resync === 'gap') {
        // Resume at a syscall boundary that starts a value. A server's write while nothing is asked is the rest of
        // the reply that lost bytes (redis-cli's COMMAND DOCS, 200 KB in many writes, made a dozen phantom replies)
        // unless it is a push.
        const first = buf.byteAt(0)!;
        if (!buf.atChunkStart() || !startsValue(side, first) || (side === 'server' && this.owed === 0 && !this.streaming && first !== PUSH)) {
          buf.skipToNextChunk();
          continue;
        }
        st.resync = undefined;
      } else if (st.resync === 'content') {
        if (!this.seekValueLine(side)) return;
        st.resync = undefined;
      }
      try {
        if (v.bulkLeft > 0) this.bulkBytes(side, v);
        else if (!this.line(side, v)) return;
      } catch (e) {
        if (!(e instanceof Broken)) throw e;
        this.broken(side, buf, e.message, e.code, e.at);
      }
    }
  }

  /** Take what is held of the bulk string under way. */
  private bulkBytes(side: Side, v: Value): void {
    const buf = this.sideOf(side).buf;
    // In place in the first chunk: no view, no copy (a pipeline's values mostly arrive in one write).
    const chunk = buf.firstChunk!;
    const head = buf.firstChunkHead;
    const n = Math.min(chunk.length - head, v.bulkLeft);
    const body = Math.max(0, Math.min(n, v.bulkLeft - 2));
    let whole: string | undefined;
    if (v.bulkKept && body > 0) {
      const kept = v.bulkKept.reduce((k, b) => k + b.length, 0);
      // Held whole in this chunk (a command's name, a key): read as it lies, with no copy to join.
      // utf8Slice: toString's encoding lookup and clamping cost as much as the decode of a short key.
      if (kept === 0 && n === v.bulkLeft) {
        const end = head + Math.min(body, KEEP_BYTES);
        whole = side === 'client' && v.strings.length === 0 ? writtenCommand(chunk, head, end) : chunk.utf8Slice(head, end);
      } else if (kept < KEEP_BYTES) v.bulkKept.push(Buffer.from(chunk.subarray(head, head + Math.min(body, KEEP_BYTES - kept))));
    }
    // Its CRLF, where captured (a cut copy may have taken it).
    for (let i = body; i < n; i++) {
      const want = v.bulkLeft - i === 2 ? CR : LF;
      if (chunk[head + i] !== want) throw new Broken('a bulk string not followed by CRLF', RESP_ERROR.CRLF_EXPECTED, i);
    }
    const ts = buf.tsAt(n - 1);
    buf.skip(n);
    v.bulkLeft -= n;
    if (v.bulkLeft === 0) this.bulkEnded(side, ts, whole);
  }

  private bulkEnded(side: Side, ts: bigint, whole?: string): void {
    const v = this.sideOf(side).v;
    const text = whole ?? (v.bulkKept ? Buffer.concat(v.bulkKept).toString('utf8') : undefined);
    v.bulkKept = undefined;
    v.bulkLeft = -1;
    if (text !== undefined) {
      if (v.bulkIsError) v.text = text;
      else v.strings.push(text);
    }
    this.valueEnded(side, ts);
  }

  /** Read one line (a value's header, or an inline command); false when its end is not held yet. */
  private line(side: Side, v: Value): boolean {
    const buf = this.sideOf(side).buf;
    // The line is read in place where it lies in the first chunk (most do); one that spans chunks is joined first.
    let chunk = buf.firstChunk!;
    let head = buf.firstChunkHead;
    let lf = lineFeed(chunk, head + v.scanned) - head;
    if (lf < 0 || lf > MAX_LINE + 1) {
      lf = buf.indexOf(LF, v.scanned, MAX_LINE + 2);
      if (lf < 0) {
        if (buf.available > MAX_LINE)
          throw new Broken(
            side === 'client' && v.open.length === 0 && buf.byteAt(0) !== ARRAY ? `an inline command longer than ${MAX_LINE} bytes` : `a line longer than ${MAX_LINE} bytes`,
            RESP_ERROR.LINE_TOO_LONG,
          );
        v.scanned = buf.available;
        return false;
      }
      buf.peek(lf + 1);
      chunk = buf.firstChunk!;
      head = buf.firstChunkHead;
    }
    v.scanned = 0;
    const ts = buf.tsAt(lf);
    const first = chunk[head]!;
    if (v.open.length === 0 && v.type === undefined && v.start === undefined) {
      const when = buf.when();
      v.start = { ts: when.ts, tid: when.tid, offset: buf.offset };
    }
    if (side === 'client' && v.open.length === 0 && first !== ARRAY) {
      // An inline command: one line of space-separated words.
      const words = chunk
        .toString('utf8', head, head + lf)
        .replace(/\r$/, '')
        .split(/\s+/)
        .filter(Boolean);
      buf.skip(lf + 1);
      v.type = 'Inline';
      v.args = words.length;
      v.strings = words.slice(0, 2);
      this.valueEnded(side, ts);
      return true;
    }
    if (lf === 0 || chunk[head + lf - 1] !== CR) throw new Broken('a line not ended by CRLF', RESP_ERROR.CRLF_EXPECTED);
    const name = TYPE_BY_BYTE[first];
    if (name === undefined) throw new Broken(`0x${first.toString(16)} starts no RESP value`, RESP_ERROR.UNKNOWN_TYPE);
    if (v.open.length > MAX_DEPTH) throw new Broken(`values nested deeper than ${MAX_DEPTH}`, RESP_ERROR.TOO_DEEP);
    const top = v.open.length === 0 && v.type === undefined;
    const depth1 = v.open.length === 1 && !v.open[0]!.attribute;
    switch (first) {
      case 0x2b: // + simple string
      case 0x3a: // : integer
      case 0x5f: // _ null
      case 0x2c: // , double
      case 0x23: // # boolean
      case 0x28: // ( big number
        if (top) v.type = name;
        if (side === 'client' && depth1 && v.strings.length < 2) v.strings.push(chunk.toString('latin1', head + 1, head + lf - 1));
        buf.skip(lf + 1);
        this.valueEnded(side, ts);
        return true;
      case 0x2d: // - error
        if (top) {
          v.type = name;
          v.text = chunk.toString('utf8', head + 1, head + lf - 1);
        }
        buf.skip(lf + 1);
        this.valueEnded(side, ts);
        return true;
      case 0x24: // $ bulk string
      case 0x21: // ! bulk error
      case 0x3d: {
        // = verbatim string
        const n = integerAt(chunk, head + 1, head + lf - 1);
        if (n === undefined || n < -1 || n > MAX_BULK)
          throw new Broken(`bulk length ${JSON.stringify(chunk.toString('latin1', head + 1, head + lf - 1))}`, RESP_ERROR.INVALID_LENGTH);
        buf.skip(lf + 1);
        if (top) v.type = n === -1 ? 'Null' : name;
        if (n === -1) {
          this.valueEnded(side, ts);
          return true;
        }
        v.bulkLeft = n + 2;
        v.bulkIsError = top && first !== 0x24;
        v.bulkKept = v.bulkIsError || (side === 'client' && depth1 && v.strings.length < 2) ? [] : undefined;
        return true;
      }
      default: {
        // Aggregates: *, %, ~, >, |
        const n = integerAt(chunk, head + 1, head + lf - 1);
        if (n === undefined || n < -1 || n > 1 << 24)
          throw new Broken(`aggregate length ${JSON.stringify(chunk.toString('latin1', head + 1, head + lf - 1))}`, RESP_ERROR.INVALID_LENGTH);
        buf.skip(lf + 1);
        if (first === 0x7c /* | */) {
          v.open.push({ left: 2 * n, attribute: true });
          if (n === 0) this.valueEnded(side, ts);
          return true;
        }
        if (top) {
          v.type = n === -1 ? 'Null' : name;
          if (n !== -1) v.count = n;
          if (side === 'client') v.args = Math.max(0, n);
        }
        const elements = first === 0x25 /* % */ ? 2 * n : n;
        if (elements <= 0) this.valueEnded(side, ts);
        else v.open.push({ left: elements, attribute: false });
        return true;
      }
    }
  }

  /** A value ended: the aggregate it is an element of counts it, and a whole top-level value is reported. */
  private valueEnded(side: Side, ts: bigint): void {
    const st = this.sideOf(side);
    const v = st.v;
    for (;;) {
      // Never index -1: an array's property "-1" is looked up by name, on the slow path (a fifth of this parser's time).
      const depth = v.open.length;
      const open = depth > 0 ? v.open[depth - 1] : undefined;
      if (!open) {
        if (v.type === undefined) return; // an attribute alone so far: the reply it decorates follows
        st.v = emptyValue();
        if (side === 'client') this.request(v, ts);
        else this.reply(v, ts);
        return;
      }
      if (open.attribute && open.left === 0) {
        // An attribute ended: the next value stands where it stood.
        v.open.pop();
        return;
      }
      if (--open.left > 0) return;
      v.open.pop();
      if (open.attribute) return;
    }
  }

  private request(v: Value, tsEnd: bigint): void {
    const args = v.strings;
    if (v.args === 0) return; // an empty line or array asks for nothing
    const { command, takesKey, streaming } = commandOf(args[0] ?? '');
    const keyed = takesKey && v.args > 1;
    const query = (keyed ? `${command} ${args[1] ?? ''}` : command) + ' ?'.repeat(Math.max(0, v.args - 1 - (keyed ? 1 : 0)));
    const start = v.start!;
    const request: DbRequest<'redis'> = {
      protocol: 'redis',
      kind: 'request',
      command,
      query,
      params: v.args - 1,
      tsStart: start.ts,
      tsEnd,
      tid: start.tid,
      offset: start.offset,
    };
    if (v.lost) request.lostBytes = v.lost;
    if (streaming) {
      request.noResponse = true;
      request.note = `${command} turns the connection into a stream: what the server sends next answers no request`;
      this.streaming = true;
    }
    this.onMessage(request);
    if (!streaming && !this.streaming) this.owed++;
  }

  private reply(v: Value, tsEnd: bigint): void {
    const start = v.start!;
    const push = v.type === 'Push' || this.streaming || this.owed === 0;
    const response: DbResponse<'redis'> = { protocol: 'redis', kind: 'response', command: v.type!, tsStart: start.ts, tsEnd, tid: start.tid, offset: start.offset };
    if (v.count !== undefined) response.rows = v.count;
    if (v.type === 'Error' || v.type === 'BulkError') {
      const text = v.text ?? '';
      const space = text.indexOf(' ');
      response.errorCode = space > 0 ? text.slice(0, space) : text;
      response.errorMessage = text;
    }
    if (v.lost) response.lostBytes = v.lost;
    if (push) response.push = true;
    else this.owed--;
    this.onMessage(response);
  }

  private broken(side: Side, buf: StreamBuffer, reason: string, code: string, at: number): void {
    const st = this.sideOf(side);
    const start = buf.whenAt(at);
    const offset = buf.offset + at;
    const unparsable = {
      protocol: 'redis' as const,
      command: 'Unparsable',
      tsStart: start.ts,
      tsEnd: start.ts,
      tid: start.tid,
      offset,
      error: `byte ${offset}: ${reason}`,
      parseErrorCode: code,
    };
    this.onMessage(side === 'client' ? { ...unparsable, kind: 'request', control: true, noResponse: true } : { ...unparsable, kind: 'response', push: true });
    st.resync = 'content';
    st.atLineStart = false;
    st.v = emptyValue();
    buf.skip(at);
  }

  /** Drop bytes up to a line start whose first byte starts a value; false when more bytes are needed to find one. */
  private seekValueLine(side: Side): boolean {
    const st = this.sideOf(side);
    const buf = st.buf;
    for (;;) {
      if (!st.atLineStart) {
        const lf = buf.indexOf(LF);
        if (lf < 0) {
          buf.skip(buf.available);
          return false;
        }
        buf.skip(lf + 1);
        st.atLineStart = true;
      }
      const b = buf.byteAt(0);
      if (b === undefined) return false;
      if (startsValue(side, b)) return true;
      st.atLineStart = false;
    }
  }
}

const PUSH = 0x3e; // '>'

/** A byte a value can start with: any RESP type from a server, an array (a command) from a client. */
function startsValue(side: Side, b: number): boolean {
  return side === 'client' ? b === ARRAY : TYPE_BY_BYTE[b] !== undefined;
}
