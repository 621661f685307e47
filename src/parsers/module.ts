/**
 * A protocol module: everything Loupe knows of one protocol, behind one
 * interface, so the correlator, exporters, views and masking hold no
 * protocol's name. A module is one folder of src/parsers/ and one line in
 * protocols.ts (docs/adding-a-protocol.md).
 */
import type { Attributes, MetricFamily, SpanDraft, SpanKind } from './spans';
import type { MessageBase, ProtocolParser, Side } from './types';

/** A verdict on a direction's first bytes: this protocol (who sent them, and whether they start the connection), NEED_MORE, or not it. */
export type ModuleVerdict = { sender: Side | undefined; connectionStart: boolean } | 'need-more' | undefined;

export interface ParserOptions {
  /** HTTP/2: keep the first gRPC message payloads (for `loupe parse --proto`). */
  keepGrpcPayloads?: boolean;
  /** HTTP/2 reached by an HTTP/1.1 Upgrade: h2c (stream 1 is the upgraded request). */
  upgraded?: boolean;
  /**
   * What a protocol's parsers share across the connections of one run, under a key of the module's own:
   * Kafka's topic names by id, which a client learns from Metadata on one connection and uses on others
   * (franz-go asks for metadata on a connection of its own). Filled in event order, so a replay fills it alike.
   */
  shared?: Map<string, unknown>;
}

export interface RedactionOptions {
  /** Replace every URL query value with REDACTED (default true). */
  queryValues: boolean;
}

/** An address as a connection knows it. */
export interface Address {
  addr: string;
  port: number;
}

/** What a module is told of the connection a message came on. */
export interface ConnectionView {
  /** Which end the watched process is: it accepted the connection (server) or opened it. */
  role: 'client' | 'server';
  local?: Address;
  remote?: Address;
  tls: boolean;
}

/** What a request makes: a span's start, and what the correlator needs to place it in a trace. */
export interface SpanStart {
  name: string;
  /** Default: the connection's role (a request served, a request made). */
  kind?: Exclude<SpanKind, 'internal'>;
  attributes: Attributes;
  family: MetricFamily;
  /**
   * The request as both ends of a connection see it, masking applied alike:
   * a server request pairs with the client request whose fingerprint it has
   * (see PairingRules.acrossConnection).
   */
  fingerprint: string;
  /** W3C trace context the request carries (a header, a query attribute). */
  traceparent?: string;
  /**
   * A message span's messages as both ends of the broker see them (a Kafka batch by partition and CRC,
   * a payload by destination and digest): a consumer links to the producer spans that sent the same ones.
   */
  messages?: string[];
  tracestate?: string;
  /** A server request's path, for http.route; the name the span takes with a route. */
  route?: { path: string; name: (route: string) => string };
  /**
   * What Go's client-call probes report of this request, to find the call that made it: asked only
   * when the fd does not name the call (a request of every program pays nothing for it).
   */
  goCall?: () => { method: string; path: string; host?: string };
  /** Applied after the correlator's own attributes (context, parse errors): attributes that come last in the span. */
  decorate?: (span: SpanDraft) => void;
}

/** What one parsed message is to the correlator. */
export type MessageRole =
  /** A request that makes a span; `key` finds its answer when answers go by key (HTTP/2 stream id). */
  | { is: 'request'; span: SpanStart; key?: number }
  /** A message that makes a span but gets no answer (a `noreply` store, a quiet binary command, a fire-and-forget publish): its span ends with it. */
  | { is: 'one-way'; span: SpanStart }
  /** A request that makes no span but is answered (start-up, TLS request, prepare): it keeps its place in the answer order. */
  | { is: 'placeholder' }
  /** The answer that ends a request: the oldest unanswered, or the one with this key. */
  | { is: 'response'; key?: number }
  /** An answer after which the request goes on under `key` (HTTP/1.1 101 to h2c: its real answer comes on stream 1). */
  | { is: 'continues'; key: number }
  /** Nothing to pair: an interim answer, a push, a request that gets no answer, bytes too broken to be a request. */
  | { is: 'none' };

/** How requests, answers and the two ends of a connection find each other. */
export interface PairingRules {
  /** in-order: an answer answers the oldest unanswered request (pipelining included); by-key: the request with its key. */
  answers: 'in-order' | 'by-key';
  /**
   * How a server request finds its client request on the same connection
   * seen from the other end: by the same bytes (also across NAT on this
   * host), or by its place in order (a database statement's bytes are
   * masked differently by the two ends' vantage: its place is what they share).
   */
  acrossConnection: 'same-bytes' | 'same-place';
  /** A server request is the context of calls its thread or goroutine makes meanwhile (HTTP, RPC; not a database server's statements). */
  servesCalls: boolean;
  /** Go's client-call probes describe this protocol's requests. */
  goClientCalls: boolean;
}

/** Masks one client→server byte stream in place, byte for byte, however it is cut into records. */
export interface PayloadMasker {
  /** Bytes masked. */
  mask(payload: Uint8Array): number;
  /** What was masked depended on where records were cut. */
  readonly decidedPerRecord?: boolean;
}

/**
 * What the two directions of a socket's masking share for a module: what its
 * server's bytes said that its client's bytes depend on (a MySQL greeting's
 * capabilities decide whether statements carry query attributes).
 */
export interface MaskingNotes {
  fromServer?: unknown;
}

export interface ProtocolModule<M extends MessageBase = MessageBase, N extends string = string> {
  readonly name: N;
  /** The `protocol` its messages carry when it is not `name` (HTTP/2's gRPC streams say `grpc`). */
  readonly messageProtocols?: readonly string[];
  /** http: requests and responses with HTTP semantics; database: statements, db.* attributes; messaging: messages published and delivered; tls: named only. */
  readonly family: 'http' | 'database' | 'messaging' | 'tls';
  /** OpenTelemetry's db.system.name, for a database. */
  readonly dbSystem?: string;
  /**
   * Detection on a direction's first bytes (a connection start: strong) or
   * from the middle of a connection (whole messages back to back, ending
   * exactly at the end of the bytes). Modules are asked in the list's
   * order: stronger evidence first.
   */
  readonly detect: {
    verdict(bytes: Buffer): ModuleVerdict;
    /** Are these bytes whole messages of the protocol, once the other direction named it (framing alone, without the evidence a first guess needs)? Default: verdict. */
    frames?(bytes: Buffer): boolean;
  };
  /** Its parse-error taxonomy: every message's `parseErrorCode` is one of these (a message with `error` always has one). */
  readonly parseErrors?: Readonly<Record<string, string>>;
  /** The incremental parser (feed/gap/end); a module Loupe only names (TLS) has none. */
  readonly parser?: (options: ParserOptions) => ProtocolParser<M>;
  readonly pairing?: PairingRules;
  /** What a message is to the correlator, and the span a request starts. */
  role?(message: M, connection: ConnectionView, redaction: RedactionOptions): MessageRole;
  /** What an answer tells of the request's span: status, sizes, errors. */
  respond?(span: SpanDraft, answer: M): void;
  /** Its fields in `loupe parse` records (docs/formats.md), masked unless `redact` is false. */
  record?(message: M, redact: boolean): Record<string, unknown>;
  /** The MESSAGE column of `loupe parse --format table`, from a record. */
  summary?(record: Record<string, unknown>): string;
  /**
   * Masking of a client's bytes before a capture or the pipeline sees them
   * (credentials, literals). `unclaimedStart`: first bytes detection does not
   * claim that still mean a client of this protocol sending a secret.
   * `server`: reads the server's bytes (masks none) for what the client's
   * masker must know, into the notes both are given.
   */
  readonly masking?: {
    client(connectionStart: boolean, notes: MaskingNotes): PayloadMasker;
    server?(notes: MaskingNotes): PayloadMasker;
    unclaimedStart?: RegExp;
  };
}
