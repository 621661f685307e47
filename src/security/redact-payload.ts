/**
 * Redaction of raw payload bytes before they reach a capture file or the
 * pipeline: credential header values and URL query values in HTTP/1 text are
 * overwritten with '*', byte for byte. Lengths never change, so message
 * framing (Content-Length, chunk sizes) still holds and a live run and the
 * replay of its recording see the very same bytes.
 *
 * maskHttpSecrets works on one payload; StreamMasker keeps state across the
 * records of one socket direction, for secrets a program wrote in pieces.
 * HTTP's masking is the default, for any bytes (text no detector claims may
 * still hold a credential header); a protocol whose module masks its clients'
 * bytes itself (the databases, `masking` in src/parsers/module.ts) gets its
 * module's masker instead.
 */
import { HARMLESS_HEADER_MAX_LENGTH, isCredentialHeader, isSecretHeader } from '../parsers/http1/secrets';
import { Http2Masker, http2Start } from './redact-http2';
import { BodyMasker } from './redact-body';
import { detectProtocol, GIVE_UP_BYTES, NEED_MORE } from '../parsers/detect';
import { isHttp2Frames } from '../parsers/http2/detect';
import type { MaskingNotes, PayloadMasker, ProtocolModule } from '../parsers/module';
import { moduleOf, PROTOCOL_MODULES } from '../parsers/protocols';

/**
 * What the two directions of one socket learn of it together: a MySQL client's
 * first bytes say nothing, but the server's greeting, read the other way, does.
 */
export interface SocketMasking {
  /** The protocol either direction recognised, and who sent the bytes it recognised it in. */
  protocol?: { name: string; sender: 'client' | 'server' };
  /**
   * HTTP/1 request methods read in one direction, not yet answered in the
   * other: a response to HEAD has a Content-Length but no body, and a body
   * read where there is none would hide the next head from the masker.
   */
  methods?: string[];
  /** A protocol module's notes from the server's bytes, for its client's masker (MaskingNotes). */
  notes?: MaskingNotes;
}

/** Requests remembered for their answers; past this the oldest go (and an answer is framed by its head alone). */
const MAX_METHODS = 64;

const MASK = 0x2a; // '*'
/** How far into a direction met mid-stream HTTP/2 is still looked for: as far as the connection tracker looks. */
const PROBE_BYTES = GIVE_UP_BYTES;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;

/** Mask the secrets of whole HTTP/1 text in place, as a StreamMasker does however it is cut; returns how many bytes were masked. */
export function maskHttpSecrets(payload: Uint8Array): number {
  return StreamMasker.maskText(new StreamMasker(), payload);
}

/** Protocols whose modules mask their clients' bytes themselves (the databases): everything else is masked as HTTP text here. */
const hasOwnMasker = (protocol: string) => moduleOf(protocol)?.masking !== undefined;
const ownMasker = (protocol: string, connectionStart: boolean, socket: SocketMasking): PayloadMasker => moduleOf(protocol)!.masking!.client(connectionStart, (socket.notes ??= {}));
/** The reader of such a protocol's server bytes, when its module has one. */
const serverReader = (protocol: string, socket: SocketMasking): PayloadMasker | undefined => moduleOf(protocol)!.masking!.server?.((socket.notes ??= {}));
/** A client's first bytes that no detection claims but that carry a secret of a module's protocol (a Redis inline AUTH), and its module. */
function unclaimedSecret(first: Buffer): string | undefined {
  const head = first.toString('latin1', 0, 16);
  return PROTOCOL_MODULES.find((m) => (m as ProtocolModule).masking?.unclaimedStart?.test(head))?.name;
}
/** How far into a direction the protocol detector is asked again while it needs more bytes: a greeting or start-up fits. */
const SNIFF_BYTES = 1024;
const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);
const HEAD_MAX = Math.max(HARMLESS_HEADER_MAX_LENGTH, ...[...METHODS].map((m) => m.length));
/** LongName: a line in a message head whose first HEAD_MAX bytes hold no colon: a header no allowlist names. */
const enum Mode {
  LineStart,
  Other,
  SecretValue,
  Target,
  QueryKey,
  QueryValue,
  LongName,
  Framing,
  Status,
}
const enum Body {
  None,
  Length,
  Chunked,
  UntilClose,
}
const enum Chunk {
  Size,
  Extension,
  Data,
  DataEnd,
}
const enum Framing {
  ContentLength,
  TransferEncoding,
}
const FRAMING_HEADERS = new Map([
  ['content-length', Framing.ContentLength],
  ['transfer-encoding', Framing.TransferEncoding],
]);

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

/**
 * The same masking across record boundaries, for one direction of one
 * socket: a program may write a request line or a header in several calls
 * ("GET /compute?n=", "12", " HTTP/1.1"), and each piece is masked as it
 * arrives, so no part of a secret reaches a capture. Lines are recognised by
 * their start: an HTTP method and a space (its target's query values are
 * masked) or a credential header name and a colon (its value is masked).
 */
export class StreamMasker {
  /** Set when this direction began as HTTP/2 (its preface, or a server's first SETTINGS): HPACK-coded from then on. */
  private http2: Http2Masker | undefined;
  /** Set when this direction is the client's of a protocol whose module masks it (the databases: credentials and literals). */
  private db: PayloadMasker | undefined;
  /** The server's bytes of such a protocol: nothing of the client's there, nothing to mask (its module may read them). */
  private dbServer = false;
  private dbServerReader: PayloadMasker | undefined;
  /** The first bytes, while they are too few for the protocol detector to say (see SNIFF_BYTES). */
  private sniffed: Buffer | undefined;

  constructor(readonly socket: SocketMasking = {}) {}

  /**
   * Its first bytes named no protocol, so whether HTTP/2 frames follow was
   * looked for record by record, as the protocol detector looks for a
   * connection joined mid-stream (a record that is whole frames): the one
   * case where what is masked can depend on where the kernel cut the bytes.
   */
  get decidedPerRecord(): boolean {
    return this.perRecord || (this.db?.decidedPerRecord ?? false);
  }
  private perRecord = false;
  private decided = false;
  /** The first bytes, from records already handed on, while the protocol is not known yet. */
  private held: Buffer = Buffer.alloc(0);
  private mode = Mode.LineStart;
  /** The current line's first bytes while it is still unclassified (kept as bytes: a string per byte was most of masking's cost). */
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLength = 0;
  /** Met mid-stream on bytes no protocol claimed: records left to look at for HTTP/2 frames (bytes). */
  private probeLeft = 0;
  /** A secret value's first non-space byte was seen (the spaces after the colon stay). */
  private valueStarted = false;
  /**
   * Inside a message head (after a request or status line, before its empty
   * line): there every header not on the allowlist is masked; elsewhere (a
   * body, bytes met mid-stream) only headers that always carry credentials.
   */
  private inHead = false;
  /** The line under way has had a byte other than CR (an empty line ends a head). */
  private lineHasText = false;
  /**
   * The message framing read from heads (Content-Length, chunked), so a body
   * is known as one — its credential fields masked (JSON members, form
   * fields) — and the head after it is found where a body without a final
   * line break ends.
   */
  private body = Body.None;
  private bodyMasker: BodyMasker | undefined;
  private bodyLeft = 0;
  private chunk = Chunk.Size;
  private chunkLeft = 0;
  private trailers = false;
  private isResponse = false;
  private status = 0;
  private contentLength = -1;
  private chunkedBody = false;
  private framing: Framing | undefined;
  private fieldValue = '';
  /** Text outside heads and framed bodies (met mid-stream): its credential fields too. */
  private looseBody: BodyMasker | undefined;
  /** Bytes masked by the record under way. */
  private masked = 0;

  /** Mask one record's payload in place; `missing` bytes the kernel did not copy follow it. */
  mask(payload: Uint8Array, missing = 0): number {
    if (!this.decided) {
      const head = Buffer.concat([this.held, payload.subarray(0, 24)]);
      // The other direction named a database already (a MySQL greeting): no HTTP/2 start to wait for, and a
      // record held back now could not be masked later.
      const peer = this.socket.protocol;
      const start = peer && hasOwnMasker(peer.name) && head.length < 9 ? 'other' : http2Start(head);
      if (start === undefined) {
        // Too few bytes to tell (no secret fits in them): keep them, to go through whichever masker follows.
        this.held = head;
        return 0;
      }
      this.decided = true;
      const past = this.held;
      this.held = Buffer.alloc(0);
      if (start !== 'other') this.http2 = new Http2Masker(start);
      else {
        // Met mid-stream: whole HTTP/2 frames, as the protocol detector would take them.
        const first = Buffer.concat([past, payload]);
        const seen = detectProtocol(first);
        // Too few bytes to name a protocol yet (a greeting cut short): keep looking as they come.
        if (seen === NEED_MORE) this.sniffed = first.subarray(0, SNIFF_BYTES);
        if (typeof seen === 'object') this.socket.protocol ??= { name: seen.protocol, sender: seen.sender === 'server' ? 'server' : 'client' };
        const peer = this.socket.protocol;
        const unclaimed = typeof seen !== 'object' ? unclaimedSecret(first) : undefined;
        if (typeof seen === 'object' && isHttp2Frames(first)) this.http2 = new Http2Masker('late');
        else if (typeof seen === 'object' && hasOwnMasker(seen.protocol)) {
          if (seen.sender === 'server') this.serverOf(seen.protocol);
          else this.db = ownMasker(seen.protocol, seen.connectionStart === true, this.socket);
        } else if (unclaimed) {
          // A Redis inline command (redis-cli and telnet users type them) the detector does not claim.
          this.db = ownMasker(unclaimed, true, this.socket);
        } else if (typeof seen !== 'object' && peer && hasOwnMasker(peer.name)) {
          // Nothing recognised here, but the other direction was a database server's: these are its client's bytes.
          if (peer.sender === 'server') this.db = ownMasker(peer.name, true, this.socket);
          else this.serverOf(peer.name);
        }
        // Bytes no protocol claims (the middle of a frame, a body): HTTP/2 may still show at a later record.
        else if (typeof seen !== 'object') this.probeLeft = PROBE_BYTES;
        this.perRecord = this.probeLeft > 0;
      }
      // What earlier records held goes through first, on a copy: those bytes are already handed on.
      if (past.length) this.maskText(Buffer.from(past));
    } else if (this.sniffed) {
      const sniffed = Buffer.concat([this.sniffed, payload]);
      const seen = detectProtocol(sniffed);
      this.sniffed = seen === NEED_MORE && sniffed.length < SNIFF_BYTES ? sniffed : undefined;
      if (typeof seen === 'object') {
        this.socket.protocol ??= { name: seen.protocol, sender: seen.sender === 'server' ? 'server' : 'client' };
        if (hasOwnMasker(seen.protocol)) {
          this.probeLeft = 0;
          if (seen.sender === 'server') {
            this.serverOf(seen.protocol);
            this.dbServerReader?.mask(sniffed.subarray(0, sniffed.length - payload.length));
          } else {
            this.db = ownMasker(seen.protocol, seen.connectionStart === true, this.socket);
            // Its state from the bytes before this record, on a copy (those are handed on already).
            this.db.mask(Buffer.from(sniffed.subarray(0, sniffed.length - payload.length)));
          }
        }
      }
    }
    if (this.probeLeft > 0 && !this.db && !this.dbServer) {
      // A record that is whole HTTP/2 frames, as the protocol detector would take it: HPACK from here.
      this.probeLeft = Math.max(0, this.probeLeft - payload.length);
      if (isHttp2Frames(payload)) {
        this.http2 = new Http2Masker('late');
        this.probeLeft = 0;
      }
    }
    return this.maskText(payload, missing);
  }

  /** maskHttpSecrets's way in: the text path of a fresh masker. */
  /** This direction is a database server's: nothing to mask, its module may read it for the client's masker. */
  private serverOf(protocol: string): void {
    this.dbServer = true;
    this.dbServerReader = serverReader(protocol, this.socket);
  }

  static maskText(masker: StreamMasker, payload: Uint8Array): number {
    return masker.maskText(payload);
  }

  private maskText(payload: Uint8Array, missing = 0): number {
    if (this.http2) return this.http2.mask(payload, missing);
    if (this.db) return this.db.mask(payload);
    if (this.dbServer) return this.dbServerReader?.mask(payload) ?? 0;
    this.masked = 0;
    // Text outside any head or framed body (met mid-stream, or after framing was lost), for the body masker after.
    const loose: number[] = [];
    let looseFrom = this.inHead || this.body !== Body.None ? -1 : 0;
    let i = 0;
    while (i < payload.length) {
      if (this.body !== Body.None) {
        i = this.maskBody(payload, i);
        if ((this.body as Body) === Body.None) looseFrom = -1; // a body ended: a head may follow, and is not loose text
        continue;
      }
      if (this.mode === Mode.Other) {
        // Nothing to mask until the next line: jump there natively (most bytes are bodies).
        const lf = payload.indexOf(LF, i);
        if (lf < 0) break;
        i = lf;
      }
      const b = payload[i]!;
      if (b === LF) {
        if (this.mode === Mode.Framing) this.framingValueDone();
        const emptyLine = this.mode === Mode.LineStart && !this.lineHasText;
        this.mode = Mode.LineStart;
        this.headLength = 0;
        this.lineHasText = false;
        if (emptyLine && this.inHead) {
          // The empty line: the head ends, and its framing says what follows.
          this.inHead = false;
          this.startBody();
          if (this.body === Body.None && looseFrom < 0) looseFrom = i + 1;
        }
        i++;
        continue;
      }
      if (b !== CR) this.lineHasText = true;
      switch (this.mode) {
        case Mode.LineStart:
          if (b === COLON) {
            const name = this.head.latin1Slice(0, this.headLength);
            const framing = this.inHead ? FRAMING_HEADERS.get(name.toLowerCase()) : undefined;
            if (framing !== undefined) {
              this.framing = framing;
              this.fieldValue = '';
              this.mode = Mode.Framing;
            } else this.mode = (this.inHead ? isSecretHeader(name) : isCredentialHeader(name)) ? Mode.SecretValue : Mode.Other;
            this.valueStarted = false;
          } else if (b === SPACE) {
            const word = this.head.latin1Slice(0, this.headLength);
            const request = METHODS.has(word);
            const response = !request && word.startsWith('HTTP/1.');
            if (request) {
              const methods = (this.socket.methods ??= []);
              methods.push(word);
              if (methods.length > MAX_METHODS) methods.shift();
            }
            if (request || response) {
              // A message starts: its head is masked by the allowlist, and its framing read.
              if (looseFrom >= 0) {
                loose.push(looseFrom, i);
                looseFrom = -1;
              }
              this.inHead = true;
              this.trailers = false;
              this.isResponse = response;
              this.contentLength = -1;
              this.chunkedBody = false;
              this.status = 0;
              this.mode = request ? Mode.Target : Mode.Status;
            } else this.mode = Mode.Other;
          } else if (this.headLength === HEAD_MAX) {
            // Longer than any method or harmless header name: in a head, a header whose value goes.
            this.mode = this.inHead ? Mode.LongName : Mode.Other;
          } else if (b !== CR) {
            this.head[this.headLength++] = b;
          }
          break;
        case Mode.LongName:
          if (b === COLON) {
            this.mode = Mode.SecretValue;
            this.valueStarted = false;
          } else if (b === SPACE) this.mode = Mode.Other;
          break;
        case Mode.SecretValue:
          if (b === SPACE && !this.valueStarted) break;
          this.valueStarted = true;
          if (b !== CR) {
            payload[i] = MASK;
            this.masked++;
          }
          break;
        case Mode.Framing:
          if (b !== CR && this.fieldValue.length < 64) this.fieldValue += String.fromCharCode(b);
          break;
        case Mode.Status:
          if (b >= 0x30 && b <= 0x39 && this.status < 1000) this.status = this.status * 10 + (b - 0x30);
          else this.mode = Mode.Other;
          break;
        case Mode.Target:
          if (b === 0x3f)
            this.mode = Mode.QueryKey; // '?'
          else if (b === SPACE) this.mode = Mode.Other;
          break;
        case Mode.QueryKey:
          if (b === 0x3d)
            this.mode = Mode.QueryValue; // '='
          else if (b === SPACE || b === 0x23) this.mode = Mode.Other;
          break;
        case Mode.QueryValue:
          if (b === 0x26)
            this.mode = Mode.QueryKey; // '&'
          else if (b === SPACE || b === 0x23 || b === CR) this.mode = Mode.Other;
          else {
            payload[i] = MASK;
            this.masked++;
          }
          break;
        default:
          break;
      }
      i++;
    }
    if (looseFrom >= 0) loose.push(looseFrom, payload.length);
    if (loose.length > 0) {
      this.looseBody ??= new BodyMasker(false);
      for (let k = 0; k < loose.length; k += 2) this.masked += this.looseBody.mask(payload, loose[k], loose[k + 1]);
    }
    if (missing > 0) this.skipMissing(missing);
    return this.masked;
  }

  /** The framing header's value is whole: Content-Length, or whether chunked is the last transfer coding. */
  private framingValueDone(): void {
    const value = this.fieldValue.trim();
    if (this.framing === Framing.ContentLength) {
      if (/^\d{1,15}$/.test(value)) this.contentLength = Number(value);
    } else if (/(^|,)\s*chunked$/i.test(value)) this.chunkedBody = true;
    this.framing = undefined;
  }

  /**
   * After a head, what its framing says follows, as RFC 9112 §6.3 has it: no
   * body for 1xx, 204 and 304 answers; chunked; Content-Length bytes; a
   * response without either runs to the close. A response to HEAD carries a
   * Content-Length but no body: the request's method comes from the socket's
   * other direction (SocketMasking.methods); a 2xx to CONNECT starts a tunnel.
   */
  private startBody(): void {
    if (this.trailers) {
      this.trailers = false;
      return;
    }
    // A final answer takes its request's method off the queue; an interim (1xx) one does not.
    const method = this.isResponse && this.status >= 200 ? this.socket.methods?.shift() : undefined;
    const noBody =
      this.isResponse &&
      ((this.status >= 100 && this.status < 200) || this.status === 204 || this.status === 304 || method === 'HEAD' || (method === 'CONNECT' && this.status < 300));
    if (noBody) return;
    this.bodyMasker = new BodyMasker(true);
    if (this.chunkedBody) {
      this.body = Body.Chunked;
      this.chunk = Chunk.Size;
      this.chunkLeft = 0;
    } else if (this.contentLength > 0) {
      this.body = Body.Length;
      this.bodyLeft = this.contentLength;
    } else if (this.contentLength < 0 && this.isResponse) this.body = Body.UntilClose;
  }

  /** Body bytes from `i`: masked by the body masker, framed by length or chunks. Returns where the body's bytes here end. */
  private maskBody(payload: Uint8Array, i: number): number {
    const masker = this.bodyMasker!;
    switch (this.body) {
      case Body.UntilClose:
        this.masked += masker.mask(payload, i, payload.length);
        return payload.length;
      case Body.Length: {
        const n = Math.min(this.bodyLeft, payload.length - i);
        this.masked += masker.mask(payload, i, i + n);
        this.bodyLeft -= n;
        if (this.bodyLeft === 0) this.body = Body.None;
        return i + n;
      }
      default:
        break;
    }
    // Chunked.
    if (this.chunk === Chunk.Data) {
      const n = Math.min(this.chunkLeft, payload.length - i);
      this.masked += masker.mask(payload, i, i + n);
      this.chunkLeft -= n;
      if (this.chunkLeft === 0) this.chunk = Chunk.DataEnd;
      return i + n;
    }
    const b = payload[i]!;
    if (b === LF) {
      if (this.chunk === Chunk.DataEnd) this.chunk = Chunk.Size;
      else if (this.chunkLeft === 0) {
        // The last chunk: trailer fields follow, as a head's (a credential there is masked), to an empty line.
        this.body = Body.None;
        this.inHead = true;
        this.trailers = true;
        this.mode = Mode.LineStart;
        this.headLength = 0;
        this.lineHasText = false;
      } else this.chunk = Chunk.Data;
      return i + 1;
    }
    if (this.chunk === Chunk.Size) {
      const digit = hexValue(b);
      if (digit >= 0 && this.chunkLeft < 2 ** 40) this.chunkLeft = this.chunkLeft * 16 + digit;
      else if (b !== CR) this.chunk = Chunk.Extension;
    }
    return i + 1;
  }

  /**
   * Bytes the kernel did not copy: a framed body skips them by its lengths;
   * anywhere else (or past a body's end) the framing is lost, and lines are
   * read again by their starts, as from a mid-stream join.
   */
  private skipMissing(missing: number): void {
    if (this.body === Body.UntilClose) {
      this.bodyMasker!.gap();
      return;
    }
    if (this.body === Body.Length && missing < this.bodyLeft) {
      this.bodyLeft -= missing;
      this.bodyMasker!.gap();
      return;
    }
    if (this.body === Body.Chunked && this.chunk === Chunk.Data && missing < this.chunkLeft) {
      this.chunkLeft -= missing;
      this.bodyMasker!.gap();
      return;
    }
    if (this.body === Body.Length && missing === this.bodyLeft) {
      this.body = Body.None;
      return;
    }
    this.body = Body.None;
    this.inHead = false;
    this.trailers = false;
    this.mode = Mode.Other;
    this.looseBody?.gap();
  }
}
