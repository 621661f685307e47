/**
 * Which protocol a connection speaks, from the first bytes seen on it, and
 * whether those bytes came from the client or the server side. The bytes may
 * arrive one at a time, so detection answers "need more" until it can decide.
 * Issue 3 grows this beyond HTTP/1.
 */
import type { Side } from '../parsers/types';

export interface Detection {
  protocol: 'http1';
  /** Who must have sent these bytes. */
  sender: Side;
}

/** Undecided: the prefix could still become a known protocol's first message. */
export const NEED_MORE = 'need-more';
/** Bytes we wait for at most before giving up on a connection. */
export const MAX_DETECT_BYTES = 1024;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const REQUEST_LINE = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]+ HTTP/1\\.[01]\\r?$`);
const STATUS_LINE = /^HTTP\/1\.[01] \d{3}(?: |\r?$)/;
/** What a request line looks like while it is still arriving. */
const PARTIAL_REQUEST = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]*(?: (?:H(?:T(?:T(?:P(?:/(?:1(?:\\.(?:[01]\\r?)?)?)?)?)?)?)?)?)?$`);

function isMethodPrefix(s: string): boolean {
  return METHODS.some((m) => m.startsWith(s));
}

export function detectProtocol(prefix: Uint8Array): Detection | typeof NEED_MORE | undefined {
  const head = Buffer.from(prefix.buffer, prefix.byteOffset, Math.min(prefix.byteLength, 512)).toString('latin1');
  const newline = head.indexOf('\n');
  const line = newline < 0 ? head : head.slice(0, newline);
  if (newline >= 0) {
    if (REQUEST_LINE.test(line)) return { protocol: 'http1', sender: 'client' };
    if (STATUS_LINE.test(line)) return { protocol: 'http1', sender: 'server' };
    return undefined;
  }
  if (STATUS_LINE.test(line)) return { protocol: 'http1', sender: 'server' };
  if ('HTTP/1.'.startsWith(line) || /^HTTP\/1\.[01]( \d{0,3})?$/.test(line)) return NEED_MORE;
  if (!line.includes(' ') ? isMethodPrefix(line) : PARTIAL_REQUEST.test(line)) return NEED_MORE;
  return undefined;
}
