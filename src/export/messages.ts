/**
 * Parsed-message records for `loupe parse`: one JSON object per request or
 * response (schema in docs/formats.md), or a table row.
 */
import type { MessageBase } from '../parsers/types';
import { moduleOf } from '../parsers/protocols';
import type { Connection } from '../streams/connections';
import type { Endpoint } from '../events/types';
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
  const fields = moduleOf(m.protocol)?.record?.(m, redact);
  if (fields) Object.assign(r, fields);
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
  const what = moduleOf(String(record.protocol))?.summary?.(record) ?? '';
  const note = [record.error, record.note, record.lostBytes ? `${record.lostBytes} bytes lost` : undefined].filter(Boolean).join('; ');
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const row = `${ms.padEnd(12)} ${cut(String(record.conn), 44).padEnd(44)} ${String(record.protocol).padEnd(6)} ${String(record.kind).padEnd(8)} ${cut(escapeControl(what), 48).padEnd(48)} ${String(record.bodyBytes ?? '').padStart(7)}  ${note}`;
  return `${escapeControl(row)}\n`;
}
