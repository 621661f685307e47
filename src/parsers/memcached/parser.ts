/**
 * memcached, both directions: the text protocol (classic commands and the
 * meta commands mg/ms/md/ma/mn/me) and the binary protocol, told apart by a
 * side's first byte (0x80/0x81 start binary packets).
 *
 * Replies answer requests in order. Some requests get none: a text command
 * with `noreply` (reported as one-way), and quiet ones — binary getq, setq …
 * and meta commands with the `q` flag — whose usual answer (a miss, a
 * success) the server leaves out. The parser keeps the requests it has
 * seen: a reply that cannot be a quiet request's (a later opaque, `MN`, an
 * `HD` where the quiet one's `HD` is the one left out) tells that the quiet
 * one got its usual answer, which is reported for it (`quiet`), so every
 * request still gets its answer in order.
 *
 * Keys are counted and named in `query` (a key is data, not a collection:
 * it never names a span); stored values are never kept. A retrieval's reply
 * says how many values came (`rows`: hits; 0 is a miss).
 */
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { drainBody, framedBody, loseIntoBody, type FramedBody } from '../shared/framed-body';
import { brokenAt, StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import {
  BINARY_HEADER,
  BINARY_RETRIEVALS,
  END,
  ERROR_REPLIES,
  Magic,
  MEMCACHED_ERROR,
  META_COMMANDS,
  OPCODE_NAMES,
  OTHER_COMMANDS,
  OUTCOME_STATUSES,
  QUIET_OPCODES,
  RETRIEVAL_COMMANDS,
  STATUS_NAMES,
  STORAGE_COMMANDS,
} from './codes';

type Request = DbRequest<'memcached'>;
type Response = DbResponse<'memcached'>;

const LF = 0x0a;
const CR = 0x0d;
/** memcached refuses command lines longer than this (KEY_MAX_LENGTH and arguments): longer is broken framing. */
const MAX_LINE = 2048;
/** A data block or binary body larger than this is not believed (items are at most 1 MB by default; 128 MB with -I). */
const MAX_BODY = 128 * 1024 * 1024;

/** What a request waits for, and what its reply has shown so far. */
interface Waiting {
  command: string;
  /** retrieval: VALUE blocks then END; stats: STAT lines then END; line: one reply line (VA with its data block). */
  reply: 'retrieval' | 'stats' | 'line' | 'binary' | 'binary-stats';
  quiet: boolean;
  opaque?: number;
  retrieval: boolean;
}

interface Reply {
  hits: number;
  tsStart: bigint;
  tid: number;
  offset: number;
}

/** Is this the start of a text command line (a known command word, then a space or the line's end)? */
function startsCommand(line: string): boolean {
  const word = /^[a-z_]+/.exec(line)?.[0];
  return word !== undefined && (line.length === word.length || ' \r\n'.includes(line[word.length]!)) && isCommand(word);
}

function isCommand(word: string): boolean {
  return STORAGE_COMMANDS.has(word) || RETRIEVAL_COMMANDS.has(word) || OTHER_COMMANDS.has(word) || META_COMMANDS.has(word);
}

/** A whole-number token, or undefined. */
function count(token: string | undefined): number | undefined {
  return token !== undefined && /^\d{1,10}$/.test(token) ? Number(token) : undefined;
}

class Broken extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class MemcachedParser implements ProtocolParser<DbMessage<'memcached'>> {
  readonly protocol = 'memcached';
  onMessage: (message: DbMessage<'memcached'>) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  private readonly binary: Record<Side, boolean | undefined> = { client: undefined, server: undefined };
  /** A data block (text: its CRLF included) or binary body under way on a side: bytes left, and what follows its end. */
  private readonly block: Record<Side, FramedBody | undefined> = { client: undefined, server: undefined };
  /** After lost bytes: resume at a syscall boundary that starts a command or reply; after broken bytes: at a line or header that does, by content. */
  private readonly resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  private readonly waiting: Waiting[] = [];
  private reply: Reply | undefined;

  feed(side: Side, chunk: Chunk): void {
    this.buffers[side].push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    if (!this.resync[side]) {
      // Inside a data block: its length frames the lost bytes.
      bytes = loseIntoBody(this.buffers[side], this.block, side, bytes);
      if (bytes === 0) return;
    }
    this.buffers[side].clear(bytes);
    this.block[side] = undefined;
    this.resync[side] = 'gap';
    if (side === 'server') this.reply = undefined;
    // Which replies were lost cannot be told: every waiting request is answered with the loss.
    for (let n = this.waiting.splice(0).length; n > 0; n--) {
      this.respond(
        { command: 'Lost', error: `${bytes} bytes of the ${side} stream were not captured`, parseErrorCode: MEMCACHED_ERROR.LOST_BYTES, lostBytes: bytes },
        { hits: 0, tsStart: ts, tid: 0, offset: this.buffers.server.offset },
        ts,
      );
    }
  }

  end(_ts: bigint): void {}

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      const block = this.block[side];
      if (block) {
        if (!this.drain(side, block)) return;
        continue;
      }
      if (this.resync[side] === 'gap') {
        if (!buf.atChunkStart() || !this.startsHere(side)) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = undefined;
      } else if (this.resync[side] === 'content') {
        if (!this.seekStart(side)) return;
        this.resync[side] = undefined;
      }
      this.binary[side] ??= buf.byteAt(0) === (side === 'client' ? Magic.Request : Magic.Response);
      try {
        if (!(this.binary[side] ? this.packet(side) : this.line(side))) return;
      } catch (e) {
        if (!(e instanceof Broken)) throw e;
        this.broken(side, e.message, e.code);
      }
    }
  }

  /** Skip what is held of a block; at its end check its CRLF and go on; false when more bytes are needed. */
  private drain(side: Side, block: FramedBody): boolean {
    const state = drainBody(this.buffers[side], block);
    if (state === 'more') return false;
    this.block[side] = undefined;
    if (state === 'no-crlf') this.broken(side, 'a data block not followed by CRLF', MEMCACHED_ERROR.INVALID_DATA_BLOCK);
    else block.then(Buffer.concat(block.kept));
    return true;
  }

  /** Do the bytes held start a command (client) or a reply (server) of this side's protocol? */
  private startsHere(side: Side): boolean {
    const buf = this.buffers[side];
    if (this.binary[side]) return buf.byteAt(0) === (side === 'client' ? Magic.Request : Magic.Response);
    const lf = buf.indexOf(LF, 0, 16);
    const head = buf.peek(lf >= 0 ? lf + 1 : Math.min(buf.available, 16))!.toString('latin1');
    return side === 'client'
      ? startsCommand(head)
      : /^(VALUE|END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|TOUCHED|OK|ERROR|CLIENT_ERROR|SERVER_ERROR|STAT|VERSION|HD|VA|EN|NF|NS|EX|MN|ME|\d)/.test(head);
  }

  /**
   * Broken framing: drop bytes until a line start (text) or a header (binary) that starts a
   * message, decided on content alone — a line is judged once it is whole or 16 bytes of it are
   * held, so where reading resumes never depends on how the bytes were cut.
   */
  private seekStart(side: Side): boolean {
    const buf = this.buffers[side];
    for (;;) {
      if (this.binary[side]) {
        const head = buf.peek(BINARY_HEADER);
        if (!head) return false;
        if (plausibleHeader(head, side)) return true;
        buf.skip(1);
        continue;
      }
      if (!this.atLineStart[side]) {
        const lf = buf.indexOf(LF, 0, MAX_LINE + 2);
        if (lf < 0) {
          if (buf.available > MAX_LINE) buf.skip(buf.available - MAX_LINE);
          return false;
        }
        buf.skip(lf + 1);
        this.atLineStart[side] = true;
      }
      const lf = buf.indexOf(LF, 0, 16);
      if (lf < 0 && buf.available < 16) return false;
      this.atLineStart[side] = false;
      if (this.startsHere(side)) return true;
    }
  }

  /** In content resync: the next byte starts a line. */
  private readonly atLineStart: Record<Side, boolean> = { client: false, server: false };

  private broken(side: Side, reason: string, code: string): void {
    const buf = this.buffers[side];
    const unreadable = {
      protocol: 'memcached' as const,
      command: 'Unparsable',
      ...brokenAt(buf, reason, code),
    };
    this.onMessage(side === 'client' ? { ...unreadable, kind: 'request', control: true, noResponse: true } : { ...unreadable, kind: 'response', push: true });
    if (side === 'server') this.reply = undefined;
    this.resync[side] = 'content';
    this.atLineStart[side] = false;
    if (this.binary[side]) buf.skip(1);
  }

  // ---- text protocol ----

  /** One text line and what follows it; false when its end is not held yet. */
  private line(side: Side): boolean {
    const buf = this.buffers[side];
    const lf = buf.indexOf(LF, 0, MAX_LINE + 2);
    if (lf < 0) {
      if (buf.available > MAX_LINE) throw new Broken(`a line longer than ${MAX_LINE} bytes`, MEMCACHED_ERROR.LINE_TOO_LONG);
      return false;
    }
    const start = buf.when();
    const offset = buf.offset;
    const text = buf.peek(lf + 1)!.toString('latin1', 0, lf > 0 && buf.byteAt(lf - 1) === CR ? lf - 1 : lf);
    buf.skip(lf + 1);
    const end = buf.when().ts > start.ts ? buf.when().ts : start.ts;
    if (side === 'client') this.command(text, { ts: start.ts, tid: start.tid, offset }, end);
    else this.replyLine(text, { ts: start.ts, tid: start.tid, offset }, end);
    return true;
  }

  private command(text: string, at: { ts: bigint; tid: number; offset: number }, endTs: bigint): void {
    const tokens = text.split(' ').filter(Boolean);
    const command = tokens[0] ?? '';
    if (!isCommand(command)) {
      // memcached answers ERROR to a line it does not know: a request all the same, so the answers stay in order.
      if (!/^[\x21-\x7e]{1,64}$/.test(command)) throw new Broken(`${JSON.stringify(text.slice(0, 32))} is no command`, MEMCACHED_ERROR.UNKNOWN_COMMAND);
      this.request({ command, error: `byte ${at.offset}: unknown command ${JSON.stringify(command)}`, parseErrorCode: MEMCACHED_ERROR.UNKNOWN_COMMAND }, at, endTs, {
        command,
        reply: 'line',
        quiet: false,
        retrieval: false,
      });
      return;
    }
    // `quit` closes the connection without a reply, as `noreply` asks none: both are answered by nothing.
    const noreply = tokens[tokens.length - 1] === 'noreply' || command === 'quit';
    const meta = META_COMMANDS.has(command);
    const quiet = meta && tokens.slice(2).includes('q');
    let keys: string[];
    let dataLength: number | undefined;
    if (STORAGE_COMMANDS.has(command)) {
      keys = tokens.slice(1, 2);
      dataLength = count(tokens[4]);
      if (dataLength === undefined || dataLength > MAX_BODY) throw new Broken(`${command} states no data length`, MEMCACHED_ERROR.INVALID_DATA_BLOCK);
    } else if (command === 'ms') {
      keys = tokens.slice(1, 2);
      dataLength = count(tokens[2]);
      if (dataLength === undefined || dataLength > MAX_BODY) throw new Broken('ms states no data length', MEMCACHED_ERROR.INVALID_DATA_BLOCK);
    } else if (command === 'gat' || command === 'gats') keys = tokens.slice(2);
    else if (RETRIEVAL_COMMANDS.has(command) || command === 'delete' || command === 'incr' || command === 'decr' || command === 'touch' || (meta && command !== 'mn'))
      keys = tokens.slice(1, command === 'get' || command === 'gets' ? undefined : 2);
    else keys = [];
    const fields: Partial<Request> & { command: string } = { command, query: [command, ...keys].join(' '), params: keys.length };
    if (noreply) fields.oneWay = true;
    const waiting: Waiting = {
      command,
      reply: RETRIEVAL_COMMANDS.has(command) ? 'retrieval' : command === 'stats' ? 'stats' : 'line',
      quiet,
      retrieval: RETRIEVAL_COMMANDS.has(command) || command === 'mg',
    };
    if (dataLength === undefined) {
      this.request(fields, at, endTs, noreply ? undefined : waiting);
      return;
    }
    // The request ends with its data block (never kept).
    this.block.client = framedBody(dataLength, true, () =>
      this.request(fields, at, this.buffers.client.lastTs() > endTs ? this.buffers.client.lastTs() : endTs, noreply ? undefined : waiting),
    );
  }

  private request(fields: Partial<Request> & { command: string }, at: { ts: bigint; tid: number; offset: number }, endTs: bigint, waiting: Waiting | undefined): void {
    if (waiting) this.waiting.push(waiting);
    const request: Request = { protocol: 'memcached', kind: 'request', tsStart: at.ts, tsEnd: endTs, tid: at.tid, offset: at.offset, ...fields };
    this.onMessage(request);
  }

  private replyLine(text: string, at: { ts: bigint; tid: number; offset: number }, endTs: bigint): void {
    const space = text.indexOf(' ');
    const word = space < 0 ? text : text.slice(0, space);
    const rest = space < 0 ? '' : text.slice(space + 1);
    const head = this.waiting[0];
    const reply = (this.reply ??= { hits: 0, tsStart: at.ts, tid: at.tid, offset: at.offset });
    if (word === 'VALUE' && head?.reply === 'retrieval') {
      const length = count(text.split(' ')[3]);
      if (length === undefined || length > MAX_BODY) throw new Broken('VALUE states no data length', MEMCACHED_ERROR.INVALID_DATA_BLOCK);
      reply.hits++;
      this.block.server = framedBody(length, true, () => {});
      return;
    }
    if (word === 'STAT' && head?.reply === 'stats') return;
    if (word === 'VA') {
      const length = count(text.split(' ')[1]);
      if (length === undefined || length > MAX_BODY) throw new Broken('VA states no data length', MEMCACHED_ERROR.INVALID_DATA_BLOCK);
      reply.hits++;
      this.block.server = framedBody(length, true, () => this.answer(word, '', this.buffers.server.lastTs()));
      return;
    }
    this.answer(word, rest, endTs);
  }

  /** A reply ends: it answers the oldest waiting request, after the quiet ones it shows got their usual answer. */
  private answer(word: string, rest: string, endTs: bigint): void {
    const reply = this.reply ?? { hits: 0, tsStart: endTs, tid: 0, offset: this.buffers.server.offset };
    this.reply = undefined;
    while (this.waiting[0]?.quiet && !answersQuiet(word, this.waiting[0].command)) {
      const quiet = this.waiting.shift()!;
      this.respond({ command: quiet.command === 'mg' ? 'EN' : 'HD', note: 'quiet: its usual answer left out', ...(quiet.retrieval ? { rows: 0 } : {}) }, reply, reply.tsStart);
    }
    const head = this.waiting.shift();
    const fields: Partial<Response> & { command: string } = { command: word === '' ? 'empty' : /^\d+$/.test(word) ? 'NUMBER' : word };
    if (head?.retrieval || word === END) fields.rows = reply.hits;
    if (ERROR_REPLIES.has(word)) {
      fields.errorCode = word;
      if (rest) fields.errorMessage = rest;
    }
    this.respond(fields, reply, endTs);
  }

  private respond(fields: Partial<Response> & { command: string }, reply: Reply, endTs: bigint): void {
    const response: Response = { protocol: 'memcached', kind: 'response', tsStart: reply.tsStart, tsEnd: endTs, tid: reply.tid, offset: reply.offset, ...fields };
    this.onMessage(response);
  }

  // ---- binary protocol ----

  /** One binary packet; false when it is not all held yet. */
  private packet(side: Side): boolean {
    const buf = this.buffers[side];
    const header = buf.peek(BINARY_HEADER);
    if (!header) return false;
    if (!plausibleHeader(header, side)) throw new Broken(`a ${side === 'client' ? 'request' : 'response'} header that does not frame`, MEMCACHED_ERROR.INVALID_HEADER);
    const opcode = header[1]!;
    const keyLength = header.readUInt16BE(2);
    const extrasLength = header[4]!;
    const status = header.readUInt16BE(6);
    const bodyLength = header.readUInt32BE(8);
    const opaque = header.readUInt32BE(12);
    const need = BINARY_HEADER + extrasLength + keyLength;
    if (buf.available < need) return false;
    const start = buf.when();
    const offset = buf.offset;
    const key = buf.peek(need)!.toString('latin1', BINARY_HEADER + extrasLength, need);
    buf.skip(need);
    const valueLength = bodyLength - extrasLength - keyLength;
    const command = OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16).padStart(2, '0')}`;
    const done = () => {
      const at = { ts: start.ts, tid: start.tid, offset };
      const endTs = buf.lastTs() > start.ts ? buf.lastTs() : start.ts;
      if (side === 'client') this.binaryRequest(command, opcode, key, opaque, at, endTs);
      else this.binaryResponse(opcode, key, status, opaque, valueLength, at, endTs);
    };
    if (valueLength === 0) done();
    else this.block[side] = framedBody(valueLength, false, done);
    return true;
  }

  private binaryRequest(command: string, opcode: number, key: string, opaque: number, at: { ts: bigint; tid: number; offset: number }, endTs: bigint): void {
    const quiet = QUIET_OPCODES.has(opcode);
    const noAnswer = command === 'quitq';
    const fields: Partial<Request> & { command: string } = { command, query: key ? `${command} ${key}` : command, params: key ? 1 : 0 };
    if (noAnswer) fields.oneWay = true;
    this.request(
      fields,
      at,
      endTs,
      noAnswer ? undefined : { command, reply: command === 'stat' ? 'binary-stats' : 'binary', quiet, opaque, retrieval: BINARY_RETRIEVALS.has(opcode) },
    );
  }

  private binaryResponse(_opcode: number, key: string, status: number, opaque: number, valueLength: number, at: { ts: bigint; tid: number; offset: number }, endTs: bigint): void {
    // Quiet requests before the one this answers got their usual answer (a miss, a success), left out.
    while (this.waiting[0]?.quiet && this.waiting[0].opaque !== opaque) {
      const quiet = this.waiting.shift()!;
      this.respond(
        { command: quiet.retrieval ? 'KEY_NOT_FOUND' : 'NO_ERROR', note: 'quiet: its usual answer left out', ...(quiet.retrieval ? { rows: 0 } : {}) },
        { hits: 0, tsStart: at.ts, tid: at.tid, offset: at.offset },
        at.ts,
      );
    }
    const head = this.waiting[0];
    if (head?.reply === 'binary-stats' && (key !== '' || valueLength !== 0)) {
      // One packet per statistic; a packet with neither key nor value ends them.
      this.reply ??= { hits: 0, tsStart: at.ts, tid: at.tid, offset: at.offset };
      return;
    }
    const reply = this.reply ?? { hits: 0, tsStart: at.ts, tid: at.tid, offset: at.offset };
    this.reply = undefined;
    if (head) this.waiting.shift();
    const name = STATUS_NAMES[status] ?? `0x${status.toString(16)}`;
    const fields: Partial<Response> & { command: string } = { command: name };
    if (head?.retrieval) fields.rows = status === 0 ? 1 : 0;
    if (!OUTCOME_STATUSES.has(status)) fields.errorCode = name;
    this.respond(fields, reply, endTs);
  }
}

/** What a quiet meta command's reply can be when it is not left out: its failures and, for mg, a hit. */
const VISIBLE_WHEN_QUIET: Readonly<Record<string, ReadonlySet<string>>> = {
  mg: new Set(['VA', 'HD']),
  ms: new Set(['NS', 'EX', 'NF']),
  md: new Set(['NF', 'EX']),
  ma: new Set(['NF', 'NS', 'EX', 'VA']),
};

/** Can reply `word` be a quiet `command`'s? If not, that command got its usual answer, left out. */
function answersQuiet(word: string, command: string): boolean {
  return ERROR_REPLIES.has(word) || (VISIBLE_WHEN_QUIET[command]?.has(word) ?? false);
}

/** A binary header this side could send: its magic, a data type of 0, lengths that fit in the body. */
export function plausibleHeader(head: Buffer, side: Side | undefined): boolean {
  const magic = head[0]!;
  if (side === 'client' ? magic !== Magic.Request : side === 'server' ? magic !== Magic.Response : magic !== Magic.Request && magic !== Magic.Response) return false;
  const keyLength = head.readUInt16BE(2);
  const extrasLength = head[4]!;
  const bodyLength = head.readUInt32BE(8);
  return head[5] === 0 && keyLength + extrasLength <= bodyLength && bodyLength <= MAX_BODY && keyLength <= 250;
}
