import { LOST_BYTES_ERROR, type MessageBase } from '../types';

/**
 * Why an HTTP/1 message was refused or flagged: llhttp's `HPE_*` names where
 * llhttp has the same failure (checked against Node's binding), so a user can
 * look them up; Loupe's own for what an observer meets and a server does not.
 */
export const HTTP1_ERROR = {
  INVALID_METHOD: 'HPE_INVALID_METHOD',
  INVALID_URL: 'HPE_INVALID_URL',
  INVALID_VERSION: 'HPE_INVALID_VERSION',
  INVALID_REQUEST_LINE: 'HPE_INVALID_REQUEST_LINE',
  /** A response line that does not start with `HTTP/`. */
  INVALID_CONSTANT: 'HPE_INVALID_CONSTANT',
  INVALID_STATUS: 'HPE_INVALID_STATUS',
  INVALID_HEADER_TOKEN: 'HPE_INVALID_HEADER_TOKEN',
  /** A bare CR in a field value. */
  LF_EXPECTED: 'HPE_LF_EXPECTED',
  /** The header section passed its byte or field-count bound. */
  HEADER_OVERFLOW: 'HPE_HEADER_OVERFLOW',
  INVALID_CONTENT_LENGTH: 'HPE_INVALID_CONTENT_LENGTH',
  /** A second Content-Length, or one beside Transfer-Encoding. */
  UNEXPECTED_CONTENT_LENGTH: 'HPE_UNEXPECTED_CONTENT_LENGTH',
  INVALID_TRANSFER_ENCODING: 'HPE_INVALID_TRANSFER_ENCODING',
  INVALID_CHUNK_SIZE: 'HPE_INVALID_CHUNK_SIZE',
  /** Chunk data not followed by CRLF (llhttp's name for it). */
  STRICT: 'HPE_STRICT',
  /** The connection closed inside a message. */
  INVALID_EOF_STATE: 'HPE_INVALID_EOF_STATE',
  /** The capture lost bytes inside the message (kernel copy bound, ring overflow, pcap hole): Loupe's own. */
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;
export type Http1ErrorCode = (typeof HTTP1_ERROR)[keyof typeof HTTP1_ERROR];

/** Header fields in wire order, names as sent. */
export type HeaderList = Array<[name: string, value: string]>;

export interface Http1Request extends MessageBase {
  protocol: 'http1';
  kind: 'request';
  method: string;
  target: string;
  version: string;
  headers: HeaderList;
  bodyBytes: number;
  /** A chunked body: its chunks (the last, empty one not counted), and the trailer fields after them, apart from the headers. */
  chunks?: number;
  trailers?: HeaderList;
}

export interface Http1Response extends MessageBase {
  protocol: 'http1';
  kind: 'response';
  version: string;
  status: number;
  reason: string;
  headers: HeaderList;
  bodyBytes: number;
  /** A chunked body: its chunks (the last, empty one not counted), and the trailer fields after them, apart from the headers. */
  chunks?: number;
  trailers?: HeaderList;
}

export type Http1Message = Http1Request | Http1Response;

export function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}
