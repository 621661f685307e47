/**
 * HTTP/2's wire codes (RFC 9113 §6, §7, §11.2), named once: the parser, the
 * masker (src/security/redact-http2.ts) and detection (src/parsers/detect.ts)
 * read frames with these.
 */

/** The 9-byte frame header: length (3), type, flags, stream id (R bit, 31 bits). */
export const FRAME_HEADER_BYTES = 9;
/** The largest frame a peer may send before SETTINGS_MAX_FRAME_SIZE raises it (what a resync believes). */
export const DEFAULT_MAX_FRAME = 1 << 14;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
/** Types past this are extensions this reader does not know (and a resync does not believe). */
export const LAST_KNOWN_FRAME_TYPE = FrameType.CONTINUATION;

export const FrameFlag = {
  /** DATA, HEADERS. */
  END_STREAM: 0x1,
  /** SETTINGS, PING. */
  ACK: 0x1,
  /** HEADERS, PUSH_PROMISE, CONTINUATION. */
  END_HEADERS: 0x4,
  /** DATA, HEADERS, PUSH_PROMISE. */
  PADDED: 0x8,
  /** HEADERS: a 5-byte priority block before the header block. */
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
} as const;

/** One SETTINGS parameter: identifier (2), value (4). */
export const SETTING_BYTES = 6;

/** Error codes by value (RST_STREAM, GOAWAY). */
export const ERROR_CODE_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
] as const;

/** Frames that live on stream 0 only (WINDOW_UPDATE may be on either). */
export function isConnectionFrame(type: number): boolean {
  return type === FrameType.SETTINGS || type === FrameType.PING || type === FrameType.GOAWAY;
}

/** Frames that carry a header block (or its continuation). */
export function isHeaderBlockFrame(type: number): boolean {
  return type === FrameType.HEADERS || type === FrameType.PUSH_PROMISE || type === FrameType.CONTINUATION;
}
