/**
 * Which protocol a connection speaks, from the first bytes seen on it, and
 * whether those bytes came from the client or the server side. Issue 3 grows
 * this beyond HTTP/1.
 */
import type { Side } from '../parsers/types';

export interface Detection {
  protocol: 'http1';
  /** Who must have sent these bytes. */
  sender: Side;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const REQUEST_START = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]+ HTTP/1\\.[01]\\r?$`);

/** Looks at the first line only; undefined when the bytes say nothing yet or are not a known protocol. */
export function detectProtocol(first: Uint8Array): Detection | undefined {
  const head = Buffer.from(first.buffer, first.byteOffset, Math.min(first.byteLength, 256)).toString('latin1');
  const line = head.split('\n', 1)[0]!;
  if (REQUEST_START.test(line)) return { protocol: 'http1', sender: 'client' };
  if (/^HTTP\/1\.[01] \d{3}/.test(line)) return { protocol: 'http1', sender: 'server' };
  return undefined;
}
