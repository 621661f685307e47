/**
 * PostgreSQL's message type bytes (protocol 3.0, "Message Formats"), named
 * once: the parser, detection and the masker read messages with these.
 */
import { LOST_BYTES_ERROR } from '../types';

/** What a client sends (after the start-up message, which has no type byte). */
export const Frontend = {
  Bind: 'B',
  Close: 'C',
  Describe: 'D',
  Execute: 'E',
  FunctionCall: 'F',
  Flush: 'H',
  Parse: 'P',
  Query: 'Q',
  Sync: 'S',
  Terminate: 'X',
  CopyDone: 'c',
  CopyData: 'd',
  CopyFail: 'f',
  /** PasswordMessage, and the SASL and GSS responses: one type byte for all. */
  Password: 'p',
} as const;

/** What a server sends. */
export const Backend = {
  ParseComplete: '1',
  BindComplete: '2',
  CloseComplete: '3',
  NotificationResponse: 'A',
  CommandComplete: 'C',
  DataRow: 'D',
  ErrorResponse: 'E',
  CopyInResponse: 'G',
  CopyOutResponse: 'H',
  EmptyQueryResponse: 'I',
  BackendKeyData: 'K',
  NoticeResponse: 'N',
  Authentication: 'R',
  ParameterStatus: 'S',
  RowDescription: 'T',
  FunctionCallResponse: 'V',
  CopyBothResponse: 'W',
  ReadyForQuery: 'Z',
  CopyDone: 'c',
  CopyData: 'd',
  NoData: 'n',
  PortalSuspended: 's',
  NegotiateProtocolVersion: 'v',
  ParameterDescription: 't',
} as const;

export const FRONTEND_TYPES: ReadonlySet<string> = new Set(Object.values(Frontend));
export const BACKEND_TYPES: ReadonlySet<string> = new Set(Object.values(Backend));

/** Close and Describe name a prepared statement ('S') or a portal ('P'). */
export const Target = { Statement: 'S', Portal: 'P' } as const;

/** ErrorResponse and NoticeResponse field codes. */
export const ErrorField = { Severity: 'S', SeverityNonLocalized: 'V', Code: 'C', Message: 'M' } as const;

/** A start-up-time request code's answer: 'S' (yes), 'N' (no), or 'G' (GSS encryption, yes). */
/** Why PostgreSQL bytes could not be read (a message's parseErrorCode). */
export const PG_ERROR = {
  /** A byte where a message type should be that no frontend (or backend) message has. */
  UNKNOWN_MESSAGE_TYPE: 'PG_UNKNOWN_MESSAGE_TYPE',
  /** A message length shorter than its own field or longer than a message can be. */
  INVALID_LENGTH: 'PG_INVALID_LENGTH',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

export const SslAnswer = { Yes: 0x53, No: 0x4e, GssYes: 0x47 } as const;
