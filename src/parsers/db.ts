/**
 * The message model the database protocols share (PostgreSQL, MySQL, Redis):
 * a request runs a command, a response answers the oldest unanswered request
 * of its connection. Each parser emits responses in request order.
 */
import { isDatabaseProtocol, type DatabaseProtocol } from './protocols';
import type { MessageBase } from './types';

export type DbProtocol = DatabaseProtocol;

export interface DbRequest extends MessageBase {
  protocol: DbProtocol;
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
  /** Connection management (start-up, auth, TLS request): no database span. */
  control?: boolean;
  /** Something the data could not tell, said plainly (e.g. a statement prepared before the capture began). */
  note?: string;
  /** Trace context the client sent with the statement (MySQL query attributes `traceparent`, `tracestate`). */
  traceparent?: string;
  tracestate?: string;
}

export interface DbResponse extends MessageBase {
  protocol: DbProtocol;
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

export type DbMessage = DbRequest | DbResponse;

export function isDbMessage(m: MessageBase): m is DbMessage {
  return isDatabaseProtocol(m.protocol);
}
