/** HTTP/1 from its first line: a request line (also one a strict parser refuses but servers answer) or a status line. */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';

export const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const REQUEST_LINE = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]+ HTTP/1\\.[01]\\r?$`);
const STATUS_LINE = /^HTTP\/1\.[01] \d{3}(?: |\r?$)/;
/**
 * Request lines a strict parser refuses but servers answer (400, 501, 505):
 * an unknown or malformed method, extra spaces, a missing target, another
 * version — all ending in one —, or HTTP/0.9's method and path alone. Still
 * requests: the parser reports them with its error.
 */
const MALFORMED_REQUEST = [
  /^[!-~]{1,24} +(?:[^\r\n]* )?HTTP\/\d\.\d\r?$/,
  new RegExp(`^(?:${METHODS.join('|')}) +\\/[^ \\r\\n]*\\r?$`),
  new RegExp(`^(?:${METHODS.join('|')}) +[^ \\r\\n]+ +HTTP\\/\\d\\.\\d[^\\r\\n]*\\r?$`), // words after the version
];
/** What a request line looks like while it is still arriving. */
const PARTIAL_REQUEST = new RegExp(`^(?:${METHODS.join('|')}) [^ \\r\\n]*(?: (?:H(?:T(?:T(?:P(?:/(?:1(?:\\.(?:[01]\\r?)?)?)?)?)?)?)?)?)?$`);
export function detectHttp1(b: Buffer): ModuleVerdict {
  const head = b.toString('latin1', 0, Math.min(b.length, 512));
  const newline = head.indexOf('\n');
  // A method, a space and 500 bytes of target with no end yet: a request with a long URL (tracking
  // parameters, OAuth redirects), decided at 512 bytes however they were cut, as a shorter line is.
  if (newline < 0 && head.length === 512 && PARTIAL_REQUEST.test(head)) return seenFrom('client', false);
  const line = newline < 0 ? head : head.slice(0, newline);
  if (newline >= 0) {
    if (REQUEST_LINE.test(line)) return seenFrom('client', false);
    if (STATUS_LINE.test(line)) return seenFrom('server', false);
    if (MALFORMED_REQUEST.some((r) => r.test(line))) return seenFrom('client', false);
    return undefined;
  }
  if (STATUS_LINE.test(line)) return seenFrom('server', false);
  if ('HTTP/1.'.startsWith(line) || /^HTTP\/1\.[01]( \d{0,3})?$/.test(line)) return NEED_MORE;
  if (!line.includes(' ') ? METHODS.some((m) => m.startsWith(line)) : PARTIAL_REQUEST.test(line)) return NEED_MORE;
  return undefined;
}
