/** Redis from a RESP command array, a known inline command, or a whole simple reply. */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';

const RESP_COMMAND = /^\*(\d{1,6})\r\n\$(\d{1,9})\r\n([A-Za-z]+)\r\n/;
/** An inline command (redis-cli's and telnet users' `PING\r\n`): a known command word, its arguments, one line. */
const INLINE_COMMAND = /^([A-Za-z]{3,16})( [^\r\n]{0,1000})?\r?\n/;
/** Commands an inline line must start with to be taken for Redis: common ones, so text in other protocols is not. */
const REDIS_INLINE_COMMANDS = new Set(
  (
    'PING ECHO AUTH SELECT QUIT INFO DBSIZE FLUSHDB FLUSHALL KEYS SCAN TYPE TTL PTTL EXPIRE PERSIST DEL EXISTS RENAME ' +
    'GET SET SETEX SETNX GETSET MGET MSET INCR INCRBY DECR DECRBY APPEND STRLEN GETRANGE ' +
    'HGET HSET HDEL HGETALL HKEYS HVALS HLEN HEXISTS HINCRBY HMGET HMSET ' +
    'LPUSH RPUSH LPOP RPOP LLEN LRANGE LINDEX LSET LREM BLPOP BRPOP ' +
    'SADD SREM SMEMBERS SISMEMBER SCARD SPOP ZADD ZREM ZRANGE ZSCORE ZCARD ZINCRBY ZRANK ' +
    'SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUBLISH MULTI EXEC DISCARD WATCH UNWATCH CLIENT CONFIG MONITOR COMMAND TIME EVAL EVALSHA XADD XREAD XRANGE XLEN'
  ).split(' '),
);

export function detectRedis(b: Buffer): ModuleVerdict {
  const head = b.toString('latin1', 0, Math.min(b.length, 256));
  if (RESP_COMMAND.test(head)) {
    const m = RESP_COMMAND.exec(head)!;
    return Number(m[2]) === m[3]!.length ? seenFrom('client', false) : undefined;
  }
  if (/^\*(\d{0,6}(\r(\n(\$(\d{0,9}(\r(\n[A-Za-z]*\r?)?)?)?)?)?)?)?$/.test(head)) return NEED_MORE;
  const inline = INLINE_COMMAND.exec(head);
  // Not an HTTP/0.9 request line ("GET /"): a Redis key does not start with a slash as a path does.
  // Nor a malformed HTTP/1 request line (a word, spaces, a version).
  const httpish = (args: string | undefined) => args !== undefined && (args.startsWith(' /') || /\sHTTP\/\d\.\d\r?$/.test(args));
  if (inline && REDIS_INLINE_COMMANDS.has(inline[1]!.toUpperCase()) && !httpish(inline[2])) return seenFrom('client', false);
  // The start of one, its line not ended yet.
  const partial = /^([A-Za-z]{1,16})( [^\r\n]{0,1000})?\r?$/.exec(head);
  if (partial && !httpish(partial[2])) {
    const word = partial[1]!.toUpperCase();
    if (partial[2] !== undefined || head.endsWith('\r') ? REDIS_INLINE_COMMANDS.has(word) : [...REDIS_INLINE_COMMANDS].some((c) => c.startsWith(word))) return NEED_MORE;
  }
  // Server replies: whole simple replies only (+OK, -ERR ..., :1), so bare text does not match.
  if (/^(\+[^\r\n]{0,100}|-[A-Z]+ [^\r\n]{0,200}|:-?\d{1,19})\r\n$/.test(head)) return seenFrom('server', false);
  return undefined;
}
