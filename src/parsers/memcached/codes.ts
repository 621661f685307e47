/**
 * memcached's wire vocabulary, named once: the text protocol's commands and
 * replies (classic and meta, protocol.txt) and the binary protocol's header,
 * opcodes and statuses.
 */
import { LOST_BYTES_ERROR } from '../types';

/** Text commands followed by a data block of the length their last number (before `noreply`) states. */
export const STORAGE_COMMANDS: ReadonlySet<string> = new Set(['set', 'add', 'replace', 'append', 'prepend', 'cas']);
/** Text commands answered by VALUE blocks then END. */
export const RETRIEVAL_COMMANDS: ReadonlySet<string> = new Set(['get', 'gets', 'gat', 'gats']);
/** Other classic commands, each answered by one line (stats: STAT lines then END). */
export const OTHER_COMMANDS: ReadonlySet<string> = new Set(['delete', 'incr', 'decr', 'touch', 'flush_all', 'version', 'verbosity', 'stats', 'quit', 'shutdown', 'cache_memlimit']);
/** Meta commands (mg, ms, md, ma, mn, me): ms carries a data block of its second token's length. */
export const META_COMMANDS: ReadonlySet<string> = new Set(['mg', 'ms', 'md', 'ma', 'mn', 'me']);

/** Reply lines that end a retrieval or stats reply. */
export const END = 'END';
/** Reply words that are failures of the command (a span error), not outcomes like NOT_FOUND or a miss. */
export const ERROR_REPLIES: ReadonlySet<string> = new Set(['ERROR', 'CLIENT_ERROR', 'SERVER_ERROR']);

export const Magic = { Request: 0x80, Response: 0x81 } as const;
export const BINARY_HEADER = 24;

/** Binary opcodes, by name as text commands call them (the quiet ones end in q). */
export const Opcode: Readonly<Record<string, number>> = {
  get: 0x00,
  set: 0x01,
  add: 0x02,
  replace: 0x03,
  delete: 0x04,
  incr: 0x05,
  decr: 0x06,
  quit: 0x07,
  flush_all: 0x08,
  getq: 0x09,
  noop: 0x0a,
  version: 0x0b,
  getk: 0x0c,
  getkq: 0x0d,
  append: 0x0e,
  prepend: 0x0f,
  stat: 0x10,
  setq: 0x11,
  addq: 0x12,
  replaceq: 0x13,
  deleteq: 0x14,
  incrq: 0x15,
  decrq: 0x16,
  quitq: 0x17,
  flushq: 0x18,
  appendq: 0x19,
  prependq: 0x1a,
  verbosity: 0x1b,
  touch: 0x1c,
  gat: 0x1d,
  gatq: 0x1e,
  sasl_list_mechs: 0x20,
  sasl_auth: 0x21,
  sasl_step: 0x22,
};
export const OPCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(Opcode).map(([name, code]) => [code, name]));
/** Quiet opcodes: the server answers only what the client cannot assume (a miss of getq, a failure of setq). */
export const QUIET_OPCODES: ReadonlySet<number> = new Set([0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e]);
/** Binary opcodes whose values carry a credential (SASL). */
export const SECRET_OPCODES: ReadonlySet<number> = new Set([0x21, 0x22]);
/** Binary retrievals (a found value counts as a hit). */
export const BINARY_RETRIEVALS: ReadonlySet<number> = new Set([0x00, 0x09, 0x0c, 0x0d, 0x1d, 0x1e]);

/** Binary response statuses. */
export const STATUS_NAMES: Readonly<Record<number, string>> = {
  0x00: 'NO_ERROR',
  0x01: 'KEY_NOT_FOUND',
  0x02: 'KEY_EXISTS',
  0x03: 'VALUE_TOO_LARGE',
  0x04: 'INVALID_ARGUMENTS',
  0x05: 'ITEM_NOT_STORED',
  0x06: 'NON_NUMERIC_VALUE',
  0x07: 'WRONG_VBUCKET',
  0x08: 'AUTH_ERROR',
  0x09: 'AUTH_CONTINUE',
  0x81: 'UNKNOWN_COMMAND',
  0x82: 'OUT_OF_MEMORY',
  0x83: 'NOT_SUPPORTED',
  0x84: 'INTERNAL_ERROR',
  0x85: 'BUSY',
  0x86: 'TEMPORARY_FAILURE',
};
/** Statuses that are outcomes, not failures: a miss, a compare-and-set that lost, an item not stored. */
export const OUTCOME_STATUSES: ReadonlySet<number> = new Set([0x00, 0x01, 0x02, 0x05, 0x09]);

/** Why memcached bytes could not be read (a message's parseErrorCode). */
export const MEMCACHED_ERROR = {
  /** A text line that is no command this parser knows, or a reply no request explains. */
  UNKNOWN_COMMAND: 'MEMCACHED_UNKNOWN_COMMAND',
  /** A line longer than memcached accepts (2048 bytes of command). */
  LINE_TOO_LONG: 'MEMCACHED_LINE_TOO_LONG',
  /** A data block length that is not a number, or one not followed by CRLF. */
  INVALID_DATA_BLOCK: 'MEMCACHED_INVALID_DATA_BLOCK',
  /** A binary header whose lengths contradict each other. */
  INVALID_HEADER: 'MEMCACHED_INVALID_HEADER',
  LOST_BYTES: LOST_BYTES_ERROR,
} as const;
