/**
 * NATS client protocol messages (docs.nats.io, "Client Protocol"): what a
 * client sends (CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG) and what the
 * server sends (INFO, MSG, HMSG, PING, PONG, +OK, -ERR), one message per
 * operation, payloads counted and never kept.
 */
import { LOST_BYTES_ERROR, type MessageBase } from '../types';

export const NATS_ERROR = {
  /** A line that starts no operation of the protocol. */
  UNKNOWN_OPERATION: 'NATS_UNKNOWN_OPERATION',
  /** PUB, HPUB, MSG or HMSG with sizes that are not numbers, or headers larger than the message. */
  INVALID_SIZE: 'NATS_INVALID_SIZE',
  /** A payload not followed by CRLF. */
  CRLF_EXPECTED: 'NATS_CRLF_EXPECTED',
  /** A control line longer than NATS allows (4096 bytes by default). */
  LINE_TOO_LONG: 'NATS_LINE_TOO_LONG',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

export interface NatsMessage extends MessageBase {
  protocol: 'nats';
  /** Client operations are `request`s, server operations `response`s (NATS pairs neither: see the module). */
  kind: 'request' | 'response';
  /** The operation: CONNECT, PUB, HPUB, SUB, UNSUB, PING, PONG, INFO, MSG, HMSG, +OK, -ERR. */
  op: string;
  subject?: string;
  /** SUB, UNSUB, MSG, HMSG: the subscription id. */
  sid?: string;
  /** Where replies go (request-reply). */
  replyTo?: string;
  /** SUB: the queue group. */
  queue?: string;
  /** PUB, HPUB, MSG, HMSG: payload bytes (headers not counted), and a digest of its first bytes, for linking its deliveries to it (shared/messaging.ts; never output). */
  bytes?: number;
  payloadDigest?: number;
  /** HPUB, HMSG: the header fields, values of trace context kept, others counted. */
  headers?: number;
  traceparent?: string;
  tracestate?: string;
  /** -ERR: the server's message. */
  errorMessage?: string;
}
