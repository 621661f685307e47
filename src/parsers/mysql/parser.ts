/**
 * MySQL / MariaDB client-server protocol, both directions of one connection.
 *
 * Packets: 3-byte length, sequence id, payload; a payload of 2^24-1 bytes
 * continues in the next packet (a statement over 16 MiB spans several).
 * Handshake: the server greeting gives its capabilities, the client's
 * response the negotiated ones (CLIENT_DEPRECATE_EOF decides how result sets
 * end; CLIENT_SSL means what follows is encrypted, and parsing stops, saying
 * so; CLIENT_COMPRESS puts the compressed layer under the rest, compressed.ts),
 * its user and database.
 * Commands: COM_QUERY, COM_STMT_PREPARE (its statement id remembered with the
 * text), COM_STMT_EXECUTE (reported with that text, or a note when it was
 * prepared before the capture began), COM_STMT_CLOSE (no answer), COM_INIT_DB,
 * COM_PING, and the rest by number. Responses answer in order: OK, ERR, EOF,
 * or a result set (column count, column definitions, rows) counted to its end;
 * SERVER_MORE_RESULTS_EXISTS keeps the command open for the next result.
 */
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { StreamBuffer } from '../shared/stream-buffer';
import { cstring, lenenc } from '../shared/wire';
import { COMMAND_NAMES, Command, greetingCapabilities, MYSQL_ERROR, Packet } from './codes';
import { CompressedFramer } from './compressed';
import type { Chunk, ProtocolParser, Side } from '../types';

/** The payload handed to a step that only counts its packet. */
const EMPTY = Buffer.alloc(0);
const MAX_PAYLOAD = 0xffffff;
/** Resuming by content where framing could not be trusted: a packet larger than this is not believed to start there. */
const RESYNC_MAX_PACKET = 64 * 1024;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_COMPRESS = 0x20;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH_LENENC = 0x200000;
const CLIENT_DEPRECATE_EOF = 0x1000000;
/** MySQL 8.0.18+: compressed packets hold zstd, not zlib, payloads. */
const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x4000000;
/** MySQL 8.0.23+: COM_QUERY and COM_STMT_EXECUTE carry query attributes (name, type, value) before the statement. */
const CLIENT_QUERY_ATTRIBUTES = 0x8000000;
/** COM_STMT_EXECUTE flags: the parameter count is sent (with query attributes, MySQL 8.0.23+). */
const PARAMETER_COUNT_AVAILABLE = 0x08;
const SERVER_MORE_RESULTS_EXISTS = 0x8;

const COMMANDS = COMMAND_NAMES;

type Stage = 'first' | 'columns' | 'columnsEof' | 'rows' | 'skip' | 'infile' | 'statistics' | 'fieldList';

interface Unit {
  kind: 'handshake' | 'result' | 'prepare';
  stage: Stage;
  remaining: number;
  rows: number;
  text?: string;
  tsStart?: bigint;
  tid?: number;
  offset?: number;
  /** Bytes of its answer that were not captured. */
  lostBytes?: number;
}

type Fields = Omit<DbRequest<'mysql'>, 'protocol' | 'kind' | 'tsStart' | 'tsEnd' | 'tid' | 'offset'>;

/** A COM_QUERY or COM_STMT_PREPARE statement: some clients (mysqlslap among them) end it with a NUL the server ignores. */
function statementText(p: Buffer, from = 1): string {
  let end = p.length;
  while (end > from && p[end - 1] === 0) end--;
  return p.toString('utf8', from, end);
}

/** Sizes of binary-protocol values by type (MYSQL_TYPE_*): fixed, or -1 for a length-encoded string, -2 for a length byte then the value. */
const VALUE_SIZE: Record<number, number> = {
  0x01: 1,
  0x02: 2,
  0x03: 4,
  0x04: 4,
  0x05: 8,
  0x06: 0,
  0x08: 8,
  0x09: 4,
  0x0d: 2,
  0x07: -2,
  0x0a: -2,
  0x0b: -2,
  0x0c: -2,
  0x11: -2,
  0x12: -2,
  0x13: -2,
};

/**
 * A COM_QUERY's query attributes (CLIENT_QUERY_ATTRIBUTES): parameter count,
 * parameter set count (1), then for a count above 0 a NULL bitmap, the
 * new-params-bound flag, each type and name, and each value; the statement
 * after them. Returns where the text starts, and the names.
 */
function queryAttributes(p: Buffer, from = 1, withSets = true): { textAt: number; names: string[]; broken?: boolean; context?: Record<string, string> } {
  const count = lenenc(p, from);
  if (!count) return { textAt: 1, names: [], broken: true };
  let at = from + count[1];
  if (withSets) {
    const sets = lenenc(p, at);
    if (!sets) return { textAt: 1, names: [], broken: true };
    at += sets[1];
  }
  const n = count[0];
  if (n === 0) return { textAt: at, names: [] };
  if (n > 1000) return { textAt: 1, names: [], broken: true };
  const nullBitmap = at;
  at += (n + 7) >> 3;
  if (p[at++] !== 1) return { textAt: 1, names: [], broken: true }; // values without types: not readable
  const types: number[] = [];
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    if (at + 2 > p.length) return { textAt: 1, names: [], broken: true };
    types.push(p[at]!);
    at += 2;
    const name = lenenc(p, at);
    if (!name || at + name[1] + name[0] > p.length) return { textAt: 1, names: [], broken: true };
    names.push(p.toString('utf8', at + name[1], at + name[1] + name[0]));
    at += name[1] + name[0];
  }
  let context: Record<string, string> | undefined;
  for (let i = 0; i < n; i++) {
    if ((p[nullBitmap + (i >> 3)]! >> (i & 7)) & 1) continue; // NULL: no value bytes
    const size = VALUE_SIZE[types[i]!] ?? -1;
    if (size >= 0) at += size;
    else if (size === -2) at += 1 + (p[at] ?? 0);
    else {
      const v = lenenc(p, at);
      if (!v) return { textAt: 1, names: [], broken: true };
      const name = names[i]!.toLowerCase();
      if ((name === 'traceparent' || name === 'tracestate') && at + v[1] + v[0] <= p.length) {
        (context ??= {})[name] = p.toString('latin1', at + v[1], at + v[1] + v[0]);
      }
      at += v[1] + v[0];
    }
    if (at > p.length) return { textAt: 1, names: [], broken: true };
  }
  return context ? { textAt: at, names, context } : { textAt: at, names };
}

export class MysqlParser implements ProtocolParser<DbMessage<'mysql'>> {
  readonly protocol = 'mysql';
  onMessage: (message: DbMessage<'mysql'>) => void = () => {};
  private readonly client = new StreamBuffer();
  private readonly server = new StreamBuffer();
  private phase: 'start' | 'handshake' | 'command' | 'stopped' = 'start';
  private serverCaps = 0;
  private deprecateEof = false;
  private compress: 'zlib' | 'zstd' | undefined;
  /** The handshake's OK was read on a compressing connection: what follows it is compressed. */
  private compressFromNext = false;
  /** Each side's compressed layer, once the handshake is done on a compressing connection. */
  private readonly compressed: Record<Side, CompressedFramer | undefined> = { client: undefined, server: undefined };
  private queryAttributes = false;
  private readonly units: Unit[] = [];
  private readonly statements = new Map<number, string>();
  private database: string | undefined;
  private user: string | undefined;
  /** A client payload of 2^24-1 bytes continues in the next packet: the parts so far. */
  private clientParts: Buffer[] = [];
  /** The previous server packet was full-size: the next one continues it. */
  private serverContinues = false;
  /**
   * How a side finds its framing again: after lost bytes, at a syscall boundary
   * that starts a command or a response (where writes began); when the framing
   * cannot be trusted otherwise (joined mid-connection, an answer to nothing),
   * by content alone (seekFramed), so where it resumes never depends on how
   * the bytes were cut.
   */
  private resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  /** Bytes lost of the client packet being reported (its end was not captured). */
  private cutLost = 0;

  feed(side: Side, chunk: Chunk): void {
    if (this.phase === 'stopped') return;
    const framer = this.compressed[side];
    if (framer) {
      for (const piece of framer.push(chunk)) {
        if (this.isStopped()) return;
        if ('lost' in piece) {
          if (side === 'client' && this.client.available === 0 && this.clientParts.length === 0) {
            // A whole command unreadable (a compressed packet holds one command): said, and its answer not waited for.
            this.onMessage({
              protocol: 'mysql',
              kind: 'request',
              command: 'Unreadable',
              noResponse: true,
              tsStart: piece.ts,
              tsEnd: piece.ts,
              tid: 0,
              offset: this.client.offset,
              lostBytes: piece.lost,
              error: piece.reason,
              parseErrorCode: piece.code,
              note: 'a compressed packet that did not inflate (masked in the capture, or corrupt)',
            });
          }
          this.lose(side, piece.lost, piece.ts);
        } else this.plain(side, piece);
      }
      return;
    }
    this.plain(side, chunk);
  }

  /** A method, not a test of `phase`: the compiler would narrow `phase` across the calls that stop it. */
  private isStopped(): boolean {
    return this.phase === 'stopped';
  }

  private plain(side: Side, chunk: Chunk): void {
    (side === 'client' ? this.client : this.server).push(chunk);
    if (side === 'client') this.parseClient();
    else this.parseServer();
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    if (this.phase === 'stopped') return;
    if (this.compressed[side]) {
      // Compressed packets have no marker to find again: what follows a loss cannot be framed.
      for (const unit of this.units.splice(0)) {
        this.respond(
          unit,
          {
            command: 'Lost',
            note: `${bytes} bytes of the compressed ${side} stream were not captured`,
            error: `${bytes} bytes of the compressed ${side} stream were not captured`,
            parseErrorCode: MYSQL_ERROR.LOST_BYTES,
          },
          ts,
          bytes,
        );
      }
      this.stop(ts, `${bytes} bytes of the compressed ${side} stream were not captured: the rest is not parsed`);
      return;
    }
    this.lose(side, bytes, ts);
  }

  /** Says why the rest of the connection is not parsed, and stops. */
  private stop(ts: bigint, note: string): void {
    this.onMessage({ protocol: 'mysql', kind: 'response', command: 'Unreadable', push: true, tsStart: ts, tsEnd: ts, tid: 0, offset: this.server.offset, note });
    this.phase = 'stopped';
  }

  /** `bytes` of one side's plain stream were not captured. */
  private lose(side: Side, bytes: number, ts: bigint): void {
    const buf = side === 'client' ? this.client : this.server;
    if (!this.resync[side] && this.phase !== 'start') {
      // Packet lengths frame every message: bytes lost inside one are passed over, and framing holds.
      const skipping = buf.skippingNow;
      const head = skipping ? undefined : buf.peek(5);
      const size = head ? 4 + head.readUIntLE(0, 3) : undefined;
      const inside = buf.inside(bytes, size);
      if (inside > 0) {
        if (side === 'server' && this.units[0]) this.units[0].lostBytes = (this.units[0].lostBytes ?? 0) + inside;
        if (!skipping) this.cutPacket(side, buf, size!, inside);
        buf.lose(inside, size);
        if (inside === bytes) return;
        bytes -= inside;
      }
    }
    buf.clear(bytes);
    this.resync[side] = 'gap';
    if (side === 'client') this.clientParts = [];
    else this.serverContinues = false;
    for (const unit of this.units.splice(0)) {
      this.respond(
        unit,
        {
          command: 'Lost',
          note: `${bytes} bytes of the ${side} stream were not captured`,
          error: `${bytes} bytes of the ${side} stream were not captured`,
          parseErrorCode: MYSQL_ERROR.LOST_BYTES,
        },
        ts,
        bytes,
      );
    }
  }

  end(_ts: bigint): void {}

  /** A packet whose end was not captured: reported from what was (a statement cut short), with the bytes lost. */
  private cutPacket(side: Side, buf: StreamBuffer, size: number, lost: number): void {
    const held = buf.peek(buf.available)!;
    const start = { ...buf.when(), offset: buf.offset };
    if (side === 'client') {
      if (held[3] !== 0 || this.clientParts.length > 0 || this.phase !== 'command') return; // not a command's first packet
      this.cutLost = lost;
      this.command(held.subarray(4), buf, size, start);
      this.cutLost = 0;
      return;
    }
    const unit = this.units[0];
    if (!unit || this.serverContinues) return;
    answerStarts(unit, buf);
    this.step(unit, held[4]!, held, 4, held.length, size - 4, buf.lastTs());
  }

  /** Resume where a command (client) or a response (server) starts: see `resync`. */
  private resynced(side: Side, buf: StreamBuffer): boolean {
    if (!this.resync[side]) return true;
    if (side === 'server' && this.units.length === 0) {
      buf.skip(buf.available); // nothing asked: nothing here can be an answer
      return false;
    }
    const plausible =
      side === 'client' ? (h: Buffer) => h[3] === 0 && COMMANDS[h[4]!] !== undefined && h.readUIntLE(0, 3) >= 1 : (h: Buffer) => h[3] === 1 && h.readUIntLE(0, 3) >= 1;
    const found =
      this.resync[side] === 'gap'
        ? buf.seekMessageStart(5, plausible)
        : buf.seekFramed(
            5,
            RESYNC_MAX_PACKET,
            (h) => (plausible(h) ? 4 + h.readUIntLE(0, 3) : undefined),
            (h) => (h.readUIntLE(0, 3) >= 1 ? 4 : undefined),
          );
    if (!found) return false;
    this.resync[side] = undefined;
    return true;
  }

  private request(fields: Fields, buf: StreamBuffer, size: number, start: { ts: bigint; tid: number; offset: number }): void {
    const request: DbRequest<'mysql'> = {
      protocol: 'mysql',
      kind: 'request',
      tsStart: start.ts,
      tsEnd: buf.tsAt(size - 1),
      tid: start.tid,
      offset: start.offset,
      ...fields,
    };
    if (this.database !== undefined && request.database === undefined) request.database = this.database;
    if (this.user !== undefined && request.user === undefined) request.user = this.user;
    if (this.cutLost) request.lostBytes = this.cutLost;
    this.onMessage(request);
  }

  private parseClient(): void {
    const buf = this.client;
    while (buf.available > 0 && this.phase !== 'stopped') {
      if (!buf.skipPending()) return;
      if (!this.resynced('client', buf)) return;
      // The header read in place: no view per packet.
      if (buf.available < 4) return;
      const len = buf.u24leAt(0)!;
      const seq = buf.byteAt(3)!;
      const total = 4 + len;
      if (this.phase === 'command' && this.clientParts.length === 0 && seq !== 0) {
        // Not a command: LOCAL INFILE contents or a change-user auth turn. Skip it.
        buf.skipAhead(total);
        continue;
      }
      if (this.phase === 'start' && buf.available < 5) return; // the command byte decides
      if (this.phase === 'start' && !(seq === 0 && COMMANDS[buf.byteAt(4)!] !== undefined) && seq !== 1) {
        // Joined mid-connection on something that is not a command: wait for one.
        this.resync.client = 'content';
        continue;
      }
      const payload = buf.slice(4, total);
      if (!payload) return;
      const when = buf.when();
      const start = { ts: when.ts, tid: when.tid, offset: buf.offset };
      if (len === MAX_PAYLOAD) {
        this.clientParts.push(Buffer.from(payload));
        buf.skip(total);
        continue;
      }
      const whole = this.clientParts.length ? Buffer.concat([...this.clientParts, payload]) : payload;
      const wholeSize = this.clientParts.length * (4 + MAX_PAYLOAD) + total;
      this.clientParts = [];
      if (this.phase === 'handshake' || (this.phase === 'start' && seq === 1)) this.handshakeResponse(whole, buf, total, start);
      else if (this.phase === 'start' || this.phase === 'command') {
        this.phase = 'command';
        this.command(whole, buf, Math.min(total, wholeSize), start);
      }
      buf.skip(total);
    }
  }

  private handshakeResponse(p: Buffer, buf: StreamBuffer, size: number, start: { ts: bigint; tid: number; offset: number }): void {
    if (this.units.some((u) => u.kind === 'handshake')) return; // an auth-switch answer: nothing to report
    if (p.length < 32) return;
    const caps = p.readUInt32LE(0);
    if (p.length === 32 && caps & CLIENT_SSL) {
      this.request(
        { command: 'SSLRequest', control: true, noResponse: true, note: 'the client asked for TLS: the rest of the connection is encrypted and not parsed' },
        buf,
        size,
        start,
      );
      this.phase = 'stopped';
      return;
    }
    this.deprecateEof = (caps & CLIENT_DEPRECATE_EOF) !== 0 && (this.serverCaps === 0 || (this.serverCaps & CLIENT_DEPRECATE_EOF) !== 0);
    this.compress = caps & CLIENT_COMPRESS ? 'zlib' : caps & CLIENT_ZSTD_COMPRESSION_ALGORITHM ? 'zstd' : undefined;
    this.queryAttributes = (caps & CLIENT_QUERY_ATTRIBUTES) !== 0 && (this.serverCaps & CLIENT_QUERY_ATTRIBUTES) !== 0;
    let at = 32;
    const [user, afterUser] = cstring(p, at);
    at = afterUser;
    if (caps & CLIENT_PLUGIN_AUTH_LENENC) {
      const [n, w] = lenenc(p, at) ?? [0, p.length];
      at += w + n;
    } else if (caps & CLIENT_SECURE_CONNECTION) {
      at += 1 + (p[at] ?? 0);
    } else {
      at = cstring(p, at)[1];
    }
    this.user = user;
    if (caps & CLIENT_CONNECT_WITH_DB && at < p.length) {
      const [db] = cstring(p, at);
      if (db) this.database = db;
    }
    this.phase = 'handshake';
    this.request({ command: 'Handshake', control: true }, buf, size, start);
    this.units.push({ kind: 'handshake', stage: 'first', remaining: 0, rows: 0 });
  }

  private command(p: Buffer, buf: StreamBuffer, size: number, start: { ts: bigint; tid: number; offset: number }): void {
    const code = p[0] ?? -1;
    const command = COMMANDS[code] ?? `COM_0x${code.toString(16).padStart(2, '0')}`;
    const result = (extra: Partial<Unit> = {}) => this.units.push({ kind: 'result', stage: 'first', remaining: 0, rows: 0, ...extra });
    switch (code) {
      case Command.QUERY: {
        const attributes = this.queryAttributes ? queryAttributes(p) : undefined;
        const fields: Fields = { command, query: statementText(p, attributes?.textAt ?? 1) };
        if (attributes?.names.length) fields.note = `query attributes: ${attributes.names.join(', ')}`;
        else if (attributes?.broken) fields.note = 'query attributes that could not be read: the statement text may start with their bytes';
        Object.assign(fields, attributes?.context);
        this.request(fields, buf, size, start);
        result();
        break;
      }
      case Command.STMT_PREPARE: {
        const text = statementText(p);
        this.request({ command, query: text, control: true }, buf, size, start);
        this.units.push({ kind: 'prepare', stage: 'first', remaining: 0, rows: 0, text });
        break;
      }
      case Command.STMT_EXECUTE: {
        const id = p.length >= 5 ? p.readUInt32LE(1) : -1;
        const text = this.statements.get(id);
        const fields: Fields = { command };
        if (text !== undefined) fields.query = text;
        else fields.note = `statement ${id} was prepared before the capture began: its text is unknown`;
        if (this.queryAttributes && p.length > 10 && p[5]! & PARAMETER_COUNT_AVAILABLE) {
          // The parameters, then the query attributes: the attributes are the ones with names.
          const named = queryAttributes(p, 10, false);
          const attributes = named.names.filter((n) => n !== '');
          if (!named.broken) fields.params = named.names.length - attributes.length;
          if (attributes.length) fields.note = [fields.note, `query attributes: ${attributes.join(', ')}`].filter(Boolean).join('; ');
          Object.assign(fields, named.context);
        }
        this.request(fields, buf, size, start);
        result();
        break;
      }
      case Command.STMT_CLOSE:
        this.statements.delete(p.length >= 5 ? p.readUInt32LE(1) : -1);
        this.request({ command, control: true, noResponse: true }, buf, size, start);
        break;
      case Command.STMT_SEND_LONG_DATA:
      case Command.QUIT:
        this.request({ command, control: true, noResponse: true }, buf, size, start);
        break;
      case Command.INIT_DB:
        this.database = p.toString('utf8', 1);
        this.request({ command, control: true }, buf, size, start);
        result();
        break;
      case Command.STATISTICS:
        this.request({ command, control: true }, buf, size, start);
        result({ stage: 'statistics' });
        break;
      case Command.FIELD_LIST: {
        // COM_FIELD_LIST (old clients' table-name completion): answered by column definitions and an EOF, with no
        // column count first — read as a result set, its first definition would be taken for a count.
        const [table] = cstring(p, 1);
        this.request({ command, control: true, ...(table ? { note: `table ${table}` } : {}) }, buf, size, start);
        result({ stage: 'fieldList' });
        break;
      }
      default:
        this.request({ command, control: code !== 0x1c }, buf, size, start);
        result();
    }
  }

  private parseServer(): void {
    const buf = this.server;
    while (buf.available > 0 && this.phase !== 'stopped') {
      if (!buf.skipPending()) return;
      if (!this.resynced('server', buf)) return;
      if (buf.available < 5) return;
      const len = buf.u24leAt(0)!;
      const seq = buf.byteAt(3)!;
      const first = buf.byteAt(4)!;
      const total = 4 + len;
      const continuation = this.serverContinues;
      this.serverContinues = len === MAX_PAYLOAD;
      if (continuation) {
        buf.skipAhead(total);
        continue;
      }
      if (this.phase === 'start' && seq === 0 && first === Packet.ERR) {
        // An ERR instead of the greeting: the server refused the connection (too many connections, a blocked host).
        const packet = buf.peek(total);
        if (!packet) {
          this.serverContinues = continuation;
          return;
        }
        const at = buf.whenAt(0);
        this.onMessage({
          protocol: 'mysql',
          kind: 'response',
          command: 'ERR',
          ...errFields(packet.subarray(4)),
          push: true,
          tsStart: at.ts,
          tsEnd: buf.tsAt(total - 1),
          tid: at.tid,
          offset: this.server.offset,
          note: 'sent instead of the greeting: the server refused the connection',
        });
        buf.skip(total);
        this.phase = 'stopped';
        continue;
      }
      if (this.phase === 'start' && seq === 0 && first === Packet.GREETING_V10) {
        const payload = buf.slice(4, total);
        if (!payload) {
          this.serverContinues = continuation;
          return;
        }
        this.greeting(payload);
        buf.skip(total);
        continue;
      }
      const unit = this.units[0];
      if (unit?.stage === 'rows' && !continuation && this.countRows(unit, buf)) continue;
      if (!unit) {
        // Nothing asked (a capture that joined mid-response): its framing cannot be trusted;
        // resume once a command is waiting for its answer.
        this.serverContinues = false;
        this.resync.server = 'content';
        continue;
      }
      answerStarts(unit, buf);
      // Rows and column definitions are only counted: skip their bytes without joining chunks.
      const counted = (unit.stage === 'rows' && first !== Packet.EOF && first !== Packet.ERR) || unit.stage === 'columns' || unit.stage === 'skip';
      if (counted) {
        this.step(unit, first, EMPTY, 0, 0, len, buf.tsAt(total - 1));
        buf.skipAhead(total);
        continue;
      }
      // The payload read in place when the first chunk holds the packet (most do): no view per packet.
      const chunk = buf.firstChunk!;
      const inFirst = chunk.length - buf.firstChunkHead >= total;
      const bytes = inFirst ? chunk : buf.peek(total);
      if (!bytes) {
        this.serverContinues = continuation;
        return;
      }
      const at = (inFirst ? buf.firstChunkHead : 0) + 4;
      this.step(unit, first, bytes, at, at + len, len, buf.tsAt(total - 1));
      buf.skip(total);
      if (this.compressFromNext) {
        this.beginCompressed();
        return;
      }
    }
  }

  /** The handshake ended on a compressing connection: every byte after it, held or to come, goes through the compressed layer. */
  private beginCompressed(): void {
    this.compressFromNext = false;
    for (const side of ['client', 'server'] as const) {
      const buf = side === 'client' ? this.client : this.server;
      this.compressed[side] = new CompressedFramer();
      if (buf.available === 0) continue;
      const { tid } = buf.when();
      const ts = buf.lastTs();
      const rest = Buffer.from(buf.peek(buf.available)!);
      buf.skip(rest.length);
      buf.offset -= rest.length; // these bytes were never plain: offsets count the plain stream, however the bytes were cut
      this.feed(side, { data: rest, ts, tid });
    }
  }

  /**
   * The hot path: whole row packets in the current chunk, counted in a tight
   * loop without views or joins. Stops before anything else (an end, an error,
   * a full-size packet, a packet cut by the chunk's end) for the general path.
   */
  private countRows(unit: Unit, buf: StreamBuffer): boolean {
    const b = buf.firstChunk;
    if (b === undefined) return false;
    const from = buf.firstChunkHead;
    let at = from;
    let rows = 0;
    while (at + 5 <= b.length) {
      const len = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
      const first = b[at + 4]!;
      if (first === Packet.EOF || first === Packet.ERR || len === MAX_PAYLOAD || at + 4 + len > b.length) break;
      rows++;
      at += 4 + len;
    }
    if (at === from) return false;
    unit.rows += rows;
    buf.skip(at - from);
    return true;
  }

  private greeting(p: Buffer): void {
    this.serverCaps = greetingCapabilities(p);
    this.phase = 'handshake';
  }

  /**
   * One server packet for the oldest unanswered unit: its payload is `b` from `at` to `end` (fewer than
   * `len` bytes when its end was not captured), read in place.
   */
  private step(unit: Unit, first: number, b: Buffer, at: number, end: number, len: number, endTs: bigint): void {
    const isEof = first === Packet.EOF && len < 9;
    switch (unit.stage) {
      case 'first':
        if (unit.kind === 'handshake') {
          if (first === Packet.OK) {
            this.units.shift();
            this.respond(unit, { command: 'OK' }, endTs);
            this.phase = 'command';
            if (this.compress === 'zstd') this.stop(endTs, 'the connection negotiated zstd compression, which this Node cannot inflate: the rest is not parsed');
            else if (this.compress === 'zlib') this.compressFromNext = true;
          } else if (first === Packet.ERR) {
            this.units.shift();
            this.respond(unit, { command: 'ERR', ...errFields(b.subarray(at, end)) }, endTs);
          }
          // 0xfe auth switch, 0x01 more auth data: the handshake goes on.
          return;
        }
        if (first === Packet.ERR) {
          this.units.shift();
          this.respond(unit, { command: 'ERR', ...errFields(b.subarray(at, end)) }, endTs);
          return;
        }
        if (unit.kind === 'prepare' && first === Packet.OK && len >= 12 && end - at >= 9) {
          const id = b.readUInt32LE(at + 1);
          const columns = b.readUInt16LE(at + 5);
          const params = b.readUInt16LE(at + 7);
          this.statements.set(id, unit.text ?? '');
          const eofs = this.deprecateEof ? 0 : (columns ? 1 : 0) + (params ? 1 : 0);
          unit.remaining = columns + params + eofs;
          if (unit.remaining === 0) {
            this.units.shift();
            this.respond(unit, { command: 'PrepareOK', note: `statement id ${id}` }, endTs);
          } else {
            unit.stage = 'skip';
            unit.text = `statement id ${id}`;
          }
          return;
        }
        if (first === Packet.OK || isEof) {
          const { rows, status } = okFields(b, at, end, isEof);
          unit.rows += rows;
          if (status & SERVER_MORE_RESULTS_EXISTS) return; // the next result follows
          this.units.shift();
          this.respond(unit, { command: isEof ? 'EOF' : 'OK', rows: unit.rows }, endTs);
          return;
        }
        if (first === Packet.LOCAL_INFILE) {
          unit.stage = 'infile';
          return;
        }
        unit.remaining = columnCount(b, at, end);
        unit.stage = unit.remaining > 0 ? 'columns' : 'rows';
        return;
      case 'fieldList':
        if (first === Packet.ERR) {
          this.units.shift();
          this.respond(unit, { command: 'ERR', ...errFields(b.subarray(at, end)) }, endTs);
        } else if (first === Packet.EOF && len < MAX_PAYLOAD) {
          this.units.shift();
          this.respond(unit, { command: 'FieldList', note: `${unit.rows} columns` }, endTs);
        } else unit.rows++;
        return;
      case 'statistics':
        // COM_STATISTICS answers with one plain string packet.
        this.units.shift();
        this.respond(unit, { command: 'Statistics' }, endTs);
        return;
      case 'infile':
        if (first === Packet.OK || first === Packet.ERR) {
          this.units.shift();
          this.respond(unit, first === Packet.ERR ? { command: 'ERR', ...errFields(b.subarray(at, end)) } : { command: 'OK', rows: okFields(b, at, end, false).rows }, endTs);
        }
        return;
      case 'columns':
        if (--unit.remaining === 0) unit.stage = this.deprecateEof ? 'rows' : 'columnsEof';
        return;
      case 'columnsEof':
        unit.stage = 'rows';
        return;
      case 'skip':
        if (--unit.remaining === 0) {
          this.units.shift();
          this.respond(unit, { command: 'PrepareOK', note: unit.text ?? '' }, endTs);
        }
        return;
      case 'rows':
        if (first === Packet.ERR) {
          this.units.shift();
          this.respond(unit, { command: 'ERR', rows: unit.rows, ...errFields(b.subarray(at, end)) }, endTs);
          return;
        }
        if (first === Packet.EOF && (this.deprecateEof ? len < MAX_PAYLOAD : len < 9)) {
          const { status } = okFields(b, at, end, !this.deprecateEof);
          if (status & SERVER_MORE_RESULTS_EXISTS) {
            unit.stage = 'first';
            return;
          }
          this.units.shift();
          this.respond(unit, { command: 'ResultSet', rows: unit.rows }, endTs);
          return;
        }
        unit.rows++;
        return;
    }
  }

  private respond(unit: Unit, fields: Partial<DbResponse<'mysql'>> & { command: string }, endTs: bigint, lost?: number): void {
    const response: DbResponse<'mysql'> = {
      protocol: 'mysql',
      kind: 'response',
      tsStart: unit.tsStart ?? endTs,
      tsEnd: endTs,
      tid: unit.tid ?? 0,
      offset: unit.offset ?? this.server.offset,
      ...fields,
    };
    const lostBytes = (lost ?? 0) + (unit.lostBytes ?? 0);
    if (lostBytes) response.lostBytes = lostBytes;
    this.onMessage(response);
  }
}

/** The answer to `unit` begins at the next server byte, unless it began already. */
function answerStarts(unit: Unit, buf: StreamBuffer): void {
  if (unit.tsStart !== undefined) return;
  const start = buf.when();
  unit.tsStart = start.ts;
  unit.tid = start.tid;
  unit.offset = buf.offset;
}

function errFields(p: Buffer): { errorCode: string; errorMessage: string } {
  // 0xff, error code u16, then '#' and a 5-character SQLSTATE (protocol 4.1), then the message.
  const code = p.length >= 3 ? p.readUInt16LE(1) : 0;
  if (p[3] === 0x23 /* # */) return { errorCode: p.toString('latin1', 4, 9), errorMessage: p.toString('utf8', 9) };
  return { errorCode: String(code), errorMessage: p.toString('utf8', 3) };
}

/** A result set's column count, its first packet's payload at `b[at..end)`; 0 when it does not read as one. */
function columnCount(b: Buffer, at: number, end: number): number {
  const count = lenenc(b, at);
  return count && at + count[1] <= end ? count[0] : 0;
}

/** An OK or EOF packet's affected rows and status flags, from its payload at `b[at..end)`. */
function okFields(b: Buffer, at: number, end: number, eof: boolean): { rows: number; status: number } {
  if (eof) return { rows: 0, status: end - at >= 5 ? b.readUInt16LE(at + 3) : 0 };
  const rowsField = lenenc(b, at + 1);
  const [rows, w1] = rowsField && at + 1 + rowsField[1] <= end ? rowsField : [0, end - at];
  const idField = lenenc(b, at + 1 + w1);
  const w2 = idField && at + 1 + w1 + idField[1] <= end ? idField[1] : end - at;
  const statusAt = at + 1 + w1 + w2;
  return { rows, status: statusAt + 2 <= end ? b.readUInt16LE(statusAt) : 0 };
}
