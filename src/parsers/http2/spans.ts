/**
 * HTTP/2 and gRPC messages -> span attributes. An HTTP/2 request is given to
 * the HTTP/1 attribute code as the request it means (method, target, headers,
 * `:authority` as Host); what only HTTP/2 and gRPC have is added after.
 */
import { ATTR_ERROR_TYPE, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_NETWORK_PROTOCOL_VERSION } from '@opentelemetry/semantic-conventions';
import { ATTR_HTTP_RESPONSE_BODY_SIZE, ATTR_RPC_GRPC_STATUS_CODE, ATTR_RPC_METHOD, ATTR_RPC_SERVICE, ATTR_RPC_SYSTEM } from '@opentelemetry/semantic-conventions/incubating';
import type { Http1Request, Http1Response } from '../http1/messages';
import { applyResponse } from '../http1/spans';
import { LOUPE_ATTR, type SpanDraft } from '../spans';
import type { Http2Request, Http2Response } from './messages';

/** gRPC codes that make a server span an error (OTel RPC conventions); a client span fails on any code but OK. */
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);

export function http2AsHttp1(m: Http2Request): Http1Request {
  const headers: Array<[string, string]> = m.headers.filter(([n]) => !n.startsWith(':'));
  if (m.authority) headers.unshift(['host', m.authority]);
  return {
    protocol: 'http1',
    kind: 'request',
    method: m.method,
    target: m.path,
    version: 'HTTP/2',
    headers,
    bodyBytes: m.bodyBytes,
    tsStart: m.tsStart,
    tsEnd: m.tsEnd,
    tid: m.tid,
    offset: m.offset,
    ...(m.error !== undefined ? { error: m.error } : {}),
    ...(m.lostBytes ? { lostBytes: m.lostBytes } : {}),
  };
}

export function decorateHttp2Request(span: SpanDraft, m: Http2Request): void {
  span.attributes[ATTR_NETWORK_PROTOCOL_VERSION] = '2';
  span.attributes[LOUPE_ATTR.HTTP2_STREAM_ID] = m.streamId;
  if (m.unknownHeaders?.length) span.attributes[LOUPE_ATTR.UNKNOWN_HEADERS] = m.unknownHeaders.join(', ');
  if (m.grpc) {
    span.attributes[ATTR_RPC_SYSTEM] = 'grpc';
    span.attributes[ATTR_RPC_SERVICE] = m.grpc.service;
    span.attributes[ATTR_RPC_METHOD] = m.grpc.method;
    span.attributes[LOUPE_ATTR.RPC_REQUEST_MESSAGES] = m.grpc.messages;
    span.name = `${m.grpc.service}/${m.grpc.method}`;
  }
}

export function applyHttp2Response(span: SpanDraft, m: Http2Response): void {
  // Bytes the kernel did not copy: framing held over them, so the status below is the real one.
  if (m.lostBytes) span.attributes[LOUPE_ATTR.LOST_BYTES] = Number(span.attributes[LOUPE_ATTR.LOST_BYTES] ?? 0) + m.lostBytes;
  if (m.reset !== undefined) {
    span.attributes[LOUPE_ATTR.HTTP2_RESET] = m.reset;
    span.attributes[ATTR_ERROR_TYPE] = m.reset;
    span.status = { code: 'error', message: `stream reset: ${m.reset}` };
  }
  if (span.attributes[ATTR_RPC_SYSTEM] === 'grpc') {
    if (m.status) span.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = m.status;
    if (m.grpc) {
      span.attributes[LOUPE_ATTR.RPC_RESPONSE_MESSAGES] = m.grpc.messages;
      span.attributes[LOUPE_ATTR.RPC_STREAMING] = streamingKind(Number(span.attributes[LOUPE_ATTR.RPC_REQUEST_MESSAGES] ?? 0), m.grpc.messages);
    }
    if (m.grpcStatus !== undefined) {
      span.attributes[ATTR_RPC_GRPC_STATUS_CODE] = m.grpcStatus;
      const failed = span.kind === 'server' ? SERVER_ERROR_CODES.has(m.grpcStatus) : m.grpcStatus !== 0;
      if (failed) {
        span.status = { code: 'error', ...(m.grpcMessage ? { message: m.grpcMessage } : {}) };
        span.attributes[ATTR_ERROR_TYPE] = String(m.grpcStatus);
      }
    }
    if (m.bodyBytes > 0) span.attributes[ATTR_HTTP_RESPONSE_BODY_SIZE] = m.bodyBytes;
    return;
  }
  if (m.status) {
    const res: Http1Response = {
      protocol: 'http1',
      kind: 'response',
      version: 'HTTP/2',
      status: m.status,
      reason: '',
      headers: [],
      bodyBytes: m.bodyBytes,
      tsStart: m.tsStart,
      tsEnd: m.tsEnd,
      tid: m.tid,
      offset: m.offset,
    };
    applyResponse(span, res);
  }
}

/**
 * The call's kind as its messages show it (the wire says nothing else without
 * the .proto): more than one message from a side means that side streamed, so
 * a streaming call that sent one message each way reads as unary.
 */
export function streamingKind(requests: number, responses: number): 'unary' | 'client_streaming' | 'server_streaming' | 'bidi_streaming' {
  if (requests > 1 && responses > 1) return 'bidi_streaming';
  if (requests > 1) return 'client_streaming';
  if (responses > 1) return 'server_streaming';
  return 'unary';
}
