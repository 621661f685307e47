import type { MessageBase } from '../types';

/** Why an HTTP/2 message could not be read whole (its parseErrorCode). */
export const H2_ERROR = {
  /** DATA or trailers of a stream whose HEADERS were not seen (before the capture, or lost). */
  HEADERS_NOT_SEEN: 'H2_HEADERS_NOT_SEEN',
} as const;
import type { HeaderField } from './hpack';

/** gRPC over this stream: from `:path` and the length-prefixed messages in DATA. */
export interface GrpcInfo {
  service: string;
  method: string;
  /** Length-prefixed messages seen in this direction. */
  messages: number;
  /** Messages with the compressed flag. */
  compressed: number;
  /** Bytes of the messages, as their length prefixes say. */
  bytes: number;
  /** Payloads of the first messages, kept only when asked for (`loupe parse --proto`). */
  payloads?: Buffer[];
}

export interface Http2Request extends MessageBase {
  protocol: 'http2' | 'grpc';
  kind: 'request';
  streamId: number;
  method: string;
  path: string;
  authority: string;
  scheme: string;
  /** Fields in block order, pseudo-headers included. */
  headers: HeaderField[];
  bodyBytes: number;
  /** Fields that named dynamic-table entries from before the capture began. */
  unknownHeaders?: string[];
  /** The request was still sending when it was reported (its response began first, or it was reset). */
  open?: boolean;
  grpc?: GrpcInfo;
}

export interface Http2Response extends MessageBase {
  protocol: 'http2' | 'grpc';
  kind: 'response';
  streamId: number;
  status: number;
  headers: HeaderField[];
  trailers: HeaderField[];
  bodyBytes: number;
  unknownHeaders?: string[];
  /** RST_STREAM error code name, when the stream was reset instead of ending. */
  reset?: string;
  grpcStatus?: number;
  grpcMessage?: string;
  grpc?: GrpcInfo;
}

export type Http2Message = Http2Request | Http2Response;

export function field(headers: HeaderField[], name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}
