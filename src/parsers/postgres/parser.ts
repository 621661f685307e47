/**
 * PostgreSQL frontend/backend protocol 3, both directions of one connection.
 *
 * Requests: Startup, SSLRequest, GSSENCRequest, CancelRequest, Query (simple
 * protocol), Execute (extended protocol, with the text of the statement its
 * portal was bound to: Parse and Bind are remembered per name, unnamed ones
 * too), FunctionCall, Terminate. Responses answer requests in order:
 *  - Startup: at the first ReadyForQuery (or the fatal ErrorResponse);
 *  - Query: at its ReadyForQuery, rows and tag summed over its statements,
 *    COPY in and out included;
 *  - Execute: at its CommandComplete, EmptyQueryResponse, PortalSuspended or
 *    ErrorResponse. After an error the server skips to Sync: the Executes it
 *    skipped are answered at ReadyForQuery as not executed;
 *  - SSLRequest/GSSENCRequest: the one-byte answer; 'S'/'G' means the rest
 *    is encrypted, and parsing stops, saying so.
 * Lost bytes answer every waiting request with the loss (so pairing stays in
 * step) and parsing resumes at the next syscall boundary that frames.
 */
import { Backend, BACKEND_TYPES, ErrorField, Frontend, FRONTEND_TYPES, PG_ERROR, SslAnswer, Target } from './codes';
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { StreamBuffer } from '../shared/stream-buffer';
import { cstring, WireReader } from '../shared/wire';
import type { Chunk, ProtocolParser, Side } from '../types';

const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Messages larger than this are taken as broken framing. */
const MAX_MESSAGE = 1 << 30;
/** Resuming by content after broken framing: a message larger than this is not believed to start there. */
const RESYNC_MAX_MESSAGE = 64 * 1024;

const FRONTEND = FRONTEND_TYPES;
const BACKEND = BACKEND_TYPES;
/** The message type bytes each side sends, as a table by byte: a Set of one-character strings was a tenth of a parse. */
const typeBytes = (types: ReadonlySet<string>) => {
  const table = new Uint8Array(256);
  for (const t of types) table[t.charCodeAt(0)] = 1;
  return table;
};
const FRONTEND_BYTES = typeBytes(FRONTEND);
const BACKEND_BYTES = typeBytes(BACKEND);
const DATA_ROW_BYTE = Backend.DataRow.charCodeAt(0);

type UnitKind = 'startup' | 'ssl' | 'gss' | 'query' | 'execute' | 'sync';

/** A response the server owes, in the order the client asked. */
interface Unit {
  kind: UnitKind;
  /** DataRows seen. */
  rows: number;
  /** Rows the command tags report, summed over a Query's statements; undefined while no tag had a count. */
  tagRows?: number;
  notices?: number;
  counted: boolean;
  tag?: string;
  errorCode?: string;
  errorMessage?: string;
  tsStart?: bigint;
  tid?: number;
  offset?: number;
  lostBytes?: number;
}

/** The row count a command tag reports: the last number in "SELECT 3", "INSERT 0 1", "UPDATE 2". */
/** The buffer that holds the next `total` bytes whole, where they lie in the first chunk; else undefined. */
function inPlace(buf: StreamBuffer, total: number): Buffer | undefined {
  const first = buf.firstChunk;
  return first !== undefined && first.length - buf.firstChunkHead >= total ? first : undefined;
}

function tagRows(tag: string): number | undefined {
  const m = /(\d+)$/.exec(tag);
  return m ? Number(m[1]) : undefined;
}

export class PostgresParser implements ProtocolParser<DbMessage<'postgres'>> {
  readonly protocol = 'postgres';
  onMessage: (message: DbMessage<'postgres'>) => void = () => {};
  private readonly client = new StreamBuffer();
  private readonly server = new StreamBuffer();
  private readonly reader = new WireReader();
  /** The next client message is untyped (start-up, SSL, GSS or cancel request). */
  private clientUntyped = true;
  private readonly units: Unit[] = [];
  private readonly statements = new Map<string, string>();
  private readonly portals = new Map<string, { statement: string; params: number }>();
  private database: string | undefined;
  private user: string | undefined;
  private encrypted = false;
  /**
   * How a side finds its framing again: after lost bytes, at a syscall boundary
   * that frames as a message (where writes began); after bytes that broke
   * framing, by content alone (seekFramed), so where it resumes never depends
   * on how the bytes were cut.
   */
  private resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  private seenUntyped = false;
  /** Bytes lost of the client message being reported (its end was not captured). */
  private cutLost = 0;

  feed(side: Side, chunk: Chunk): void {
    if (this.encrypted) return;
    const buf = side === 'client' ? this.client : this.server;
    buf.push(chunk);
    if (side === 'client') this.parseClient();
    else this.parseServer();
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    if (this.encrypted) return;
    const buf = side === 'client' ? this.client : this.server;
    if (!this.resync[side]) {
      // Lengths frame every message: bytes lost inside one are passed over, and framing holds.
      const skipping = buf.skippingNow;
      const size = skipping ? undefined : this.headSize(side, buf);
      const inside = buf.inside(bytes, size);
      if (inside > 0) {
        if (side === 'server' && this.units[0]) this.units[0].lostBytes = (this.units[0].lostBytes ?? 0) + inside;
        if (!skipping) this.cutMessage(side, buf, size!, inside);
        buf.lose(inside, size);
        if (inside === bytes) return;
        bytes -= inside;
      }
    }
    buf.clear(bytes);
    this.resync[side] = 'gap';
    // Whatever was owed can no longer be told apart: answer it with the loss, in order.
    for (const unit of this.units.splice(0)) {
      if (unit.kind === 'sync') continue;
      this.respond(unit, { command: 'Lost', note: `${bytes} bytes of the ${side} stream were not captured` }, ts, bytes);
    }
  }

  end(_ts: bigint): void {
    // Requests still waiting end as incomplete in the correlator, which knows why the connection ended.
  }

  /** The whole size of the typed message at the head of a side's stream, from its header; undefined when not known. */
  private headSize(side: Side, buf: StreamBuffer): number | undefined {
    if (side === 'client' && this.clientUntyped) return undefined;
    const h = buf.peek(5);
    if (!h) return undefined;
    const len = h.readUInt32BE(1);
    const types = side === 'client' ? FRONTEND : BACKEND;
    return types.has(String.fromCharCode(h[0]!)) && len >= 4 && len < MAX_MESSAGE ? 1 + len : undefined;
  }

  /** A message whose end was not captured: reported from what was (a query's text cut short), with the bytes lost. */
  private cutMessage(side: Side, buf: StreamBuffer, size: number, lost: number): void {
    const held = buf.peek(buf.available)!;
    const type = String.fromCharCode(held[0]!);
    if (side === 'client') {
      this.cutLost = lost;
      this.clientMessage(type, this.reader.reset(held, 5, held.length), buf, size);
      this.cutLost = 0;
      return;
    }
    this.answerStarts(buf);
    this.serverMessage(type, held, 0, held.length, buf.lastTs());
  }

  /** The answer owed first begins at the next server byte, unless it began already; that answer. */
  private answerStarts(buf: StreamBuffer): Unit | undefined {
    const unit = this.units[0];
    if (unit && unit.tsStart === undefined) {
      const start = buf.when();
      unit.tsStart = start.ts;
      unit.tid = start.tid;
      unit.offset = buf.offset;
    }
    return unit;
  }

  /** Resume after lost bytes at a syscall boundary whose bytes frame as a message of this side. */
  private resynced(side: Side, buf: StreamBuffer): boolean {
    if (!this.resync[side]) return true;
    const types = side === 'client' ? FRONTEND : BACKEND;
    const found =
      this.resync[side] === 'gap'
        ? buf.seekMessageStart(5, (h) => types.has(String.fromCharCode(h[0]!)) && h.readUInt32BE(1) >= 4 && h.readUInt32BE(1) < MAX_MESSAGE)
        : buf.seekFramed(5, RESYNC_MAX_MESSAGE, (h) => (types.has(String.fromCharCode(h[0]!)) && h.readUInt32BE(1) >= 4 ? 1 + h.readUInt32BE(1) : undefined));
    if (!found) return false;
    this.resync[side] = undefined;
    return true;
  }

  private request(fields: Omit<DbRequest<'postgres'>, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'>, buf: StreamBuffer, size: number): DbRequest<'postgres'> {
    const start = buf.when();
    const request: DbRequest<'postgres'> = {
      protocol: 'postgres',
      kind: 'request',
      tsStart: start.ts,
      tsEnd: buf.tsAt(size - 1),
      tid: start.tid,
      offset: buf.offset,
      ...fields,
    };
    if (this.database !== undefined && request.database === undefined) request.database = this.database;
    if (this.user !== undefined && request.user === undefined) request.user = this.user;
    if (this.cutLost) request.lostBytes = this.cutLost;
    this.onMessage(request);
    return request;
  }

  private expect(kind: UnitKind): void {
    this.units.push({ kind, rows: 0, counted: false });
  }

  private parseClient(): void {
    const buf = this.client;
    while (buf.available > 0) {
      if (!buf.skipPending()) return;
      if (!this.resynced('client', buf)) return;
      if (this.clientUntyped) {
        const h = buf.peek(8);
        if (!h) return;
        const len = h.readUInt32BE(0);
        const code = h.readUInt32BE(4);
        const known = code === PROTOCOL_3 || code === SSL_REQUEST || code === GSSENC_REQUEST || code === CANCEL_REQUEST;
        if (!known || len < 8 || len > 10_000) {
          // Not a start: the capture joined a running connection. Its messages are typed.
          this.clientUntyped = false;
          continue;
        }
        const body = buf.peek(len);
        if (!body) return;
        this.seenUntyped = true;
        if (code === PROTOCOL_3) {
          const params = new Map<string, string>();
          let at = 8;
          while (at < len - 1) {
            const [key, next] = cstring(body, at);
            if (key === '') break;
            const [value, after] = cstring(body, next);
            params.set(key, value);
            at = after;
          }
          this.user = params.get('user');
          this.database = params.get('database') ?? this.user;
          this.request({ command: 'Startup', control: true }, buf, len);
          this.expect('startup');
          this.clientUntyped = false;
        } else if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          this.request({ command: code === SSL_REQUEST ? 'SSLRequest' : 'GSSENCRequest', control: true }, buf, len);
          this.expect(code === SSL_REQUEST ? 'ssl' : 'gss');
        } else {
          this.request({ command: 'CancelRequest', control: true, noResponse: true }, buf, len);
        }
        buf.skip(len);
        continue;
      }
      // The header read in place: no view per message.
      const len = buf.u32At(1);
      if (len === undefined) return;
      const first = buf.byteAt(0)!;
      if (FRONTEND_BYTES[first] !== 1 || len < 4 || len >= MAX_MESSAGE) {
        const type = String.fromCharCode(first);
        this.broken(
          'client',
          buf,
          `byte ${buf.offset}: ${FRONTEND.has(type) ? `message length ${len} is impossible` : `0x${first.toString(16)} is not a frontend message type`}`,
          FRONTEND.has(type) ? PG_ERROR.INVALID_LENGTH : PG_ERROR.UNKNOWN_MESSAGE_TYPE,
        );
        continue;
      }
      const type = String.fromCharCode(first);
      const total = 1 + len;
      if (type === Frontend.CopyData) {
        // CopyData: its contents are the table's rows; only skip them.
        buf.skipAhead(total);
        continue;
      }
      // In place when the message lies in the first chunk (most do): a view per message was a tenth of the parse.
      const inFirst = inPlace(buf, total);
      const b = inFirst ?? buf.peek(total);
      if (!b) return;
      const base = inFirst ? buf.firstChunkHead : 0;
      this.clientMessage(type, this.reader.reset(b, base + 5, base + total), buf, total);
      buf.skip(total);
    }
  }

  /** `r`: the message's fields, after its type and length. */
  private clientMessage(type: string, r: WireReader, buf: StreamBuffer, total: number): void {
    switch (type) {
      case Frontend.Query: {
        this.request({ command: 'Query', query: r.cstring() }, buf, total);
        this.expect('query');
        break;
      }
      case Frontend.Parse: {
        const name = r.cstring();
        this.statements.set(name, r.cstring());
        break;
      }
      case Frontend.Bind: {
        const portal = r.cstring();
        const statement = r.cstring();
        // Counts are Int16 on the wire but never negative: read unsigned, past the end as none.
        const formats = r.u16be() ?? 0;
        const params = r.skip(2 * formats).u16be() ?? 0;
        this.portals.set(portal, { statement, params });
        break;
      }
      case Frontend.Execute: {
        const portal = r.cstring();
        const bound = this.portals.get(portal);
        const text = bound ? this.statements.get(bound.statement) : undefined;
        const fields: Omit<DbRequest<'postgres'>, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'> = { command: 'Execute' };
        if (text !== undefined) fields.query = text;
        else
          fields.note = bound
            ? `statement ${JSON.stringify(bound.statement)} was prepared before the capture began: its text is unknown`
            : `portal ${JSON.stringify(portal)} was bound before the capture began: its statement is unknown`;
        if (bound) fields.params = bound.params;
        this.request(fields, buf, total);
        this.expect('execute');
        break;
      }
      case Frontend.Sync:
        this.expect('sync');
        break;
      case Frontend.Close: {
        const what = String.fromCharCode(r.byte() ?? 0);
        const name = r.cstring();
        if (what === Target.Statement) this.statements.delete(name);
        else this.portals.delete(name);
        break;
      }
      case Frontend.FunctionCall:
        this.request({ command: 'FunctionCall' }, buf, total);
        this.expect('query');
        break;
      case Frontend.Terminate:
        this.request({ command: 'Terminate', control: true, noResponse: true }, buf, total);
        break;
      default:
        // D (Describe), H (Flush), c/f (copy end), p (password, SASL): nothing to report.
        break;
    }
  }

  private parseServer(): void {
    const buf = this.server;
    while (buf.available > 0) {
      if (!buf.skipPending()) return;
      if (!this.resynced('server', buf)) return;
      const head = this.units[0];
      if (head && (head.kind === 'ssl' || head.kind === 'gss')) {
        const b = buf.byteAt(0)!;
        if (b === SslAnswer.Yes || b === SslAnswer.No || b === SslAnswer.GssYes) {
          const accepted = b !== 0x4e;
          const start = buf.when();
          head.tsStart = start.ts;
          head.tid = start.tid;
          head.offset = buf.offset;
          this.units.shift();
          this.respond(head, { command: accepted ? 'EncryptionAccepted' : 'EncryptionRefused' }, start.ts);
          buf.skip(1);
          if (accepted) {
            this.encrypted = true;
            this.onMessage({
              protocol: 'postgres',
              kind: 'response',
              command: 'Encrypted',
              push: true,
              tsStart: start.ts,
              tsEnd: start.ts,
              tid: start.tid,
              offset: buf.offset,
              note: `the server accepted ${head.kind === 'ssl' ? 'TLS' : 'GSSAPI encryption'}: the rest of the connection is encrypted and not parsed`,
            });
            return;
          }
          continue;
        }
        // An old server answering SSLRequest with an ErrorResponse: typed, handled below.
      }
      if (this.units[0]?.tsStart !== undefined && this.countRows(this.units[0], buf)) continue;
      // The header read in place: no view per message.
      const len = buf.u32At(1);
      if (len === undefined) return;
      const first = buf.byteAt(0)!;
      if (BACKEND_BYTES[first] !== 1 || len < 4 || len >= MAX_MESSAGE) {
        const type = String.fromCharCode(first);
        this.broken(
          'server',
          buf,
          `byte ${buf.offset}: ${BACKEND.has(type) ? `message length ${len} is impossible` : `0x${first.toString(16)} is not a backend message type`}`,
          BACKEND.has(type) ? PG_ERROR.INVALID_LENGTH : PG_ERROR.UNKNOWN_MESSAGE_TYPE,
        );
        continue;
      }
      const type = String.fromCharCode(first);
      const total = 1 + len;
      const unit = this.answerStarts(buf);
      if (type === Backend.DataRow || type === Backend.CopyData) {
        if (type === Backend.DataRow && unit) unit.rows++;
        buf.skipAhead(total);
        continue;
      }
      const inFirst = inPlace(buf, total);
      const b = inFirst ?? buf.peek(total);
      if (!b) return;
      const base = inFirst ? buf.firstChunkHead : 0;
      this.serverMessage(type, b, base, total, buf.tsAt(total - 1));
      buf.skip(total);
    }
  }

  /**
   * The hot path: whole DataRows in the current chunk, counted in a tight loop
   * without views or joins; anything else goes to the general path.
   */
  private countRows(unit: Unit, buf: StreamBuffer): boolean {
    const b = buf.firstChunk;
    if (b === undefined) return false;
    const from = buf.firstChunkHead;
    let at = from;
    let rows = 0;
    while (at + 5 <= b.length && b[at] === DATA_ROW_BYTE) {
      const len = ((b[at + 1]! << 24) >>> 0) + (b[at + 2]! << 16) + (b[at + 3]! << 8) + b[at + 4]!;
      if (len < 4 || at + 1 + len > b.length) break;
      rows++;
      at += 1 + len;
    }
    if (at === from) return false;
    unit.rows += rows;
    buf.skip(at - from);
    return true;
  }

  /** The message is `b[base, base + total)`. */
  private serverMessage(type: string, b: Buffer, base: number, total: number, endTs: bigint): void {
    const unit = this.units[0];
    switch (type) {
      case Backend.ReadyForQuery: {
        // ReadyForQuery ends a start-up, a simple query, or an extended batch at its Sync.
        if (unit && (unit.kind === 'startup' || unit.kind === 'query')) {
          this.units.shift();
          const fields: Partial<DbResponse<'postgres'>> & { command: string } =
            unit.errorCode !== undefined
              ? { command: 'ErrorResponse', errorCode: unit.errorCode, errorMessage: unit.errorMessage! }
              : { command: unit.kind === 'startup' ? 'ReadyForQuery' : 'CommandComplete' };
          if (unit.kind === 'query' && unit.errorCode === undefined) fields.rows = unit.tagRows ?? unit.rows;
          if (unit.tag !== undefined) fields.tag = unit.tag;
          if (unit.notices) fields.note = `${unit.notices} notice${unit.notices > 1 ? 's' : ''} from the server`;
          this.respond(unit, fields, endTs);
        } else {
          while (this.units[0]?.kind === 'execute') {
            const skipped = this.units.shift()!;
            this.respond(skipped, { command: 'NotExecuted', errorMessage: 'not executed: an earlier message of its batch failed' }, endTs);
          }
          if (this.units[0]?.kind === 'sync') this.units.shift();
        }
        break;
      }
      case Backend.CommandComplete: {
        const tag = this.reader.reset(b, base + 5, base + total).cstring();
        const rows = tagRows(tag);
        if (unit?.kind === 'execute') {
          this.units.shift();
          this.respond(unit, { command: 'CommandComplete', tag, rows: rows ?? unit.rows }, endTs);
        } else if (unit?.kind === 'query') {
          // Several statements in one Query: the tag of the last, the rows of all
          // (COPY TO STDOUT sends no DataRows: only its tag counts them).
          unit.tag = tag;
          if (rows !== undefined) unit.tagRows = (unit.tagRows ?? 0) + rows;
        }
        break;
      }
      case Backend.EmptyQueryResponse:
        if (unit?.kind === 'execute') {
          this.units.shift();
          this.respond(unit, { command: 'EmptyQueryResponse', rows: 0 }, endTs);
        }
        break;
      case Backend.PortalSuspended:
        if (unit?.kind === 'execute') {
          this.units.shift();
          this.respond(unit, { command: 'PortalSuspended', rows: unit.rows }, endTs);
        }
        break;
      case Backend.ErrorResponse: {
        const fields = errorFields(b.subarray(base, base + total));
        if (unit?.kind === 'execute') {
          this.units.shift();
          this.respond(unit, { command: 'ErrorResponse', errorCode: fields.code, errorMessage: fields.message }, endTs);
        } else if (unit && (unit.kind === 'startup' || unit.kind === 'query') && unit.errorCode === undefined) {
          unit.errorCode = fields.code;
          unit.errorMessage = fields.message;
          if (unit.kind === 'startup' && (fields.severity === 'FATAL' || fields.severity === 'PANIC')) {
            this.units.shift();
            this.respond(unit, { command: 'ErrorResponse', errorCode: fields.code, errorMessage: fields.message }, endTs);
          }
        } else if (unit && (unit.kind === 'ssl' || unit.kind === 'gss')) {
          this.units.shift();
          this.respond(unit, { command: 'ErrorResponse', errorCode: fields.code, errorMessage: fields.message }, endTs);
          this.clientUntyped = true;
        }
        break;
      }
      case Backend.NoticeResponse:
        if (unit) unit.notices = (unit.notices ?? 0) + 1;
        break;
      default:
        // R, S, K (start-up), T, t, 1, 2, 3, n, A, G, H, W, c, V, v: nothing owed ends here.
        break;
    }
  }

  private respond(unit: Unit, fields: Partial<DbResponse<'postgres'>> & { command: string }, endTs: bigint, lost?: number): void {
    const response: DbResponse<'postgres'> = {
      protocol: 'postgres',
      kind: 'response',
      tsStart: unit.tsStart ?? endTs,
      tsEnd: endTs,
      tid: unit.tid ?? 0,
      offset: unit.offset ?? this.server.offset,
      ...fields,
    };
    const lostBytes = (lost ?? 0) + (unit.lostBytes ?? 0);
    if (lostBytes) response.lostBytes = lostBytes;
    if (response.note !== undefined && lost) {
      response.error = response.note;
      response.parseErrorCode = PG_ERROR.LOST_BYTES;
    }
    this.onMessage(response);
  }

  /** Framing broke on a side: report it there and resume at the next syscall boundary that frames. */
  private broken(side: Side, buf: StreamBuffer, reason: string, code: string): void {
    const start = buf.when();
    const unparsable = {
      protocol: 'postgres' as const,
      command: 'Unparsable',
      tsStart: start.ts,
      tsEnd: start.ts,
      tid: start.tid,
      offset: buf.offset,
      error: reason,
      parseErrorCode: code,
    };
    this.onMessage(side === 'client' ? { ...unparsable, kind: 'request', control: true, noResponse: true } : { ...unparsable, kind: 'response', push: true });
    this.resync[side] = 'content';
    buf.skip(1);
  }

  /** True once a start-up, SSL, GSS or cancel request was seen (the connection was seen from its start). */
  get sawStart(): boolean {
    return this.seenUntyped;
  }
}

function errorFields(body: Buffer): { code: string; message: string; severity: string } {
  let at = 5;
  const out = { code: '', message: '', severity: '' };
  while (at < body.length && body[at] !== 0) {
    const field = String.fromCharCode(body[at]!);
    const [value, next] = cstring(body, at + 1);
    if (field === ErrorField.Code) out.code = value;
    else if (field === ErrorField.Message) out.message = value;
    else if (field === ErrorField.SeverityNonLocalized || (field === ErrorField.Severity && !out.severity)) out.severity = value;
    at = next;
  }
  return out;
}
