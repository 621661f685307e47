/**
 * Database messages -> OpenTelemetry database client span attributes.
 * Statement text is exported with its literals replaced by `?`.
 */
import {
  ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_QUERY_TEXT, ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME, ATTR_ERROR_TYPE, ATTR_NETWORK_PEER_ADDRESS, ATTR_NETWORK_PEER_PORT, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import { ATTR_DB_RESPONSE_RETURNED_ROWS } from '@opentelemetry/semantic-conventions/incubating';
import type { DbRequest, DbResponse } from '../parsers/db';
import { dbSystemOf } from '../parsers/protocols';
import { obfuscateSql, sqlOperation, sqlTable } from '../parsers/sql-text';
import type { Endpoint } from '../events/types';
import type { AttributeValue, Span } from './span';
import { LOUPE_ATTR } from './attributes';



/** What a request does: operation, table and the text to export (literals obfuscated). */
export function describeDbRequest(req: DbRequest): { operation: string; table?: string; text?: string } {
  if (req.protocol === 'redis') {
    const key = req.query?.split(' ')[1];
    return { operation: req.command, ...(key && key !== '?' ? { table: key } : {}), ...(req.query ? { text: req.query } : {}) };
  }
  if (req.query === undefined) return { operation: req.command };
  const operation = sqlOperation(req.query) || req.command;
  const table = sqlTable(req.query);
  return { operation, ...(table ? { table } : {}), text: obfuscateSql(req.query) };
}

export function dbSpanName(req: DbRequest): string {
  const { operation, table } = describeDbRequest(req);
  // A Redis key is data, not a collection name: it stays out of the span name.
  if (table && req.protocol !== 'redis') return `${operation} ${table}`;
  return operation || dbSystemOf(req.protocol);
}

export function dbRequestAttributes(req: DbRequest, remote: Endpoint | undefined): Record<string, AttributeValue> {
  const a: Record<string, AttributeValue> = { [ATTR_DB_SYSTEM_NAME]: dbSystemOf(req.protocol) };
  const { operation, table, text } = describeDbRequest(req);
  if (operation) a[ATTR_DB_OPERATION_NAME] = operation;
  if (table && req.protocol !== 'redis') a[ATTR_DB_COLLECTION_NAME] = table;
  if (text !== undefined) a[ATTR_DB_QUERY_TEXT] = text;
  if (req.database !== undefined) a[ATTR_DB_NAMESPACE] = req.database;
  if (remote) {
    a[ATTR_SERVER_ADDRESS] = remote.addr;
    a[ATTR_SERVER_PORT] = remote.port;
    a[ATTR_NETWORK_PEER_ADDRESS] = remote.addr;
    a[ATTR_NETWORK_PEER_PORT] = remote.port;
  }
  a[LOUPE_ATTR.DB_COMMAND] = req.command;
  if (req.note !== undefined) a[LOUPE_ATTR.NOTE] = req.note;
  return a;
}

export function applyDbResponse(span: Span, res: DbResponse): void {
  if (res.rows !== undefined) span.attributes[ATTR_DB_RESPONSE_RETURNED_ROWS] = res.rows;
  if (res.errorCode !== undefined || res.error !== undefined || res.command === 'NotExecuted') {
    const code = res.errorCode ?? res.command;
    span.attributes[ATTR_DB_RESPONSE_STATUS_CODE] = code;
    span.attributes[ATTR_ERROR_TYPE] = code;
    span.status = { code: 'error', ...(res.errorMessage ?? res.error ? { message: (res.errorMessage ?? res.error)! } : {}) };
  }
}
