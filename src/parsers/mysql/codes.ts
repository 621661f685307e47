/**
 * MySQL's wire codes (the client/server protocol: command bytes, packet
 * headers, capability flags), named once: the parser and the masker read
 * packets with these.
 */
import { LOST_BYTES_ERROR } from '../types';

/** The first byte of a command packet. */
export const Command = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  DEBUG: 0x0d,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  RESET_CONNECTION: 0x1f,
} as const;

/** COM_QUERY, COM_PING …: a command's name by its byte. */
export const COMMAND_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(Command).map(([name, code]) => [code, `COM_${name}`]));

/** Why MySQL bytes could not be read (a message's parseErrorCode). */
export const MYSQL_ERROR = {
  /** A compressed packet stating more bytes than a packet holds. */
  COMPRESSED_TOO_LONG: 'MYSQL_COMPRESSED_TOO_LONG',
  /** A compressed packet that did not inflate to the length it states (masked in the capture, or corrupt). */
  COMPRESSED_UNREADABLE: 'MYSQL_COMPRESSED_UNREADABLE',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;

/** The first byte of a server packet that is not a row. */
export const Packet = {
  OK: 0x00,
  /** LOCAL INFILE: the server asks for a file's contents. */
  LOCAL_INFILE: 0xfb,
  /** EOF, and AuthSwitchRequest during the handshake. */
  EOF: 0xfe,
  ERR: 0xff,
  /** The protocol version byte that starts a server greeting (HandshakeV10). */
  GREETING_V10: 0x0a,
} as const;

/**
 * The capability flags of a server's greeting (its payload, from the protocol
 * version byte): after the version string, the thread id, 8 bytes of scramble
 * and a filler, the lower 16 bits; 5 bytes on (charset, status), the upper 16.
 */
export function greetingCapabilities(p: Buffer): number {
  const nul = p.indexOf(0, 1);
  const capsAt = (nul < 0 ? p.length : nul + 1) + 4 + 8 + 1;
  let caps = 0;
  if (capsAt + 2 <= p.length) caps = p.readUInt16LE(capsAt);
  if (capsAt + 7 <= p.length) caps |= p.readUInt16LE(capsAt + 5) << 16;
  return caps >>> 0;
}
