/** HTTP/2 (and gRPC over it) as a protocol module: a span per stream, answers found by stream id. */
import { httpSpanStart, httpSummary } from '../http1/module';
import { redactHeaders, redactTarget } from '../http1/secrets';
import type { ConnectionView, MessageRole, ProtocolModule, RedactionOptions } from '../module';
import { detectHttp2 } from './detect';
import { H2_ERROR, type Http2Message } from './messages';
import { Http2Parser } from './parser';
import { applyHttp2Response, decorateHttp2Request, http2AsHttp1 } from './spans';

/** A request takes HTTP's path (same context rules, same attributes) as the HTTP/1 request it means; what only HTTP/2 and gRPC have is added last. */
function role(m: Http2Message, connection: ConnectionView, redaction: RedactionOptions): MessageRole {
  if (m.kind === 'response') return { is: 'response', key: m.streamId };
  if (m.method === '' && m.error !== undefined) return { is: 'none' };
  const span = httpSpanStart(http2AsHttp1(m), connection, redaction);
  if (m.grpc) span.family = 'rpc';
  span.decorate = (draft) => decorateHttp2Request(draft, m);
  return { is: 'request', span, key: m.streamId };
}

function record(h: Http2Message, redact: boolean): Record<string, unknown> {
  const r: Record<string, unknown> = { streamId: h.streamId };
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
  return r;
}

export const http2Module: ProtocolModule<Http2Message, 'http2'> = {
  name: 'http2',
  messageProtocols: ['grpc'],
  family: 'http',
  detect: { verdict: detectHttp2 },
  parseErrors: H2_ERROR,
  parser: (options) => new Http2Parser({ keepGrpcPayloads: options.keepGrpcPayloads ?? false, upgraded: options.upgraded ?? false }),
  pairing: { answers: 'by-key', acrossConnection: 'same-bytes', servesCalls: true, goClientCalls: true },
  role,
  respond: applyHttp2Response,
  record,
  summary: httpSummary,
};
