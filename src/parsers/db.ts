/**
 * What the database protocols share (PostgreSQL, MySQL, Redis): a message
 * model — a request runs a command, a response answers the oldest unanswered
 * request of its connection, each parser emitting responses in request
 * order — and the module built on it: spans with OpenTelemetry's database
 * attributes, statement text exported with its literals replaced by `?`.
 */
import {
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import { ATTR_DB_RESPONSE_RETURNED_ROWS } from '@opentelemetry/semantic-conventions/incubating';
import type { Address, ConnectionView, MessageRole, ParserOptions, ProtocolModule } from './module';
import { LOUPE_ATTR, type Attributes, type SpanDraft } from './spans';
import { obfuscateSql, sqlOperation, sqlTable } from './sql-text';
import type { MessageBase, ProtocolParser } from './types';

export interface DbRequest<P extends string = string> extends MessageBase {
  protocol: P;
  kind: 'request';
  /** The wire command: Query, Execute, Startup, COM_QUERY, COM_STMT_EXECUTE, GET, ... */
  command: string;
  /** Statement text as sent (exporters obfuscate it), or a Redis command line. */
  query?: string;
  /** Database (namespace) and user the connection logged in with, when the start was seen. */
  database?: string;
  user?: string;
  /** Arguments or bound parameters, counted (their values are never kept). */
  params?: number;
  /** No response comes (COM_STMT_CLOSE, Terminate, CancelRequest, SUBSCRIBE...). */
  noResponse?: boolean;
  /** No response comes, but the request is an operation of its own (memcached's `noreply`): a span that ends with it. */
  oneWay?: boolean;
  /** Connection management (start-up, auth, TLS request): no database span. */
  control?: boolean;
  /** Something the data could not tell, said plainly (e.g. a statement prepared before the capture began). */
  note?: string;
  /** Trace context the client sent with the statement (MySQL query attributes `traceparent`, `tracestate`). */
  traceparent?: string;
  tracestate?: string;
}

export interface DbResponse<P extends string = string> extends MessageBase {
  protocol: P;
  kind: 'response';
  /** What answered: CommandComplete, ResultSet, OK, ERR, Error, ... */
  command: string;
  /** Rows returned or affected. */
  rows?: number;
  /** PostgreSQL command tag ("SELECT 3"). */
  tag?: string;
  /** SQLSTATE (PostgreSQL, MySQL) or error prefix (Redis: ERR, WRONGTYPE). */
  errorCode?: string;
  errorMessage?: string;
  /** Server-initiated (Redis pub/sub push): answers no request. */
  push?: boolean;
  note?: string;
}

/** A database's messages, keyed by its protocol's name. */
export type DbMessage<P extends string = string> = DbRequest<P> | DbResponse<P>;

/** What a request does: its operation, the collection it names (a table), a key (data: never a span name), and the text to export. */
export interface DbStatement {
  operation: string;
  collection?: string;
  key?: string;
  text?: string;
}

/** A SQL statement: operation and table from the text, its literals obfuscated unless `redact` is false. */
export function describeSql(req: DbRequest, redact: boolean): DbStatement {
  if (req.query === undefined) return { operation: req.command };
  const operation = sqlOperation(req.query) || req.command;
  const table = sqlTable(req.query);
  return { operation, ...(table ? { collection: table } : {}), text: redact ? obfuscateSql(req.query) : req.query };
}

/** What both ends of a database connection agree on for a statement: its place in order, not its bytes. */
const DB_FINGERPRINT = 'database statement';

/** `server`: the database's address (the local one on its own side); `peer`: the other end of the connection, as on every span. */
function requestAttributes(dbSystem: string, req: DbRequest, statement: DbStatement, server: Address | undefined, peer: Address | undefined): Attributes {
  const a: Attributes = { [ATTR_DB_SYSTEM_NAME]: dbSystem };
  if (statement.operation) a[ATTR_DB_OPERATION_NAME] = statement.operation;
  if (statement.collection) a[ATTR_DB_COLLECTION_NAME] = statement.collection;
  if (statement.text !== undefined) a[ATTR_DB_QUERY_TEXT] = statement.text;
  if (req.database !== undefined) a[ATTR_DB_NAMESPACE] = req.database;
  if (server) {
    a[ATTR_SERVER_ADDRESS] = server.addr;
    a[ATTR_SERVER_PORT] = server.port;
  }
  if (peer) {
    a[ATTR_NETWORK_PEER_ADDRESS] = peer.addr;
    a[ATTR_NETWORK_PEER_PORT] = peer.port;
  }
  a[LOUPE_ATTR.DB_COMMAND] = req.command;
  if (req.note !== undefined) a[LOUPE_ATTR.NOTE] = req.note;
  return a;
}

function respond(span: SpanDraft, res: DbMessage): void {
  if (res.kind !== 'response') return;
  if (res.rows !== undefined) span.attributes[ATTR_DB_RESPONSE_RETURNED_ROWS] = res.rows;
  if (res.errorCode !== undefined || res.error !== undefined || res.command === 'NotExecuted') {
    const code = res.errorCode ?? res.command;
    span.attributes[ATTR_DB_RESPONSE_STATUS_CODE] = code;
    span.attributes[ATTR_ERROR_TYPE] = code;
    span.status = { code: 'error', ...((res.errorMessage ?? res.error) ? { message: (res.errorMessage ?? res.error)! } : {}) };
  }
  if (res.lostBytes) span.attributes[LOUPE_ATTR.LOST_BYTES] = Number(span.attributes[LOUPE_ATTR.LOST_BYTES] ?? 0) + res.lostBytes;
}

function summary(record: Record<string, unknown>): string {
  if (record.kind === 'request') return `${record.command}${record.query !== undefined ? ` ${record.query}` : ''}`;
  return `${record.command}${record.rows !== undefined ? ` rows=${record.rows}` : ''}${record.errorCode !== undefined ? ` ${record.errorCode} ${record.errorMessage ?? ''}` : ''}`;
}

/** What makes one database protocol: the rest is shared. */
export interface DatabaseDefinition<N extends string> {
  name: N;
  /** OpenTelemetry's db.system.name. */
  dbSystem: string;
  detect: ProtocolModule['detect'];
  parser: (options: ParserOptions) => ProtocolParser<DbMessage<N>>;
  parseErrors: Readonly<Record<string, string>>;
  /** What a statement does (SQL by default). */
  describe?: (req: DbRequest, redact: boolean) => DbStatement;
  masking: NonNullable<ProtocolModule['masking']>;
}

/**
 * A database as a protocol module. Either side: a watched client makes
 * CLIENT spans, a watched database server SERVER spans (a server watched
 * alone still shows every statement it ran). Requests that manage the
 * connection (start-up, TLS, prepare) make no span but keep their place, so
 * the answers that follow pair with the right request; requests that get no
 * answer take no place. Where one kernel sees both ends, the server span is
 * the client span's child by its place on the connection pair.
 */
export function databaseModule<N extends string>(d: DatabaseDefinition<N>): ProtocolModule<DbMessage<N>, N> & { family: 'database'; dbSystem: string } {
  const describe = d.describe ?? describeSql;
  const role = (m: DbMessage, connection: ConnectionView): MessageRole => {
    if (m.kind === 'response') return m.push ? { is: 'none' } : { is: 'response' };
    if (m.noResponse) return { is: 'none' };
    if (m.control) return { is: 'placeholder' };
    const statement = describe(m, true);
    return {
      is: m.oneWay ? 'one-way' : 'request',
      span: {
        // A key is data, not a collection name: it stays out of the span name.
        name: statement.collection ? `${statement.operation} ${statement.collection}` : statement.operation || d.dbSystem,
        attributes: requestAttributes(d.dbSystem, m, statement, connection.role === 'server' ? connection.local : connection.remote, connection.remote),
        family: 'db',
        fingerprint: DB_FINGERPRINT,
        ...(m.traceparent !== undefined ? { traceparent: m.traceparent } : {}),
        ...(m.tracestate !== undefined ? { tracestate: m.tracestate } : {}),
      },
    };
  };
  const record = (m: DbMessage, redact: boolean): Record<string, unknown> => {
    const r: Record<string, unknown> = { command: m.command };
    if (m.kind === 'request') {
      const { operation, collection, key, text } = describe(m, redact);
      if (text !== undefined) r.query = text;
      if (operation) r.operation = operation;
      if ((collection ?? key) !== undefined) r.table = collection ?? key;
      for (const k of ['database', 'user', 'params', 'control', 'noResponse', 'oneWay', 'traceparent', 'tracestate'] as const) if (m[k] !== undefined) r[k] = m[k];
    } else {
      for (const k of ['rows', 'tag', 'errorCode', 'errorMessage', 'push'] as const) if (m[k] !== undefined) r[k] = m[k];
    }
    if (m.note !== undefined) r.note = m.note;
    return r;
  };
  return {
    name: d.name,
    family: 'database',
    dbSystem: d.dbSystem,
    detect: d.detect,
    parseErrors: d.parseErrors,
    parser: d.parser,
    pairing: { answers: 'in-order', acrossConnection: 'same-place', servesCalls: false, goClientCalls: false },
    role,
    respond,
    record,
    summary,
    masking: d.masking,
  };
}
