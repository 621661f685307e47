/** Why RESP bytes could not be read (a message's parseErrorCode), named once. */
import { LOST_BYTES_ERROR } from '../types';

export const RESP_ERROR = {
  /** A byte where a value should start that starts no RESP type. */
  UNKNOWN_TYPE: 'RESP_UNKNOWN_TYPE',
  /** A line ended by LF alone, or a bulk string not followed by CRLF. */
  CRLF_EXPECTED: 'RESP_CRLF_EXPECTED',
  /** A line (or an inline command) longer than a RESP line can be. */
  LINE_TOO_LONG: 'RESP_LINE_TOO_LONG',
  /** Aggregates nested deeper than the parser follows. */
  TOO_DEEP: 'RESP_TOO_DEEP',
  /** A bulk or aggregate length that is not a number, or past the bound. */
  INVALID_LENGTH: 'RESP_INVALID_LENGTH',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;
