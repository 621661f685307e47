/**
 * Incremental HTTP/1.x parser. Bytes may arrive split anywhere; the messages
 * that come out do not depend on where. Malformed input becomes a message with
 * `error` (offset and reason) and the side resynchronises on the next line
 * that looks like a message start; nothing throws out of feed().
 */
import type { Chunk, ProtocolParser, Side } from '../types';
import type { HeaderList, Http1Message, Http1Request, Http1Response } from './messages';

export interface Http1Limits {
  /** Bytes of start line plus headers allowed before the message is refused. */
  maxHeaderBytes: number;
  maxHeaderCount: number;
}

export const DEFAULT_LIMITS: Http1Limits = { maxHeaderBytes: 1 << 20, maxHeaderCount: 256 };

type State =
  | 'start' | 'headers' | 'body-length' | 'body-close'
  | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailers'
  | 'resync' | 'handed-over';

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/\d\.\d)$/;
const STATUS_LINE = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/;
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/;

interface Draft {
  tsStart: bigint;
  tid: number;
  offset: number;
  startLine?: RegExpExecArray;
  headers: HeaderList;
  headerBytes: number;
  bodyBytes: number;
  lostBytes: number;
  method?: string; // request method this response answers
}

interface SideHooks {
  emit(message: Http1Message): void;
  /** Request side: a request line was read. */
  requestStarted(method: string): void;
  /** Response side: the method of the request the next final response answers. */
  nextRequestMethod(): string | undefined;
  /** Response side: a final response's headers are read (the request is answered). */
  responseHeadersDone(status: number): void;
  /** A side switched protocols (101, CONNECT 2xx): stop parsing the connection. */
  handOver(): void;
}

class SideParser {
  private state: State = 'start';
  private parts: Buffer[] = [];
  private partsLength = 0;
  private remaining = 0;
  private draft: Draft | null = null;
  /** Stream offset of the next byte to be read from feed(). */
  private position = 0;
  private tsLast = 0n;

  constructor(
    private readonly mode: 'request' | 'response',
    private readonly hooks: SideHooks,
    private readonly limits: Http1Limits,
  ) {}

  feed(chunk: Chunk): void {
    const data = Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
    this.tsLast = chunk.ts;
    let i = 0;
    while (i < data.length) {
      switch (this.state) {
        case 'handed-over':
          this.position += data.length - i;
          return;
        case 'body-length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, data.length - i);
          this.remaining -= take;
          this.draft!.bodyBytes += take;
          i += take;
          if (this.remaining === 0) {
            if (this.state === 'body-length') this.complete(chunk.ts);
            else this.state = 'chunk-data-end';
          }
          break;
        }
        case 'body-close':
          this.draft!.bodyBytes += data.length - i;
          i = data.length;
          break;
        default: {
          if (this.state === 'start' && this.partsLength === 0) {
            // Blank lines between messages are allowed (RFC 9112 §2.2).
            while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a)) i++;
            if (i === data.length) break;
            if (!this.draft) this.begin(chunk, this.position + i);
          }
          const newline = data.indexOf(0x0a, i);
          if (newline < 0) {
            this.keep(data.subarray(i));
            i = data.length;
            break;
          }
          const lineStart = this.position + i - this.partsLength;
          const line = this.takeLine(data.subarray(i, newline));
          i = newline + 1;
          this.onLine(line, chunk, lineStart);
        }
      }
    }
    this.position += data.length;
  }

  private begin(chunk: Chunk, offset: number): void {
    this.draft = { tsStart: chunk.ts, tid: chunk.tid, offset, headers: [], headerBytes: 0, bodyBytes: 0, lostBytes: 0 };
  }

  /** Keep a partial line; past the limit it is dropped (the message is refused, not buffered forever). */
  private keep(bytes: Buffer): void {
    if (this.partsLength + bytes.length > this.limits.maxHeaderBytes) {
      if (this.state !== 'resync') this.fail(`header section exceeds ${this.limits.maxHeaderBytes} bytes`, this.draft?.offset ?? this.position);
      this.parts = [];
      this.partsLength = 0;
      return;
    }
    this.parts.push(Buffer.from(bytes)); // copy: the chunk's memory may be reused by the source
    this.partsLength += bytes.length;
  }

  private takeLine(tail: Buffer): string {
    let bytes = tail;
    if (this.partsLength > 0) {
      bytes = Buffer.concat([...this.parts, tail]);
      this.parts = [];
      this.partsLength = 0;
    }
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    return bytes.toString('latin1', 0, end);
  }

  private onLine(line: string, chunk: Chunk, lineOffset: number): void {
    const draft = this.draft;
    switch (this.state) {
      case 'resync': {
        const looksLikeStart = (this.mode === 'request' ? REQUEST_LINE : STATUS_LINE).test(line);
        if (!looksLikeStart) return;
        this.state = 'start';
        this.begin(chunk, lineOffset);
        this.onLine(line, chunk, lineOffset);
        return;
      }
      case 'start': {
        const match = (this.mode === 'request' ? REQUEST_LINE : STATUS_LINE).exec(line);
        if (!match) {
          this.fail(`invalid ${this.mode === 'request' ? 'request' : 'status'} line ${JSON.stringify(line.slice(0, 80))}`, lineOffset);
          return;
        }
        draft!.startLine = match;
        draft!.headerBytes = line.length + 2;
        if (this.mode === 'request') this.hooks.requestStarted(match[1]!);
        this.state = 'headers';
        return;
      }
      case 'headers':
      case 'trailers': {
        draft!.headerBytes += line.length + 2;
        if (draft!.headerBytes > this.limits.maxHeaderBytes) {
          this.fail(`header section exceeds ${this.limits.maxHeaderBytes} bytes`, draft!.offset);
          return;
        }
        if (line === '') {
          if (this.state === 'trailers') this.complete(chunk.ts);
          else this.headersDone(chunk.ts);
          return;
        }
        if ((line[0] === ' ' || line[0] === '\t') && draft!.headers.length > 0) {
          // obs-fold: a continuation of the previous field value (RFC 9112 §5.2)
          const last = draft!.headers[draft!.headers.length - 1]!;
          last[1] = `${last[1]} ${line.trim()}`;
          return;
        }
        const field = HEADER_LINE.exec(line);
        if (!field) {
          this.fail(`invalid header line ${JSON.stringify(line.slice(0, 80))}`, lineOffset);
          return;
        }
        if (draft!.headers.length >= this.limits.maxHeaderCount) {
          this.fail(`more than ${this.limits.maxHeaderCount} header fields`, lineOffset);
          return;
        }
        draft!.headers.push([field[1]!, field[2]!]);
        return;
      }
      case 'chunk-size': {
        const m = /^([0-9a-fA-F]+)[ \t]*(?:;.*)?$/.exec(line);
        if (!m || m[1]!.length > 13) {
          this.fail(`invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`, lineOffset);
          return;
        }
        const size = parseInt(m[1]!, 16);
        if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
        return;
      }
      case 'chunk-data-end':
        if (line !== '') {
          this.fail('chunk data not followed by CRLF', lineOffset);
          return;
        }
        this.state = 'chunk-size';
        return;
      default:
        return;
    }
  }

  private headersDone(ts: bigint): void {
    const draft = this.draft!;
    const headers = draft.headers;
    let transferEncoding: string | undefined;
    const lengths: string[] = [];
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      if (lower === 'transfer-encoding') transferEncoding = transferEncoding ? `${transferEncoding}, ${value}` : value;
      else if (lower === 'content-length') lengths.push(...value.split(',').map((v) => v.trim()));
    }
    const chunked = transferEncoding !== undefined && /(?:^|,)\s*chunked\s*$/i.test(transferEncoding);
    let length: number | undefined;
    if (!chunked && lengths.length > 0) {
      if (!lengths.every((l) => /^\d{1,15}$/.test(l)) || new Set(lengths).size !== 1) {
        this.fail(`invalid Content-Length ${JSON.stringify(lengths.join(', '))}`, draft.offset);
        return;
      }
      length = Number(lengths[0]);
    }
    if (this.mode === 'response') {
      const status = Number(draft.startLine![2]);
      if (status >= 100 && status < 200 && status !== 101) {
        this.complete(ts); // interim response: the final one is still to come
        return;
      }
      draft.method = this.hooks.nextRequestMethod();
      this.hooks.responseHeadersDone(status);
      const switched = status === 101 || (draft.method === 'CONNECT' && status >= 200 && status < 300);
      if (switched) {
        this.complete(ts);
        this.hooks.handOver();
        return;
      }
      if (draft.method === 'HEAD' || status === 204 || status === 304) {
        this.complete(ts);
        return;
      }
      if (chunked) this.state = 'chunk-size';
      else if (length !== undefined) this.startLength(length, ts);
      else this.state = 'body-close';
      return;
    }
    if (transferEncoding !== undefined && !chunked) {
      this.fail(`request Transfer-Encoding ${JSON.stringify(transferEncoding)} does not end in chunked`, draft.offset);
      return;
    }
    if (chunked) this.state = 'chunk-size';
    else this.startLength(length ?? 0, ts);
  }

  private startLength(length: number, ts: bigint): void {
    if (length === 0) this.complete(ts);
    else {
      this.remaining = length;
      this.state = 'body-length';
    }
  }

  private complete(ts: bigint, error?: string): void {
    const d = this.draft;
    if (!d) return;
    this.draft = null;
    this.state = 'start';
    this.emit(d, ts, error);
  }

  private emit(d: Draft, ts: bigint, error?: string): void {
    const common = {
      protocol: 'http1' as const,
      tsStart: d.tsStart,
      tsEnd: ts,
      tid: d.tid,
      offset: d.offset,
      headers: d.headers,
      bodyBytes: d.bodyBytes,
      ...(error !== undefined ? { error } : {}),
      ...(d.lostBytes > 0 ? { lostBytes: d.lostBytes } : {}),
    };
    const m = d.startLine;
    if (this.mode === 'request') {
      const request: Http1Request = { ...common, kind: 'request', method: m?.[1] ?? '', target: m?.[2] ?? '', version: m?.[3] ?? '' };
      this.hooks.emit(request);
    } else {
      const response: Http1Response = { ...common, kind: 'response', version: m?.[1] ?? '', status: m ? Number(m[2]) : 0, reason: m?.[3] ?? '' };
      this.hooks.emit(response);
    }
  }

  /** Report the message in progress as broken and look for the next message start. */
  private fail(reason: string, offset: number): void {
    const d = this.draft ?? { tsStart: this.tsLast, tid: 0, offset, headers: [], headerBytes: 0, bodyBytes: 0, lostBytes: 0 };
    this.draft = null;
    this.state = 'resync';
    this.parts = [];
    this.partsLength = 0;
    this.emit(d, this.tsLast, `byte ${offset}: ${reason}`);
  }

  gap(bytes: number, ts: bigint): void {
    this.tsLast = ts;
    this.position += bytes;
    const d = this.draft;
    if ((this.state === 'body-length' || this.state === 'chunk-data') && bytes <= this.remaining) {
      this.remaining -= bytes;
      d!.lostBytes += bytes;
      if (this.remaining === 0) {
        if (this.state === 'body-length') this.complete(ts);
        else this.state = 'chunk-data-end';
      }
      return;
    }
    if (this.state === 'body-close') {
      d!.lostBytes += bytes;
      return;
    }
    if (this.state === 'handed-over' || (this.state === 'start' && !d && this.partsLength === 0)) {
      // Lost bytes between messages: the next one may start anywhere in them.
      if (this.state === 'start') this.state = 'resync';
      return;
    }
    if (this.state === 'resync') return;
    if (d) d.lostBytes += bytes;
    this.fail(`${bytes} bytes lost inside the message`, this.position - bytes);
  }

  end(ts: bigint): void {
    if (this.state === 'body-close') {
      this.complete(ts);
      return;
    }
    if (this.draft) this.fail('connection closed before the message was complete', this.position);
  }

  handOver(): void {
    this.state = 'handed-over';
    this.parts = [];
    this.partsLength = 0;
  }
}

export class Http1Parser implements ProtocolParser<Http1Message> {
  readonly protocol = 'http1';
  onMessage: (message: Http1Message) => void = () => {};
  private readonly requests: SideParser;
  private readonly responses: SideParser;
  /** Methods of requests not yet answered, in order: a HEAD response has no body. */
  private readonly methods: string[] = [];
  private answered = 0;

  constructor(limits: Http1Limits = DEFAULT_LIMITS) {
    const handOver = () => {
      this.requests.handOver();
      this.responses.handOver();
    };
    this.requests = new SideParser('request', {
      emit: (m) => this.onMessage(m),
      requestStarted: (method) => this.methods.push(method),
      nextRequestMethod: () => undefined,
      responseHeadersDone: () => {},
      handOver,
    }, limits);
    this.responses = new SideParser('response', {
      emit: (m) => this.onMessage(m),
      requestStarted: () => {},
      nextRequestMethod: () => this.methods[this.answered],
      responseHeadersDone: () => {
        if (this.answered < this.methods.length) this.answered++;
        if (this.answered > 64) {
          this.methods.splice(0, this.answered);
          this.answered = 0;
        }
      },
      handOver,
    }, limits);
  }

  feed(side: Side, chunk: Chunk): void {
    (side === 'client' ? this.requests : this.responses).feed(chunk);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    (side === 'client' ? this.requests : this.responses).gap(bytes, ts);
  }

  end(ts: bigint): void {
    this.requests.end(ts);
    this.responses.end(ts);
  }
}
