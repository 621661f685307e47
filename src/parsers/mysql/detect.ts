/** MySQL from the server's greeting (or the ERR sent instead), or mid-connection from one whole command packet. */
import type { ModuleVerdict } from '../module';
import { MAX_DETECT_BYTES, NEED_MORE, seenFrom } from '../shared/detection';

/** MySQL commands a client sends first in a packet with sequence id 0. */
const MYSQL_COMMANDS = new Set([0x01, 0x02, 0x03, 0x0e, 0x16, 0x17, 0x18, 0x19, 0x1a]);

export function detectMysql(b: Buffer): ModuleVerdict {
  if (b.length < 5) return b.length < 4 || b[3] === 0 ? NEED_MORE : undefined;
  const length = b.readUIntLE(0, 3);
  const seq = b[3]!;
  // An ERR sent instead of the greeting (1040 too many connections, 1130 host not allowed): sequence 0, 0xff, a
  // server error number, printable text, and nothing after it.
  if (seq === 0 && b[4] === 0xff && length >= 4 && length < 512) {
    if (b.length < 4 + length) return b.length < MAX_DETECT_BYTES ? NEED_MORE : undefined;
    const code = b.readUInt16LE(5);
    const text = b.subarray(7, 4 + length);
    if (b.length === 4 + length && code >= 1000 && code < 5000 && text.every((c) => c >= 0x20 && c < 0x7f)) return seenFrom('server', true);
    return undefined;
  }
  // Server greeting: sequence 0, protocol version 10, a NUL-terminated version string.
  if (seq === 0 && b[4] === 10 && length >= 20 && length < 1024) {
    if (b.length < 4 + Math.min(length, 64)) return NEED_MORE;
    const nul = b.indexOf(0, 5);
    const version = nul > 5 ? b.toString('latin1', 5, nul) : '';
    if (/^\d+\.\d+\.\d+/.test(version)) return seenFrom('server', true);
    return undefined;
  }
  // Mid-connection: a command packet (sequence 0) that is exactly the bytes seen.
  if (seq === 0 && MYSQL_COMMANDS.has(b[4]!) && length >= 1 && length < 1 << 24) {
    if (b.length < 4 + length) return b.length < MAX_DETECT_BYTES ? NEED_MORE : undefined;
    if (b.length !== 4 + length) return undefined;
    if (b[4] === 0x03 || b[4] === 0x16) {
      // COM_QUERY / COM_STMT_PREPARE carry SQL text: demand a keyword, or this matches too much.
      const sql = b.toString('latin1', 5, Math.min(b.length, 64)).trimStart().toUpperCase();
      if (
        !/^(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|SET|SHOW|BEGIN|COMMIT|ROLLBACK|START|USE|CALL|WITH|EXPLAIN|DESCRIBE|TRUNCATE|LOCK|UNLOCK|GRANT|PREPARE|EXECUTE)\b/.test(
          sql,
        )
      )
        return undefined;
    }
    return seenFrom('client', false);
  }
  return undefined;
}
