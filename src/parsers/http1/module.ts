/** HTTP/1.x as a protocol module: requests answered in order on a connection (pipelining included). */
import type { ConnectionView, MessageRole, ProtocolModule, RedactionOptions, SpanStart } from '../module';
import { LOUPE_ATTR, type SpanDraft } from '../spans';
import { detectHttp1 } from './detect';
import { headerValue, HTTP1_ERROR, type Http1Message, type Http1Request, type Http1Response } from './messages';
import { Http1Parser } from './parser';
import { isCredentialHeader, redactHeaders, redactTarget } from './secrets';
import { applyResponse, requestAttributes, spanName, splitTarget } from './spans';

/**
 * The request as both ends of a connection saw it. Query values and credential
 * headers are compared redacted: a live agent masks them in the bytes, and a
 * program that wrote a request line in pieces may have them masked at one end
 * and not the other.
 */
function fingerprint(req: Http1Request): string {
  let fp = `${req.method} ${redactTarget(req.target)} ${req.version}`;
  for (const [n, v] of req.headers) fp += `\n${n}: ${isCredentialHeader(n) ? '' : v}`;
  return fp;
}

/** The span an HTTP request starts (HTTP/2 requests come here as the HTTP/1 request they mean). */
export function httpSpanStart(req: Http1Request, connection: ConnectionView, redaction: RedactionOptions): SpanStart {
  const kind = connection.role;
  const start: SpanStart = {
    name: spanName(kind, req),
    attributes: requestAttributes(kind, req, connection.local, connection.remote, redaction, connection.tls),
    family: 'http',
    fingerprint: fingerprint(req),
    goCall: () => ({ method: req.method, path: splitTarget(req.target).path, host: headerValue(req.headers, 'host') }),
  };
  if (kind === 'server') start.route = { path: splitTarget(req.target).path, name: (route) => spanName(kind, req, route) };
  const traceparent = headerValue(req.headers, 'traceparent');
  if (traceparent !== undefined) {
    start.traceparent = traceparent;
    const tracestate = headerValue(req.headers, 'tracestate');
    if (tracestate !== undefined) start.tracestate = tracestate;
  }
  return start;
}

/** What an answer tells: its status, and a parse error it carries (a lenient read keeps its status). */
function respond(span: SpanDraft, res: Http1Response): void {
  applyResponse(span, res);
  if (res.error !== undefined && res.lenient) {
    span.attributes[LOUPE_ATTR.PARSE_ERROR] = res.error;
    if (res.parseErrorCode !== undefined) span.attributes[LOUPE_ATTR.PARSE_ERROR_CODE] = res.parseErrorCode;
  } else if (res.error !== undefined) {
    span.attributes[LOUPE_ATTR.PARSE_ERROR] = res.error;
    span.status = { code: 'error', message: res.error };
  }
  if (res.lostBytes) span.attributes[LOUPE_ATTR.LOST_BYTES] = Number(span.attributes[LOUPE_ATTR.LOST_BYTES] ?? 0) + res.lostBytes;
}

function role(m: Http1Message, connection: ConnectionView, redaction: RedactionOptions): MessageRole {
  if (m.kind === 'request') {
    if (m.method === '') return { is: 'none' }; // too broken to be a request: counted as a parse error
    return { is: 'request', span: httpSpanStart(m, connection, redaction) };
  }
  if (m.status >= 100 && m.status < 200 && m.status !== 101) return { is: 'none' }; // interim: the request is still open
  // Upgraded to HTTP/2: the request becomes stream 1, and its real answer comes there.
  if (m.status === 101 && headerValue(m.headers, 'upgrade')?.trim().toLowerCase() === 'h2c') return { is: 'continues', key: 1 };
  return { is: 'response' };
}

function record(h: Http1Message, redact: boolean): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  if (h.kind === 'request') Object.assign(r, { method: h.method, target: redact ? redactTarget(h.target) : h.target, version: h.version });
  else Object.assign(r, { version: h.version, status: h.status, reason: h.reason });
  Object.assign(r, { headers: redact ? redactHeaders(h.headers) : h.headers, bodyBytes: h.bodyBytes });
  if (h.chunks !== undefined) r.chunks = h.chunks;
  if (h.trailers) r.trailers = redact ? redactHeaders(h.trailers) : h.trailers;
  return r;
}

/** The MESSAGE column of a request or response record of HTTP/1 or HTTP/2. */
export function httpSummary(record: Record<string, unknown>): string {
  if (record.kind === 'request') return `${record.method} ${record.target} ${record.version}`;
  return record.status !== undefined ? `${record.status} ${record.reason}` : '';
}

export const http1Module: ProtocolModule<Http1Message, 'http1'> = {
  name: 'http1',
  family: 'http',
  detect: { verdict: detectHttp1 },
  parseErrors: HTTP1_ERROR,
  parser: () => new Http1Parser(),
  pairing: { answers: 'in-order', acrossConnection: 'same-bytes', servesCalls: true, goClientCalls: true },
  role,
  respond,
  record,
  summary: httpSummary,
};
