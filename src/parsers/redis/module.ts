/** Redis (RESP2, RESP3, inline commands) as a protocol module. */
import { databaseModule, type DbRequest, type DbStatement } from '../db';
import { RESP_ERROR } from './codes';
import { detectRedis } from './detect';
import { RedisMasker } from './masker';
import { RedisParser } from './parser';

/** A command line holds no values already (the parser leaves them out): its key is data, never a collection name. */
function describeRedis(req: DbRequest): DbStatement {
  const key = req.query?.split(' ')[1];
  return { operation: req.command, ...(key && key !== '?' ? { key } : {}), ...(req.query ? { text: req.query } : {}) };
}

export const redisModule = databaseModule({
  name: 'redis',
  dbSystem: 'redis',
  detect: { verdict: detectRedis },
  parser: () => new RedisParser(),
  parseErrors: RESP_ERROR,
  describe: describeRedis,
  // An inline command that carries a password (redis-cli and telnet users type them), which detection does not claim.
  masking: { client: () => new RedisMasker(), unclaimedStart: /^(AUTH|HELLO) /i },
});
