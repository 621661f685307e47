/**
 * Incremental HTTP/1.x parser. Bytes may arrive split anywhere; the messages
 * that come out do not depend on where. Malformed input becomes a message with
 * `error` (offset and reason) and the side resynchronises on the next line
 * that looks like a message start; nothing throws out of feed().
 *
 * Lines are parsed from the bytes in place (no string per line, no regex on
 * the hot path); only the strings a message carries are made.
 */
import type { Chunk, ProtocolParser, Side } from '../types';
import { HTTP1_ERROR as E, type HeaderList, type Http1ErrorCode, type Http1Message, type Http1Request, type Http1Response } from './messages';

export interface Http1Limits {
  /** Bytes of start line plus headers allowed before the message is refused. */
  maxHeaderBytes: number;
  maxHeaderCount: number;
}

export const DEFAULT_LIMITS: Http1Limits = { maxHeaderBytes: 1 << 20, maxHeaderCount: 256 };

const enum State {
  Start,
  Headers,
  BodyLength,
  BodyClose,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Resync,
  HandedOver,
  Paused,
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
/** Bytes decoded at once for headTextOf: a browser's request head is about 750. */
const HEAD_WINDOW = 2048;

/** RFC 9110 tchar: the bytes a method or field name may hold. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

const COMMON_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];

/** Strings for the common methods and versions are shared, not made per message. */
function methodString(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  for (const m of COMMON_METHODS) {
    if (m.length !== len) continue;
    let same = true;
    for (let i = 0; i < len; i++)
      if (buf[start + i] !== m.charCodeAt(i)) {
        same = false;
        break;
      }
    if (same) return m;
  }
  return buf.latin1Slice(start, end);
}

/** Returns 'HTTP/x.y' if bytes [start, start+8) are an HTTP version, else undefined. */
function versionAt(buf: Buffer, start: number, end: number): string | undefined {
  if (end - start !== 8) return undefined;
  if (buf[start] !== 0x48 || buf[start + 1] !== 0x54 || buf[start + 2] !== 0x54 || buf[start + 3] !== 0x50 || buf[start + 4] !== 0x2f) return undefined;
  const major = buf[start + 5]!;
  const dot = buf[start + 6]!;
  const minor = buf[start + 7]!;
  if (major < 0x30 || major > 0x39 || dot !== 0x2e || minor < 0x30 || minor > 0x39) return undefined;
  if (major === 0x31 && minor === 0x31) return 'HTTP/1.1';
  if (major === 0x31 && minor === 0x30) return 'HTTP/1.0';
  return buf.latin1Slice(start, end);
}

function isRequestLine(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && TCHAR[buf[i]!]) i++;
  if (i === start || i >= end || buf[i] !== SP) return false;
  const lastSpace = buf.lastIndexOf(SP, end - 1);
  return lastSpace > i + 1 && versionAt(buf, lastSpace + 1, end) !== undefined && buf.indexOf(SP, i + 1) === lastSpace;
}

function isStatusLine(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 12 || versionAt(buf, start, start + 8) === undefined || buf[start + 8] !== SP) return false;
  for (let i = start + 9; i < start + 12; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) return false;
  return end - start === 12 || buf[start + 12] === SP;
}

function quote(buf: Buffer, start: number, end: number, max = 80): string {
  return JSON.stringify(buf.latin1Slice(start, Math.min(end, start + max)));
}

/** Bytes no request target holds: control characters and DEL (RFC 3986 allows none of them). */
// eslint-disable-next-line no-control-regex
const INVALID_TARGET_BYTE = /[\x00-\x1f\x7f]/;

/** Bytes a paused request side keeps after a CONNECT while its answer is awaited (tunnel data, most likely). */
const MAX_PAUSED_BYTES = 64 * 1024;

interface Draft {
  tsStart: bigint;
  tid: number;
  offset: number;
  method: string;
  target: string;
  version: string;
  status: number;
  reason: string;
  headers: HeaderList;
  headerBytes: number;
  bodyBytes: number;
  lostBytes: number;
  /** Content-Length values seen (as sent), Transfer-Encoding joined. */
  contentLength: string | undefined;
  contentLengthConflict: boolean;
  contentLengthFields: number;
  transferEncoding: string | undefined;
  chunks: number;
  trailers: HeaderList | undefined;
  /** The first deviation from strict parsing read past (see MessageBase.lenient). */
  deviation?: { code: Http1ErrorCode; reason: string; offset: number };
  hasStartLine: boolean;
  /** Response: method of the request it answers. */
  requestMethod: string | undefined;
}

/**
 * What a side parser tells its connection's parser. The connection's parser
 * implements it with methods, not closures per side: with thousands of
 * connections open, two hook objects of five closures each were about 0.6 KiB
 * of every connection (heap snapshot, bench/connections.bench.ts).
 */
interface SideHooks {
  emitMessage(message: Http1Message): void;
  /** Request side: a request line was read. */
  requestStarted(method: string): void;
  /** Response side: the method of the request the next final response answers. */
  nextRequestMethod(): string | undefined;
  /** Response side: a final response's headers are read (the request is answered). */
  responseHeadersDone(): void;
  /** A side switched protocols (101, CONNECT 2xx): stop parsing the connection. `upgrade`: the response's Upgrade value. */
  switchProtocols(upgrade?: string): void;
}

class SideParser {
  private state = State.Start;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private remaining = 0;
  private draft: Draft | null = null;
  /** Stream offset of the first byte of the chunk being fed. */
  private position = 0;
  private tsLast = 0n;

  constructor(
    private readonly isRequest: boolean,
    private readonly hooks: SideHooks,
    private readonly limits: Http1Limits,
  ) {}

  feed(chunk: Chunk): void {
    const d = chunk.data;
    const data = Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    this.tsLast = chunk.ts;
    this.headBuf = undefined; // a source may refill a buffer it gave before: text read from it holds for this call only
    const length = data.length;
    let i = 0;
    while (i < length) {
      const state = this.state;
      if (state === State.HandedOver) break;
      if (state === State.Paused) {
        this.leftover = Buffer.concat([this.leftover ?? Buffer.alloc(0), data.subarray(i)]).subarray(0, MAX_PAUSED_BYTES);
        break;
      }
      if (state === State.BodyLength || state === State.ChunkData) {
        const take = Math.min(this.remaining, length - i);
        this.remaining -= take;
        this.draft!.bodyBytes += take;
        i += take;
        if (this.remaining === 0) {
          if (state === State.BodyLength) this.complete(chunk.ts);
          else this.state = State.ChunkDataEnd;
        }
        continue;
      }
      if (state === State.BodyClose) {
        this.draft!.bodyBytes += length - i;
        break;
      }
      if (state === State.Start && this.partsLength === 0) {
        // Blank lines between messages are allowed (RFC 9112 §2.2).
        while (i < length && (data[i] === CR || data[i] === LF)) i++;
        if (i === length) break;
        if (!this.draft) this.draft = this.newDraft(chunk.ts, chunk.tid, this.position + i);
      }
      const newline = data.indexOf(LF, i);
      if (newline < 0) {
        this.keep(data, i, length);
        break;
      }
      const lineOffset = this.position + i - this.partsLength;
      if (this.partsLength === 0) {
        const end = newline > i && data[newline - 1] === CR ? newline - 1 : newline;
        this.onLine(data, i, end, chunk, lineOffset);
      } else {
        const line = Buffer.concat([...this.parts, data.subarray(i, newline)]);
        this.parts = [];
        this.partsLength = 0;
        const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
        this.onLine(line, 0, end, chunk, lineOffset);
      }
      i = newline + 1;
      if (this.state === State.HandedOver) {
        // What follows the switch in this chunk is the new protocol's.
        this.leftover = data.subarray(i);
        break;
      }
    }
    this.position += length;
  }

  /** Bytes after the message that switched protocols, in the chunk that carried it. */
  leftover: Buffer | undefined;

  /** headTextOf's text: the bytes [headFrom, headTo) of headBuf, within one feed call. */
  private headBuf: Buffer | undefined;
  private headFrom = 0;
  private headTo = 0;
  private headText = '';

  private newDraft(ts: bigint, tid: number, offset: number): Draft {
    return {
      tsStart: ts,
      tid,
      offset,
      method: '',
      target: '',
      version: '',
      status: 0,
      reason: '',
      headers: [],
      headerBytes: 0,
      bodyBytes: 0,
      lostBytes: 0,
      contentLength: undefined,
      contentLengthConflict: false,
      contentLengthFields: 0,
      chunks: -1,
      trailers: undefined,
      transferEncoding: undefined,
      hasStartLine: false,
      requestMethod: undefined,
    };
  }

  /** Keep a partial line; past the limit it is dropped (the message is refused, not buffered forever). */
  private keep(data: Buffer, start: number, end: number): void {
    if (this.partsLength + (end - start) > this.limits.maxHeaderBytes) {
      if (this.state !== State.Resync) this.fail(E.HEADER_OVERFLOW, `header section exceeds ${this.limits.maxHeaderBytes} bytes`, this.draft?.offset ?? this.position);
      this.parts = [];
      this.partsLength = 0;
      return;
    }
    this.parts.push(Buffer.from(data.subarray(start, end))); // copy: a source may reuse the chunk's memory
    this.partsLength += end - start;
  }

  private onLine(buf: Buffer, start: number, end: number, chunk: Chunk, lineOffset: number): void {
    switch (this.state) {
      case State.Resync: {
        if (!(this.isRequest ? isRequestLine(buf, start, end) : isStatusLine(buf, start, end))) return;
        this.state = State.Start;
        this.draft = this.newDraft(chunk.ts, chunk.tid, lineOffset);
        this.onLine(buf, start, end, chunk, lineOffset);
        return;
      }
      case State.Start:
        this.startLine(buf, start, end, lineOffset);
        return;
      case State.Headers:
      case State.Trailers:
        this.headerLine(buf, start, end, chunk.ts, lineOffset);
        return;
      case State.ChunkSize: {
        let size = 0;
        let i = start;
        for (; i < end; i++) {
          const c = buf[i]!;
          const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (v < 0) break;
          size = size * 16 + v;
        }
        const digits = i;
        while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
        if (i > digits && this.draft) this.deviate(this.draft, E.INVALID_CHUNK_SIZE, 'whitespace after a chunk size', lineOffset);
        if (i === start || digits - start > 13 || (i < end && buf[i] !== 0x3b) /* ; chunk extension */) {
          this.fail(E.INVALID_CHUNK_SIZE, `invalid chunk size line ${quote(buf, start, end, 40)}`, lineOffset);
          return;
        }
        if (size === 0) this.state = State.Trailers;
        else {
          if (this.draft) this.draft.chunks++;
          this.remaining = size;
          this.state = State.ChunkData;
        }
        return;
      }
      case State.ChunkDataEnd:
        if (end !== start) {
          this.fail(E.STRICT, 'chunk data not followed by CRLF', lineOffset);
          return;
        }
        this.state = State.ChunkSize;
        return;
      default:
        return;
    }
  }

  private startLine(buf: Buffer, start: number, end: number, lineOffset: number): void {
    const d = this.draft!;
    if (this.isRequest) {
      let i = start;
      while (i < end && TCHAR[buf[i]!]) i++;
      const targetStart = i + 1;
      const lastSpace = buf.lastIndexOf(SP, end - 1);
      const version = lastSpace > targetStart ? versionAt(buf, lastSpace + 1, end) : undefined;
      if (i === start || buf[i] !== SP || version === undefined || buf.indexOf(SP, targetStart) !== lastSpace) {
        // Servers answer these (400, 501, 505): the request is reported with what can be read of it.
        const words = buf
          .latin1Slice(start, Math.min(end, start + 8192))
          .split(' ')
          .filter(Boolean);
        const code =
          i === start || (buf[i] !== SP && i < end)
            ? E.INVALID_METHOD
            : // As llhttp: the word after the target must start `HTTP/` (else HPE_INVALID_CONSTANT), then be a version and end the line.
              words.length >= 3 && !words[2]!.startsWith('HTTP/')
              ? E.INVALID_CONSTANT
              : version === undefined && !/^HTTP\/\d\.\d$/.test(words[words.length - 1] ?? '')
                ? E.INVALID_VERSION
                : words.length < 3
                  ? E.INVALID_URL
                  : E.INVALID_REQUEST_LINE;
        d.method = words[0] ?? '';
        d.target = words.length >= 2 && !/^HTTP\/\d\.\d$/.test(words[1]!) ? words[1]! : '';
        const last = words[words.length - 1];
        if (words.length >= 2 && last !== undefined && /^HTTP\/\d\.\d$/.test(last)) d.version = last;
        this.fail(code, `invalid request line ${quote(buf, start, end)}`, lineOffset);
        return;
      }
      d.method = methodString(buf, start, i);
      d.target = buf.latin1Slice(targetStart, lastSpace);
      d.version = version;
      // Read on, flagged: a control byte in the target (RFC 9112 §3.2). (Another version, HTTP/2.0 say, is valid
      // syntax that llhttp reads too: the server's 505 says the rest.)
      if (INVALID_TARGET_BYTE.test(d.target)) this.deviate(d, E.INVALID_URL, 'invalid byte in the request target', lineOffset);
      this.hooks.requestStarted(d.method);
    } else {
      if (!isStatusLine(buf, start, end)) {
        const code = !(end - start >= 5 && buf.latin1Slice(start, start + 5) === 'HTTP/')
          ? E.INVALID_CONSTANT
          : versionAt(buf, start, Math.min(end, start + 8)) === undefined
            ? E.INVALID_VERSION
            : E.INVALID_STATUS;
        this.fail(code, `invalid status line ${quote(buf, start, end)}`, lineOffset);
        return;
      }
      d.version = versionAt(buf, start, start + 8)!;
      d.status = (buf[start + 9]! - 0x30) * 100 + (buf[start + 10]! - 0x30) * 10 + (buf[start + 11]! - 0x30);
      d.reason = end - start > 13 ? buf.latin1Slice(start + 13, end) : '';
    }
    d.hasStartLine = true;
    d.headerBytes = end - start + 2;
    this.state = State.Headers;
  }

  private headerLine(buf: Buffer, start: number, end: number, ts: bigint, lineOffset: number): void {
    const d = this.draft!;
    d.headerBytes += end - start + 2;
    if (d.headerBytes > this.limits.maxHeaderBytes) {
      this.fail(E.HEADER_OVERFLOW, `header section exceeds ${this.limits.maxHeaderBytes} bytes`, d.offset);
      return;
    }
    if (end === start) {
      if (this.state === State.Trailers) this.complete(ts);
      else this.headersDone(ts);
      return;
    }
    const first = buf[start];
    if ((first === SP || first === HT) && d.headers.length > 0) {
      // obs-fold: a continuation of the previous field value (RFC 9112 §5.2)
      const last = d.headers[d.headers.length - 1]!;
      last[1] = `${last[1]} ${buf.latin1Slice(start, end).trim()}`;
      return;
    }
    let colon = start;
    while (colon < end && TCHAR[buf[colon]!]) colon++;
    if (colon === start || colon === end || buf[colon] !== COLON) {
      this.fail(E.INVALID_HEADER_TOKEN, `invalid header line ${quote(buf, start, end)}`, lineOffset);
      return;
    }
    if (d.headers.length >= this.limits.maxHeaderCount) {
      this.fail(E.HEADER_OVERFLOW, `more than ${this.limits.maxHeaderCount} header fields`, lineOffset);
      return;
    }
    let vs = colon + 1;
    while (vs < end && (buf[vs] === SP || buf[vs] === HT)) vs++;
    let ve = end;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    // From the head's text too: a cache of names by a hash of their bytes, compared byte by byte, cost more.
    const name = this.headTextOf(buf, start, colon);
    const value = this.headTextOf(buf, vs, ve);
    // A bare CR or another control byte in a value (RFC 9112 §2.2, RFC 9110 §5.5): strict parsers refuse the
    // message; the value is kept as sent, never joined with the next field, and the message flagged.
    // Looked for in the bytes: a regular expression on the value string cost as much as slicing it (profile, 14-header requests).
    let invalid = false;
    for (let i = vs; i < ve; i++) {
      const c = buf[i]!;
      if ((c < 0x20 && c !== HT) || c === 0x7f) {
        invalid = true;
        break;
      }
    }
    if (invalid) this.deviate(d, value.includes('\r') ? E.LF_EXPECTED : E.INVALID_HEADER_TOKEN, `invalid byte in the value of ${JSON.stringify(name)}`, lineOffset);
    if (this.state === State.Trailers) (d.trailers ??= []).push([name, value]);
    else d.headers.push([name, value]);
    if (this.state === State.Headers) {
      const n = colon - start;
      if (n === 14 && name.toLowerCase() === 'content-length') {
        if (++d.contentLengthFields > 1) this.deviate(d, E.UNEXPECTED_CONTENT_LENGTH, 'duplicate Content-Length', lineOffset);
        for (const part of value.includes(',') ? value.split(',') : [value]) {
          const v = part.trim();
          if (d.contentLength !== undefined && d.contentLength !== v) d.contentLengthConflict = true;
          d.contentLength = v;
        }
      } else if (n === 17 && name.toLowerCase() === 'transfer-encoding') {
        d.transferEncoding = d.transferEncoding === undefined ? value : `${d.transferEncoding}, ${value}`;
      }
    }
  }

  /**
   * The text of `buf[from, to)`, a field name or value: cut from the rest of the head, decoded once. A
   * latin1Slice per value was the largest single cost of parsing browser requests (1146 of 3200
   * samples in headerLine, 14 headers a request); one per head and a string slice per value is not.
   */
  private headTextOf(buf: Buffer, from: number, to: number): string {
    if (buf !== this.headBuf || from < this.headFrom || to > this.headTo) {
      // A window, not a search for the head's end: decoding a body's first bytes costs less than finding CRLFCRLF.
      this.headBuf = buf;
      this.headFrom = from;
      this.headTo = Math.min(buf.length, Math.max(to, from + HEAD_WINDOW));
      this.headText = buf.latin1Slice(from, this.headTo);
    }
    return this.headText.slice(from - this.headFrom, to - this.headFrom);
  }

  private headersDone(ts: bigint): void {
    const d = this.draft!;
    const te = d.transferEncoding;
    const chunked = te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te);
    // Both (the request smuggling class, RFC 9112 §6.3): Transfer-Encoding frames the message, and it is flagged.
    if (te !== undefined && d.contentLength !== undefined) this.deviate(d, E.UNEXPECTED_CONTENT_LENGTH, 'both Transfer-Encoding and Content-Length', d.offset);
    let length: number | undefined;
    if (!chunked && d.contentLength !== undefined) {
      if (d.contentLengthConflict || !/^\d{1,15}$/.test(d.contentLength)) {
        this.fail(d.contentLengthConflict ? E.UNEXPECTED_CONTENT_LENGTH : E.INVALID_CONTENT_LENGTH, `invalid Content-Length ${JSON.stringify(d.contentLength)}`, d.offset);
        return;
      }
      length = Number(d.contentLength);
    }
    if (!this.isRequest) {
      const status = d.status;
      if (status >= 100 && status < 200 && status !== 101) {
        this.complete(ts); // interim response: the final one is still to come
        return;
      }
      d.requestMethod = this.hooks.nextRequestMethod();
      this.hooks.responseHeadersDone();
      const switched = status === 101 || (d.requestMethod === 'CONNECT' && status >= 200 && status < 300);
      if (switched) {
        const upgrade = status === 101 ? d.headers.find(([n]) => n.toLowerCase() === 'upgrade')?.[1] : undefined;
        this.complete(ts);
        this.hooks.switchProtocols(upgrade);
        return;
      }
      if (d.requestMethod === 'HEAD' || status === 204 || status === 304) {
        this.complete(ts);
        return;
      }
      if (chunked) this.startChunks();
      else if (length !== undefined) this.startLength(length, ts);
      else this.state = State.BodyClose;
      return;
    }
    if (te !== undefined && !chunked) {
      this.fail(E.INVALID_TRANSFER_ENCODING, `request Transfer-Encoding ${JSON.stringify(te)} does not end in chunked`, d.offset);
      return;
    }
    if (chunked) this.startChunks();
    else this.startLength(length ?? 0, ts);
  }

  private startChunks(): void {
    this.draft!.chunks = 0;
    this.state = State.ChunkSize;
  }

  private startLength(length: number, ts: bigint): void {
    if (length === 0) this.complete(ts);
    else {
      this.remaining = length;
      this.state = State.BodyLength;
    }
  }

  private complete(ts: bigint): void {
    const d = this.draft;
    if (!d) return;
    this.draft = null;
    // After a CONNECT request, a client may start its tunnel before the answer: nothing more is HTTP until the
    // answer says whether the tunnel opened (2xx: never again) or not (resume()), as llhttp pauses there.
    this.state = this.isRequest && d.method === 'CONNECT' ? State.Paused : State.Start;
    this.emit(d, ts);
  }

  /** The CONNECT was refused: what the client sent after it is HTTP again. */
  resume(): Buffer | undefined {
    if (this.state !== State.Paused) return undefined;
    this.state = State.Start;
    const rest = this.leftover;
    this.leftover = undefined;
    return rest;
  }

  get paused(): boolean {
    return this.state === State.Paused;
  }

  private emit(d: Draft, ts: bigint, failure?: { code: Http1ErrorCode; error: string }): void {
    let m: Http1Request | Http1Response;
    if (this.isRequest) {
      m = {
        protocol: 'http1',
        kind: 'request',
        tsStart: d.tsStart,
        tsEnd: ts,
        tid: d.tid,
        offset: d.offset,
        method: d.method,
        target: d.target,
        version: d.version,
        headers: d.headers,
        bodyBytes: d.bodyBytes,
      };
    } else {
      m = {
        protocol: 'http1',
        kind: 'response',
        tsStart: d.tsStart,
        tsEnd: ts,
        tid: d.tid,
        offset: d.offset,
        version: d.version,
        status: d.status,
        reason: d.reason,
        headers: d.headers,
        bodyBytes: d.bodyBytes,
      };
    }
    if (d.chunks >= 0) m.chunks = d.chunks;
    if (d.trailers) m.trailers = d.trailers;
    if (failure) {
      m.error = failure.error;
      m.parseErrorCode = failure.code;
    } else if (d.deviation) {
      m.error = `byte ${d.deviation.offset}: ${d.deviation.reason}`;
      m.parseErrorCode = d.deviation.code;
      m.lenient = true;
    }
    if (d.lostBytes > 0) m.lostBytes = d.lostBytes;
    this.hooks.emitMessage(m);
  }

  /** A deviation from strict parsing, read past: the message is flagged with the first. */
  private deviate(d: Draft, code: Http1ErrorCode, reason: string, offset: number): void {
    d.deviation ??= { code, reason, offset };
  }

  /** Report the message in progress as broken and look for the next message start. */
  private fail(code: Http1ErrorCode, reason: string, offset: number): void {
    const d = this.draft ?? this.newDraft(this.tsLast, 0, offset);
    this.draft = null;
    this.state = State.Resync;
    this.parts = [];
    this.partsLength = 0;
    this.emit(d, this.tsLast, { code, error: `byte ${offset}: ${reason}` });
  }

  gap(bytes: number, ts: bigint): void {
    this.tsLast = ts;
    this.position += bytes;
    const d = this.draft;
    const state = this.state;
    if ((state === State.BodyLength || state === State.ChunkData) && bytes <= this.remaining) {
      this.remaining -= bytes;
      d!.lostBytes += bytes;
      if (this.remaining === 0) {
        if (state === State.BodyLength) this.complete(ts);
        else this.state = State.ChunkDataEnd;
      }
      return;
    }
    if (state === State.BodyClose) {
      d!.lostBytes += bytes;
      return;
    }
    if (state === State.HandedOver || state === State.Resync) return;
    if (state === State.Start && !d && this.partsLength === 0) {
      // Lost bytes between messages: the next one may start anywhere in them.
      this.state = State.Resync;
      return;
    }
    if (d) d.lostBytes += bytes;
    this.fail(E.LOST_BYTES, `${bytes} bytes lost inside the message`, this.position - bytes);
  }

  end(ts: bigint): void {
    if (this.state === State.BodyClose) {
      this.complete(ts);
      return;
    }
    if (this.draft) this.fail(E.INVALID_EOF_STATE, 'connection closed before the message was complete', this.position);
  }

  handOver(): void {
    this.state = State.HandedOver;
    this.parts = [];
    this.partsLength = 0;
  }

  get handedOver(): boolean {
    return this.state === State.HandedOver;
  }
}

export class Http1Parser implements ProtocolParser<Http1Message>, SideHooks {
  readonly protocol = 'http1';
  onMessage: (message: Http1Message) => void = () => {};
  private readonly requests: SideParser;
  private readonly responses: SideParser;
  /** Methods of requests not yet answered, in order: a HEAD response has no body. */
  private methods: string[] = [];
  private answered = 0;

  constructor(limits: Http1Limits = DEFAULT_LIMITS) {
    this.requests = new SideParser(true, this, limits);
    this.responses = new SideParser(false, this, limits);
  }

  // SideHooks: called by the two side parsers only.

  emitMessage(m: Http1Message): void {
    this.onMessage(m);
    // A final answer to the CONNECT the request side paused after: not 2xx, so no tunnel, and HTTP goes on.
    if (m.kind === 'response' && m.status >= 300 && this.requests.paused && this.methods[this.answered - 1] === 'CONNECT') {
      // At once, before the answers after this one: they answer what the client sent after the CONNECT.
      const rest = this.requests.resume();
      if (rest?.length) this.requests.feed({ data: rest, ts: m.tsEnd, tid: m.tid });
    }
  }

  requestStarted(method: string): void {
    this.methods.push(method);
  }

  nextRequestMethod(): string | undefined {
    return this.methods[this.answered];
  }

  responseHeadersDone(): void {
    if (this.answered < this.methods.length) this.answered++;
    if (this.answered > 64) {
      this.methods = this.methods.slice(this.answered);
      this.answered = 0;
    }
  }

  switchProtocols(upgrade?: string): void {
    this.requests.handOver();
    this.responses.handOver();
    this.switchedTo = upgrade;
  }

  /** True once the connection switched protocols (101 Switching Protocols, CONNECT tunnel). */
  get handedOver(): boolean {
    return this.requests.handedOver;
  }

  /** The protocol a 101 switched to (its Upgrade value), once switched. */
  private switchedTo: string | undefined;
  /** See ProtocolParser.onSwitch: h2c (HTTP/2 over cleartext) is the upgrade Loupe reads. */
  onSwitch?: (protocol: string | undefined, side: Side, leftover: Buffer, chunk: Chunk) => void;

  feed(side: Side, chunk: Chunk): void {
    const parser = side === 'client' ? this.requests : this.responses;
    if (parser.handedOver) return;
    parser.feed(chunk);
    if (parser.handedOver) this.onSwitch?.(this.switchedTo?.trim().toLowerCase() === 'h2c' ? 'http2' : undefined, side, parser.leftover ?? Buffer.alloc(0), chunk);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    (side === 'client' ? this.requests : this.responses).gap(bytes, ts);
  }

  end(ts: bigint): void {
    this.requests.end(ts);
    this.responses.end(ts);
  }
}
