/**
 * Parsed-message records for `loupe parse`: one JSON object per request or
 * response (schema in docs/formats.md), or a table row.
 */
import type { Http1Message } from '../parsers/http1/messages';
import type { MessageBase } from '../parsers/types';
import type { Connection } from '../streams/connections';
import type { Endpoint } from '../events/types';
import { redactHeaders, redactTarget } from '../security/redact';
import { isDbMessage } from '../parsers/db';
import type { Http2Message } from '../parsers/http2/messages';
import { describeDbRequest } from '../correlator/db';
import { escapeControl } from './terminal';

const ep = (e: Endpoint | undefined) => (e ? (e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`) : '?');

/** `clientIP:port->serverIP:port`, the client side first, whichever side the process is on. */
export function connLabel(conn: Connection): string {
  if (conn.role === 'server') return `${ep(conn.remote)}->${ep(conn.local)}`;
  return `${ep(conn.local)}->${ep(conn.remote)}`;
}

/** `redact` (default on): query values and credential headers become REDACTED. */
export function messageRecord(conn: Connection, m: MessageBase, bootTimeNs: bigint, redact = true): Record<string, unknown> {
  const r: Record<string, unknown> = {
    ts: (bootTimeNs + m.tsStart).toString(),
    tsEnd: (bootTimeNs + m.tsEnd).toString(),
    conn: connLabel(conn),
    pid: conn.pid,
    protocol: m.protocol,
    kind: m.kind,
  };
  if (m.protocol === 'http1') {
    const h = m as Http1Message;
    if (h.kind === 'request') Object.assign(r, { method: h.method, target: redact ? redactTarget(h.target) : h.target, version: h.version });
    else Object.assign(r, { version: h.version, status: h.status, reason: h.reason });
    Object.assign(r, { headers: redact ? redactHeaders(h.headers) : h.headers, bodyBytes: h.bodyBytes });
    if (h.chunks !== undefined) r.chunks = h.chunks;
    if (h.trailers) r.trailers = redact ? redactHeaders(h.trailers) : h.trailers;
  }
  if (m.protocol === 'http2' || m.protocol === 'grpc') {
    const h = m as Http2Message;
    r.streamId = h.streamId;
    const redactFields = (fields: Array<[string, string]>) => (redact ? redactHeaders(fields) : fields).map(([n, v]) => [n, n === ':path' && redact ? redactTarget(v) : v]);
    if (h.kind === 'request') Object.assign(r, { method: h.method, target: redact ? redactTarget(h.path) : h.path, authority: h.authority, version: 'HTTP/2' });
    else Object.assign(r, { version: 'HTTP/2', status: h.status, reason: '' });
    r.headers = redactFields(h.headers);
    if (h.kind === 'response' && h.trailers.length) r.trailers = redactFields(h.trailers);
    r.bodyBytes = h.bodyBytes;
    if (h.kind === 'response' && h.reset !== undefined) r.reset = h.reset;
    if (h.kind === 'request' && h.open) r.open = true;
    if (h.grpc) {
      // The method is the request's; a response names it through its stream's request.
      Object.assign(r, { rpcService: h.grpc.service, rpcMethod: h.grpc.method, grpcMessages: h.grpc.messages, grpcMessageBytes: h.grpc.bytes });
      if (h.grpc.compressed) r.grpcCompressed = h.grpc.compressed;
    }
    if (h.kind === 'response' && h.grpcStatus !== undefined) r.grpcStatus = h.grpcStatus;
    if (h.kind === 'response' && h.grpcMessage !== undefined) r.grpcMessage = h.grpcMessage;
    if (h.unknownHeaders?.length) r.unknownHeaders = h.unknownHeaders;
  }
  if (isDbMessage(m)) {
    r.command = m.command;
    if (m.kind === 'request') {
      const { operation, table, text } = describeDbRequest(m);
      // Redis queries hold no values already; SQL text keeps its literals only with --no-redact.
      const query = redact || m.protocol === 'redis' ? text : m.query;
      if (query !== undefined) r.query = query;
      if (operation) r.operation = operation;
      if (table !== undefined) r.table = table;
      for (const k of ['database', 'user', 'params', 'control', 'noResponse', 'traceparent', 'tracestate'] as const) if (m[k] !== undefined) r[k] = m[k];
    } else {
      for (const k of ['rows', 'tag', 'errorCode', 'errorMessage', 'push'] as const) if (m[k] !== undefined) r[k] = m[k];
    }
    if (m.note !== undefined) r.note = m.note;
  }
  r.offset = m.offset;
  if (m.lostBytes) r.lostBytes = m.lostBytes;
  if (m.error !== undefined) r.error = m.error;
  if (m.parseErrorCode !== undefined) r.parseErrorCode = m.parseErrorCode;
  if (m.lenient) r.lenient = true;
  return r;
}

export function tableHeader(): string {
  return `${'TIME_MS'.padEnd(12)} ${'CONN'.padEnd(44)} ${'PROTO'.padEnd(6)} ${'KIND'.padEnd(8)} ${'MESSAGE'.padEnd(48)} ${'BODY'.padStart(7)}  NOTE\n`;
}

export function tableRow(record: Record<string, unknown>, firstTs: bigint): string {
  const ms = (Number(BigInt(record.ts as string) - firstTs) / 1e6).toFixed(3);
  const db = record.command !== undefined;
  const what = db
    ? record.kind === 'request'
      ? `${record.command}${record.query !== undefined ? ` ${record.query}` : ''}`
      : `${record.command}${record.rows !== undefined ? ` rows=${record.rows}` : ''}${record.errorCode !== undefined ? ` ${record.errorCode} ${record.errorMessage ?? ''}` : ''}`
    : record.kind === 'request'
      ? `${record.method} ${record.target} ${record.version}`
      : record.status !== undefined ? `${record.status} ${record.reason}` : '';
  const note = [record.error, record.note, record.lostBytes ? `${record.lostBytes} bytes lost` : undefined].filter(Boolean).join('; ');
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const row = `${ms.padEnd(12)} ${cut(String(record.conn), 44).padEnd(44)} ${String(record.protocol).padEnd(6)} ${String(record.kind).padEnd(8)} ${cut(escapeControl(what), 48).padEnd(48)} ${String(record.bodyBytes ?? '').padStart(7)}  ${note}`;
  return `${escapeControl(row)}\n`;
}
