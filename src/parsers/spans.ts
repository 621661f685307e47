/**
 * What a protocol module says about a span, and what every sink reads of one:
 * its kind, attribute values, status and RED metric family; and Loupe's own
 * span attributes (`loupe.*`) beside OpenTelemetry's semantic conventions.
 */

/** OTel's span kinds: a request served or made, a message sent (producer) or received and handled (consumer), a phase. */
export type SpanKind = 'server' | 'client' | 'producer' | 'consumer' | 'internal';
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;
export interface SpanStatus {
  code: 'unset' | 'ok' | 'error';
  message?: string;
}

/**
 * Which RED histogram a span counts in, by OpenTelemetry's semantic
 * conventions: HTTP requests, RPC calls (gRPC), database operations, or
 * messages sent and received. A protocol module names its spans' family.
 */
export type MetricFamily = 'http' | 'rpc' | 'db' | 'messaging';

/** The part of a span a protocol module fills in: a request's name and attributes, a response's status. */
export interface SpanDraft {
  readonly kind: SpanKind;
  name: string;
  attributes: Attributes;
  status: SpanStatus;
}

/**
 * Loupe's own span attributes (`loupe.*`), beside OpenTelemetry's semantic
 * conventions: each named once, here, with what it says; docs/formats.md
 * documents each (test/span-attributes.test.ts checks it).
 */
export const LOUPE_ATTR = {
  /** Where the trace context came from: traceparent, connection-pair, goroutine, thread, event-loop, new, … */
  CONTEXT: 'loupe.context',
  /** The client's record reached the agent after the server's: the server span was claimed later. */
  PAIRED_LATE: 'loupe.paired_late',
  /** Go: the goroutine that served the request or made the call. */
  GOROUTINE: 'loupe.goroutine',
  /** Why the span has no response. */
  INCOMPLETE: 'loupe.incomplete',
  /** Records the kernel side lost while the span was in flight. */
  RECORDS_LOST: 'loupe.records_lost',
  /** Payload bytes of the exchange never copied (the parsers framed over them). */
  LOST_BYTES: 'loupe.lost_bytes',
  /** gRPC: unary, client_streaming, server_streaming, bidi_streaming. */
  RPC_STREAMING: 'loupe.rpc.streaming',
  /** gRPC: messages each way. */
  RPC_REQUEST_MESSAGES: 'loupe.rpc.request_messages',
  RPC_RESPONSE_MESSAGES: 'loupe.rpc.response_messages',
  /** What the parser could not read, with the byte offset, and its code. */
  PARSE_ERROR: 'loupe.parse_error',
  PARSE_ERROR_CODE: 'loupe.parse_error_code',
  /** The capture joined the connection after it opened. */
  MID_STREAM: 'loupe.mid_stream',
  /** A server request whose path a routes rule ignores: no route, no metric. */
  ROUTE_IGNORED: 'loupe.route_ignored',
  /** An INTERNAL child of a server span: queue (accepted, not yet handled) or processing. */
  PHASE: 'loupe.phase',
  /** HTTP/2 header names the HPACK decoder could not read (a table entry from before the capture). */
  UNKNOWN_HEADERS: 'loupe.unknown_headers',
  /** A database request's wire command (Query, Execute, COM_QUERY, GET …). */
  DB_COMMAND: 'loupe.db.command',
  /** What the data could not tell, said plainly. */
  NOTE: 'loupe.note',
  /** HTTP/2: the stream that carried the exchange. */
  HTTP2_STREAM_ID: 'loupe.http2.stream_id',
  /** HTTP/2: the RST_STREAM error code that ended the stream. */
  HTTP2_RESET: 'loupe.http2.reset',
} as const;
