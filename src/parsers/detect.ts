/**
 * Which protocol a connection speaks, from the first bytes seen in one
 * direction, and who must have sent them. Bytes may arrive one at a time, so
 * detection answers NEED_MORE until it can decide.
 *
 * Two kinds of evidence:
 *  - a connection start (HTTP/2 preface, PostgreSQL startup, MySQL handshake,
 *    TLS hello): strong, checked first;
 *  - a message start seen mid-connection (a capture that joined late): only
 *    accepted when the bytes frame exactly into whole messages of that
 *    protocol, to keep false positives (MySQL's loose framing especially) down.
 */
import type { Side } from './types';
import { Backend, Frontend } from './postgres/codes';
import { DEFAULT_MAX_FRAME, FRAME_HEADER_BYTES, FrameType, isConnectionFrame, LAST_KNOWN_FRAME_TYPE, SETTING_BYTES } from './http2/frames';

// Detection names only the protocols of the one list (protocols.ts).
import type { Protocol } from './protocols';

export interface Detection {
  protocol: Protocol;
  /** Who must have sent these bytes; undefined when the bytes do not tell. */
  sender: Side | undefined;
  /** True when the bytes are the connection's very first message. */
  connectionStart: boolean;
}

export const NEED_MORE = 'need-more';
/** Bytes we wait for at most before giving up on a direction's prefix. */
export const MAX_DETECT_BYTES = 1024;
/** Bytes a connection may move without a recognisable message start before we stop looking. */
export const GIVE_UP_BYTES = 64 * 1024;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const REQUEST_LINE = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]+ HTTP/1\\.[01]\\r?$`);
const STATUS_LINE = /^HTTP\/1\.[01] \d{3}(?: |\r?$)/;
/**
 * Request lines a strict parser refuses but servers answer (400, 501, 505):
 * an unknown or malformed method, extra spaces, a missing target, another
 * version — all ending in one —, or HTTP/0.9's method and path alone. Still
 * requests: the parser reports them with its error.
 */
const MALFORMED_REQUEST = [
  /^[!-~]{1,24} +(?:[^\r\n]* )?HTTP\/\d\.\d\r?$/,
  new RegExp(`^(?:${METHODS.join('|')}) +\\/[^ \\r\\n]*\\r?$`),
  new RegExp(`^(?:${METHODS.join('|')}) +[^ \\r\\n]+ +HTTP\\/\\d\\.\\d[^\\r\\n]*\\r?$`), // words after the version
];
/** What a request line looks like while it is still arriving. */
const PARTIAL_REQUEST = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]*(?: (?:H(?:T(?:T(?:P(?:/(?:1(?:\\.(?:[01]\\r?)?)?)?)?)?)?)?)?)?$`);
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type Verdict = Detection | typeof NEED_MORE | undefined;

const found = (protocol: Protocol, sender: Side | undefined, connectionStart: boolean): Detection => ({ protocol, sender, connectionStart });

function isPrefixOf(bytes: Buffer, whole: Buffer): boolean {
  return bytes.length < whole.length && whole.subarray(0, bytes.length).equals(bytes);
}

function http1(b: Buffer): Verdict {
  const head = b.toString('latin1', 0, Math.min(b.length, 512));
  const newline = head.indexOf('\n');
  const line = newline < 0 ? head : head.slice(0, newline);
  if (newline >= 0) {
    if (REQUEST_LINE.test(line)) return found('http1', 'client', false);
    if (STATUS_LINE.test(line)) return found('http1', 'server', false);
    if (MALFORMED_REQUEST.some((r) => r.test(line))) return found('http1', 'client', false);
    return undefined;
  }
  if (STATUS_LINE.test(line)) return found('http1', 'server', false);
  if ('HTTP/1.'.startsWith(line) || /^HTTP\/1\.[01]( \d{0,3})?$/.test(line)) return NEED_MORE;
  if (!line.includes(' ') ? METHODS.some((m) => m.startsWith(line)) : PARTIAL_REQUEST.test(line)) return NEED_MORE;
  return undefined;
}

const READY_FOR_QUERY = Backend.ReadyForQuery.charCodeAt(0);
const QUERY = Frontend.Query.charCodeAt(0);

function http2(b: Buffer): Verdict {
  if (b.length >= H2_PREFACE.length && b.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) return found('http2', 'client', true);
  if (isPrefixOf(b, H2_PREFACE)) return NEED_MORE;
  // Mid-connection: whole frames, back to back, ending exactly at the end of the bytes.
  return framesChain(b, FRAME_HEADER_BYTES, (at) => {
    const length = b.readUIntBE(at, 3);
    const type = b[at + 3]!;
    const reserved = b[at + 5]! & 0x80;
    const stream = b.readUInt32BE(at + 5) & 0x7fffffff;
    if (type > LAST_KNOWN_FRAME_TYPE || reserved || length > DEFAULT_MAX_FRAME) return -1;
    // SETTINGS, PING and GOAWAY live on stream 0; HEADERS, DATA and the like never do (WINDOW_UPDATE on either).
    if (isConnectionFrame(type) !== (stream === 0) && type !== FrameType.WINDOW_UPDATE) return -1;
    if (type === FrameType.SETTINGS && length % SETTING_BYTES !== 0) return -1;
    return FRAME_HEADER_BYTES + length;
  }, () => found('http2', undefined, false));
}

/** Are these bytes HTTP/2 frames, back to back, ending exactly at their end (a connection's middle, as `detectProtocol` takes it)? */
export function isHttp2Frames(bytes: Uint8Array): boolean {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const v = http2(b);
  return typeof v === 'object' && v.protocol === 'http2';
}

/** Walk messages whose size `sizeAt` gives; decide only when they end exactly at the end of the bytes. */
function framesChain(b: Buffer, headerSize: number, sizeAt: (at: number) => number, verdict: () => Detection): Verdict {
  if (b.length < headerSize) return undefined; // too little to frame: do not wait for a guess
  let at = 0;
  let frames = 0;
  while (at + headerSize <= b.length) {
    const size = sizeAt(at);
    if (size < headerSize) return undefined;
    at += size;
    frames++;
  }
  if (at === b.length && frames > 0) return verdict();
  return at > b.length ? NEED_MORE : undefined;
}

const PG_SSL_REQUEST = 80877103;
const PG_GSSENC_REQUEST = 80877104;
const PG_CANCEL_REQUEST = 80877102;
const PG_PROTOCOL_3 = 196608;
/** Message types a PostgreSQL client sends / a server sends (protocol 3). */
const PG_FRONTEND = new Set('BCDEFHPQSXcdfp'.split('').map((c) => c.charCodeAt(0)));
const PG_BACKEND = new Set('123ACDEGHIKNRSTVWZcdnsvt'.split('').map((c) => c.charCodeAt(0)));

function postgres(b: Buffer): Verdict {
  if (b.length < 8) {
    // A startup packet begins with a small big-endian length: 00 00 0x xx.
    return b.length === 0 || (b[0] === 0 && (b.length < 2 || b[1] === 0)) ? NEED_MORE : pgMessages(b);
  }
  const length = b.readUInt32BE(0);
  const code = b.readUInt32BE(4);
  if (length === 8 && (code === PG_SSL_REQUEST || code === PG_GSSENC_REQUEST)) return found('postgres', 'client', true);
  if (length === 16 && code === PG_CANCEL_REQUEST) return found('postgres', 'client', true);
  if (code === PG_PROTOCOL_3 && length >= 8 && length < 10_000) {
    if (b.length < length) return NEED_MORE;
    return b[length - 1] === 0 ? found('postgres', 'client', true) : undefined;
  }
  return pgMessages(b);
}

/**
 * Are these bytes whole messages of `protocol`, once another direction has
 * named it? Framing alone, without the evidence a first guess needs (a
 * PostgreSQL client's Parse/Bind/Execute/Sync frames, though it holds no
 * Query; a server's rows frame, though no ReadyForQuery came yet).
 */
export function framesAs(protocol: string, bytes: Uint8Array): boolean {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (protocol === 'postgres') return typeof pgMessages(b, false) === 'object';
  const v = detectProtocol(b);
  return typeof v === 'object' && v.protocol === protocol;
}

function pgMessages(b: Buffer, needEvidence = true): Verdict {
  let sender: Side | undefined;
  let sawReady = false;
  let sawQuery = false;
  const verdict = framesChain(b, 5, (at) => {
    const type = b[at]!;
    const length = b.readUInt32BE(at + 1);
    if (length < 4 || length > 1 << 24) return -1;
    const front = PG_FRONTEND.has(type);
    const back = PG_BACKEND.has(type);
    if (!front && !back) return -1;
    if (type === READY_FOR_QUERY && length === 5 && at + 5 < b.length && 'ITE'.includes(String.fromCharCode(b[at + 5]!))) sawReady = true;
    if (type === QUERY && at + 1 + length <= b.length && b[at + length] === 0) sawQuery = true;
    if (front && !back) sender = sender === 'server' ? undefined : 'client';
    if (back && !front) sender = sender === 'client' ? undefined : 'server';
    return 1 + length;
  }, () => found('postgres', sender, false));
  // Framing alone is weak evidence: insist on a ReadyForQuery or a NUL-terminated query.
  if (needEvidence && verdict !== NEED_MORE && verdict !== undefined && !(sawReady || sawQuery)) return undefined;
  return verdict;
}

/** MySQL commands a client sends first in a packet with sequence id 0. */
const MYSQL_COMMANDS = new Set([0x01, 0x02, 0x03, 0x0e, 0x16, 0x17, 0x18, 0x19, 0x1a]);

function mysql(b: Buffer): Verdict {
  if (b.length < 5) return b.length < 4 || b[3] === 0 ? NEED_MORE : undefined;
  const length = b.readUIntLE(0, 3);
  const seq = b[3]!;
  // An ERR sent instead of the greeting (1040 too many connections, 1130 host not allowed): sequence 0, 0xff, a
  // server error number, printable text, and nothing after it.
  if (seq === 0 && b[4] === 0xff && length >= 4 && length < 512) {
    if (b.length < 4 + length) return b.length < MAX_DETECT_BYTES ? NEED_MORE : undefined;
    const code = b.readUInt16LE(5);
    const text = b.subarray(7, 4 + length);
    if (b.length === 4 + length && code >= 1000 && code < 5000 && text.every((c) => c >= 0x20 && c < 0x7f)) return found('mysql', 'server', true);
    return undefined;
  }
  // Server greeting: sequence 0, protocol version 10, a NUL-terminated version string.
  if (seq === 0 && b[4] === 10 && length >= 20 && length < 1024) {
    if (b.length < 4 + Math.min(length, 64)) return NEED_MORE;
    const nul = b.indexOf(0, 5);
    const version = nul > 5 ? b.toString('latin1', 5, nul) : '';
    if (/^\d+\.\d+\.\d+/.test(version)) return found('mysql', 'server', true);
    return undefined;
  }
  // Mid-connection: a command packet (sequence 0) that is exactly the bytes seen.
  if (seq === 0 && MYSQL_COMMANDS.has(b[4]!) && length >= 1 && length < 1 << 24) {
    if (b.length < 4 + length) return b.length < MAX_DETECT_BYTES ? NEED_MORE : undefined;
    if (b.length !== 4 + length) return undefined;
    if (b[4] === 0x03 || b[4] === 0x16) {
      // COM_QUERY / COM_STMT_PREPARE carry SQL text: demand a keyword, or this matches too much.
      const sql = b.toString('latin1', 5, Math.min(b.length, 64)).trimStart().toUpperCase();
      if (!/^(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|SET|SHOW|BEGIN|COMMIT|ROLLBACK|START|USE|CALL|WITH|EXPLAIN|DESCRIBE|TRUNCATE|LOCK|UNLOCK|GRANT|PREPARE|EXECUTE)\b/.test(sql)) return undefined;
    }
    return found('mysql', 'client', false);
  }
  return undefined;
}

const RESP_COMMAND = /^\*(\d{1,6})\r\n\$(\d{1,9})\r\n([A-Za-z]+)\r\n/;
/** An inline command (redis-cli's and telnet users' `PING\r\n`): a known command word, its arguments, one line. */
const INLINE_COMMAND = /^([A-Za-z]{3,16})( [^\r\n]{0,1000})?\r?\n/;
/** Commands an inline line must start with to be taken for Redis: common ones, so text in other protocols is not. */
const REDIS_INLINE_COMMANDS = new Set(('PING ECHO AUTH SELECT QUIT INFO DBSIZE FLUSHDB FLUSHALL KEYS SCAN TYPE TTL PTTL EXPIRE PERSIST DEL EXISTS RENAME ' +
  'GET SET SETEX SETNX GETSET MGET MSET INCR INCRBY DECR DECRBY APPEND STRLEN GETRANGE ' +
  'HGET HSET HDEL HGETALL HKEYS HVALS HLEN HEXISTS HINCRBY HMGET HMSET ' +
  'LPUSH RPUSH LPOP RPOP LLEN LRANGE LINDEX LSET LREM BLPOP BRPOP ' +
  'SADD SREM SMEMBERS SISMEMBER SCARD SPOP ZADD ZREM ZRANGE ZSCORE ZCARD ZINCRBY ZRANK ' +
  'SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUBLISH MULTI EXEC DISCARD WATCH UNWATCH CLIENT CONFIG MONITOR COMMAND TIME EVAL EVALSHA XADD XREAD XRANGE XLEN').split(' '));

function redis(b: Buffer): Verdict {
  const head = b.toString('latin1', 0, Math.min(b.length, 256));
  if (RESP_COMMAND.test(head)) {
    const m = RESP_COMMAND.exec(head)!;
    return Number(m[2]) === m[3]!.length ? found('redis', 'client', false) : undefined;
  }
  if (/^\*(\d{0,6}(\r(\n(\$(\d{0,9}(\r(\n[A-Za-z]*\r?)?)?)?)?)?)?)?$/.test(head)) return NEED_MORE;
  const inline = INLINE_COMMAND.exec(head);
  // Not an HTTP/0.9 request line ("GET /"): a Redis key does not start with a slash as a path does.
  // Nor a malformed HTTP/1 request line (a word, spaces, a version).
  const httpish = (args: string | undefined) => args !== undefined && (args.startsWith(' /') || /\sHTTP\/\d\.\d\r?$/.test(args));
  if (inline && REDIS_INLINE_COMMANDS.has(inline[1]!.toUpperCase()) && !httpish(inline[2])) return found('redis', 'client', false);
  // The start of one, its line not ended yet.
  const partial = /^([A-Za-z]{1,16})( [^\r\n]{0,1000})?\r?$/.exec(head);
  if (partial && !httpish(partial[2])) {
    const word = partial[1]!.toUpperCase();
    if (partial[2] !== undefined || head.endsWith('\r') ? REDIS_INLINE_COMMANDS.has(word) : [...REDIS_INLINE_COMMANDS].some((c) => c.startsWith(word))) return NEED_MORE;
  }
  // Server replies: whole simple replies only (+OK, -ERR ..., :1), so bare text does not match.
  if (/^(\+[^\r\n]{0,100}|-[A-Z]+ [^\r\n]{0,200}|:-?\d{1,19})\r\n$/.test(head)) return found('redis', 'server', false);
  return undefined;
}

function tls(b: Buffer): Verdict {
  // A record header: handshake (22), version 3.x, a plausible length, then ClientHello (1) or ServerHello (2).
  if (b.length < 6) return b.length === 0 || (b[0] === 22 && (b.length < 2 || b[1] === 3)) ? NEED_MORE : undefined;
  if (b[0] !== 22 || b[1] !== 3 || b[2]! > 4) return undefined;
  if (b[5] === 1) return found('tls', 'client', true);
  if (b[5] === 2) return found('tls', 'server', true);
  return undefined;
}

const DETECTORS: Array<(b: Buffer) => Verdict> = [http2, http1, postgres, mysql, redis, tls];

/**
 * The verdict on a direction's prefix: a Detection, NEED_MORE while some
 * protocol could still match, or undefined when none can.
 */
export function detectProtocol(prefix: Uint8Array): Verdict {
  const b = Buffer.isBuffer(prefix) ? prefix : Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  let waiting = false;
  for (const detect of DETECTORS) {
    const v = detect(b);
    if (v === NEED_MORE) waiting = true;
    else if (v) {
      // A stronger detector still waiting for bytes outranks a weaker one that already matched.
      if (waiting && !v.connectionStart) return NEED_MORE;
      return v;
    }
  }
  return waiting ? NEED_MORE : undefined;
}
