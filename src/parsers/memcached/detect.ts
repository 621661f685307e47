/**
 * memcached from its text commands (lowercase, as every client sends them)
 * and replies, or from binary packets back to back. Lowercase command lines
 * are memcached's before Redis's: `get k` is both a memcached retrieval and a
 * Redis inline command, and memcached clients are the ones that send it so.
 */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';
import { BINARY_HEADER, Magic, OPCODE_NAMES } from './codes';
import { plausibleHeader } from './parser';

const KEY = '[\\x21-\\x7e]{1,250}';
const COMMAND_LINES = [
  new RegExp(`^(?:set|add|replace|append|prepend) ${KEY} \\d{1,10} -?\\d{1,10} (\\d{1,9})(?: noreply)?$`),
  new RegExp(`^cas ${KEY} \\d{1,10} -?\\d{1,10} (\\d{1,9}) \\d{1,20}(?: noreply)?$`),
  new RegExp(`^ms ${KEY} (\\d{1,9})(?: [A-Za-z][\\x21-\\x7e]*)*$`),
  new RegExp(`^(?:get|gets) ${KEY}(?: ${KEY})*$`),
  new RegExp(`^(?:gat|gats) -?\\d{1,10} ${KEY}(?: ${KEY})*$`),
  new RegExp(`^delete ${KEY}(?: noreply)?$`),
  new RegExp(`^(?:incr|decr) ${KEY} \\d{1,20}(?: noreply)?$`),
  new RegExp(`^touch ${KEY} -?\\d{1,10}(?: noreply)?$`),
  new RegExp(`^(?:mg|md|ma|me) ${KEY}(?: [A-Za-z][\\x21-\\x7e]*)*$`),
  /^(?:mn|version|stats(?: [a-z_]+)?)$/,
];
const REPLY_LINES = /^(?:STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|TOUCHED|END|EN|NF|NS|EX|MN|HD(?: [A-Za-z][\x21-\x7e]*)*|VERSION [\x21-\x7e]+)$/;
const VALUE_LINE = new RegExp(`^(?:VALUE ${KEY} \\d{1,10} (\\d{1,9})(?: \\d{1,20})?|VA (\\d{1,9})(?: [A-Za-z][\\x21-\\x7e]*)*)$`);
const WORDS = [
  'set',
  'add',
  'replace',
  'append',
  'prepend',
  'cas',
  'get',
  'gets',
  'gat',
  'gats',
  'delete',
  'incr',
  'decr',
  'touch',
  'mg',
  'ms',
  'md',
  'ma',
  'mn',
  'me',
  'version',
  'stats',
];

export function detectMemcached(b: Buffer): ModuleVerdict {
  if (b.length === 0) return NEED_MORE;
  if (b[0] === Magic.Request || b[0] === Magic.Response) {
    const side = b[0] === Magic.Request ? 'client' : 'server';
    if (b.length < BINARY_HEADER) return NEED_MORE;
    // Packets back to back, each header plausible (its magic, a known opcode, data type 0, lengths that fit): 24
    // bytes of such a header are strong evidence, so the last packet may run past the bytes (a multi-get of
    // hundreds of keys is one write larger than detection waits for).
    let at = 0;
    while (at + BINARY_HEADER <= b.length) {
      const head = b.subarray(at, at + BINARY_HEADER);
      if (!plausibleHeader(head, side) || OPCODE_NAMES[head[1]!] === undefined) return undefined;
      at += BINARY_HEADER + head.readUInt32BE(8);
    }
    return seenFrom(side, false);
  }
  const lf = b.indexOf(0x0a);
  if (lf < 0) {
    const head = b.toString('latin1', 0, Math.min(b.length, 300));
    const word = /^[a-z]*/.exec(head)![0];
    if (b.length < 300 && (word.length === head.length ? WORDS.some((w) => w.startsWith(word)) : WORDS.includes(word) && /^[a-z]+ [\x20-\x7e]*\r?$/.test(head))) return NEED_MORE;
    return undefined;
  }
  const line = b.toString('latin1', 0, lf > 0 && b[lf - 1] === 0x0d ? lf - 1 : lf);
  const command = COMMAND_LINES.map((re) => re.exec(line)).find(Boolean);
  if (command) {
    // A lowercase command word with key-shaped arguments is evidence enough (commands pipelined after it are not
    // judged). A storage command's data block must end in CRLF where the bytes reach that far; a value larger than
    // detection waits for (memcached's first read of a connection takes 2048 bytes) is not waited for.
    if (command[1] === undefined) return seenFrom('client', false);
    const end = lf + 1 + Number(command[1]) + 2;
    if (b.length < end) return seenFrom('client', false);
    return b[end - 2] === 0x0d && b[end - 1] === 0x0a ? seenFrom('client', false) : undefined;
  }
  if (REPLY_LINES.test(line)) return b.length === lf + 1 ? seenFrom('server', false) : undefined;
  const value = VALUE_LINE.exec(line);
  if (value) {
    const end = lf + 1 + Number(value[1] ?? value[2]) + 2;
    if (b.length < end) return seenFrom('server', false);
    return b[end - 2] === 0x0d && b[end - 1] === 0x0a ? seenFrom('server', false) : undefined;
  }
  return undefined;
}
