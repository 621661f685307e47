/**
 * What every protocol parser shares: bytes in, messages out, no I/O.
 * A parser sees the two byte streams of one connection, named by who sent them.
 */

/** Who sent the bytes: the side that opened the connection, or the side that accepted it. */
export type Side = 'client' | 'server';

/** A piece of one side's byte stream, with when and by which thread it moved. */
export interface Chunk {
  data: Uint8Array;
  ts: bigint;
  tid: number;
}

/** The parse-error code of bytes the capture lost inside a message, in every protocol (kernel copy bound, ring overflow, pcap hole). */
export const LOST_BYTES_ERROR = 'LOUPE_LOST_BYTES';

export interface MessageBase {
  protocol: string;
  kind: 'request' | 'response';
  /** Time of the chunk that carried the first byte, and of the one that carried the last. */
  tsStart: bigint;
  tsEnd: bigint;
  /** Thread that moved the first byte. */
  tid: number;
  /** Byte offset of the message's first byte in its side's stream. */
  offset: number;
  /** Set when the message could not be parsed whole: what went wrong, with the offset. */
  error?: string;
  /**
   * With `error`: its kind, a stable code, named in the protocol's codes
   * (HTTP/1: llhttp's names, `HPE_INVALID_METHOD` and the like; `PG_*`,
   * `MYSQL_*`, `RESP_*`, `H2_*`; LOST_BYTES_ERROR in all).
   */
  parseErrorCode?: string;
  /**
   * With `error`: the message was read whole all the same — a deviation a
   * strict parser refuses (RFC 9112) but a lenient one reads, framed as the
   * RFC says (Transfer-Encoding over Content-Length, say). Its status stands.
   */
  lenient?: boolean;
  /** Bytes of this message that were never seen (truncated copies, lost records). */
  lostBytes?: number;
}

export interface ProtocolParser<M extends MessageBase = MessageBase> {
  readonly protocol: string;
  feed(side: Side, chunk: Chunk): void;
  /** `bytes` of `side`'s stream were lost at this point (a copy cut short, a dropped record). */
  gap(side: Side, bytes: number, ts: bigint): void;
  /** The connection closed: complete what a close delimits, report what is left. */
  end(ts: bigint): void;
  /** Where messages go; set once by the owner. */
  onMessage(message: M): void;
  /**
   * Set by the owner: called by a parser whose connection switched protocols
   * (HTTP/1.1's 101 Upgrade), with the protocol it switched to when Loupe
   * reads it (undefined: a tunnel, or one it does not), and the new
   * protocol's bytes in that chunk. A parser that never switches never calls it.
   */
  onSwitch?: (protocol: string | undefined, side: Side, leftover: Buffer, chunk: Chunk) => void;
}
