/** memcached (text, meta and binary protocols) as a protocol module: a cache its clients make CLIENT spans against, `db.system.name: memcached`. */
import { databaseModule, type DbRequest, type DbStatement } from '../db';
import { MEMCACHED_ERROR } from './codes';
import { detectMemcached } from './detect';
import { MemcachedMasker } from './masker';
import { MemcachedParser } from './parser';

/** The operation is the command; its first key is data (never a span's name); `query` is the command and its keys, never a value. */
function describeMemcached(req: DbRequest): DbStatement {
  const key = req.query?.split(' ')[1];
  return { operation: req.command, ...(key ? { key } : {}), ...(req.query ? { text: req.query } : {}) };
}

export const memcachedModule = databaseModule({
  name: 'memcached',
  dbSystem: 'memcached',
  detect: { verdict: detectMemcached },
  parser: () => new MemcachedParser(),
  parseErrors: MEMCACHED_ERROR,
  describe: describeMemcached,
  masking: { client: () => new MemcachedMasker() },
});
