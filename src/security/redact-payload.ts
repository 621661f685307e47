/**
 * Redaction of raw payload bytes before they reach a capture file or the
 * pipeline: credential header values and URL query values in HTTP/1 text are
 * overwritten with '*', byte for byte. Lengths never change, so message
 * framing (Content-Length, chunk sizes) still holds and a live run and the
 * replay of its recording see the very same bytes.
 *
 * maskHttpSecrets works on one payload; StreamMasker keeps state across the
 * records of one socket direction, for secrets a program wrote in pieces.
 */
import { HARMLESS_HEADER_MAX_LENGTH, isCredentialHeader, isSecretHeader } from './redact';
import { Http2Masker, http2Start } from './redact-http2';
import { detectProtocol, isHttp2Frames, NEED_MORE } from '../streams/detect';
import { GIVE_UP_BYTES } from '../streams/connections';
import { dbMasker, type DbMasker, type DbProtocol } from './redact-db';

/**
 * What the two directions of one socket learn of it together: a MySQL client's
 * first bytes say nothing, but the server's greeting, read the other way, does.
 */
export interface SocketMasking {
  /** The protocol either direction recognised, and who sent the bytes it recognised it in. */
  protocol?: { name: string; sender: 'client' | 'server' };
}

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

const DB_PROTOCOLS: ReadonlySet<string> = new Set(['postgres', 'mysql', 'redis']);
/** The start of a Redis inline command that carries a password. */
const REDIS_INLINE_SECRET = /^(AUTH|HELLO) /i;
/** How far into a direction the protocol detector is asked again while it needs more bytes: a greeting or start-up fits. */
const SNIFF_BYTES = 1024;
const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);
const HEAD_MAX = Math.max(HARMLESS_HEADER_MAX_LENGTH, ...[...METHODS].map((m) => m.length));
/** LongName: a line in a message head whose first HEAD_MAX bytes hold no colon: a header no allowlist names. */
const enum Mode { LineStart, Other, SecretValue, Target, QueryKey, QueryValue, LongName }

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
  /** Set when this direction is a database client's (PostgreSQL, MySQL, Redis): its credentials and literals. */
  private db: DbMasker | undefined;
  /** A database server's bytes: nothing of the client's there, nothing to do. */
  private dbServer = false;
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
    return this.perRecord;
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

  /** Mask one record's payload in place; `missing` bytes the kernel did not copy follow it. */
  mask(payload: Uint8Array, missing = 0): number {
    if (!this.decided) {
      const head = Buffer.concat([this.held, payload.subarray(0, 24)]);
      const start = http2Start(head);
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
        if (typeof seen === 'object' && seen.protocol === 'http2') this.http2 = new Http2Masker('late');
        else if (typeof seen === 'object' && DB_PROTOCOLS.has(seen.protocol)) {
          if (seen.sender === 'server') this.dbServer = true;
          else this.db = dbMasker(seen.protocol as DbProtocol, seen.connectionStart === true);
        } else if (typeof seen !== 'object' && REDIS_INLINE_SECRET.test(first.toString('latin1', 0, 8))) {
          // A Redis inline command (redis-cli and telnet users type them) the detector does not claim.
          this.db = dbMasker('redis', true);
        } else if (typeof seen !== 'object' && peer && DB_PROTOCOLS.has(peer.name)) {
          // Nothing recognised here, but the other direction was a database server's: these are its client's bytes.
          if (peer.sender === 'server') this.db = dbMasker(peer.name as DbProtocol, true);
          else this.dbServer = true;
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
        if (DB_PROTOCOLS.has(seen.protocol)) {
          this.probeLeft = 0;
          if (seen.sender === 'server') this.dbServer = true;
          else {
            this.db = dbMasker(seen.protocol as DbProtocol, seen.connectionStart === true);
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
  static maskText(masker: StreamMasker, payload: Uint8Array): number {
    return masker.maskText(payload);
  }

  private maskText(payload: Uint8Array, missing = 0): number {
    if (this.http2) return this.http2.mask(payload, missing);
    if (this.db) return this.db.mask(payload);
    if (this.dbServer) return 0;
    let masked = 0;
    for (let i = 0; i < payload.length; i++) {
      if (this.mode === Mode.Other) {
        // Nothing to mask until the next line: jump there natively (most bytes are bodies).
        const lf = payload.indexOf(LF, i);
        if (lf < 0) break;
        i = lf;
      }
      const b = payload[i]!;
      if (b === LF) {
        if (this.mode === Mode.LineStart && !this.lineHasText) this.inHead = false; // the empty line: a body follows
        this.mode = Mode.LineStart;
        this.headLength = 0;
        this.lineHasText = false;
        continue;
      }
      if (b !== CR) this.lineHasText = true;
      switch (this.mode) {
        case Mode.LineStart:
          if (b === COLON) {
            const name = this.head.latin1Slice(0, this.headLength);
            this.mode = (this.inHead ? isSecretHeader(name) : isCredentialHeader(name)) ? Mode.SecretValue : Mode.Other;
            this.valueStarted = false;
          } else if (b === SPACE) {
            const word = this.head.latin1Slice(0, this.headLength);
            if (METHODS.has(word)) {
              this.mode = Mode.Target;
              this.inHead = true;
            } else {
              // A status line opens a head too.
              if (word.startsWith('HTTP/1.')) this.inHead = true;
              this.mode = Mode.Other;
            }
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
            masked++;
          }
          break;
        case Mode.Target:
          if (b === 0x3f) this.mode = Mode.QueryKey; // '?'
          else if (b === SPACE) this.mode = Mode.Other;
          break;
        case Mode.QueryKey:
          if (b === 0x3d) this.mode = Mode.QueryValue; // '='
          else if (b === SPACE || b === 0x23) this.mode = Mode.Other;
          break;
        case Mode.QueryValue:
          if (b === 0x26) this.mode = Mode.QueryKey; // '&'
          else if (b === SPACE || b === 0x23 || b === CR) this.mode = Mode.Other;
          else {
            payload[i] = MASK;
            masked++;
          }
          break;
        default:
          break;
      }
    }
    return masked;
  }
}
