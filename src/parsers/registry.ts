/**
 * Which parser reads which protocol. A detected protocol with no parser yet is
 * still named on the connection (so `loupe parse` can say what it saw).
 */
import { Http1Parser } from './http1/parser';
import { MysqlParser } from './mysql/parser';
import { PostgresParser } from './postgres/parser';
import { RedisParser } from './redis/parser';
import type { ProtocolParser } from './types';

const FACTORIES: Record<string, () => ProtocolParser> = {
  http1: () => new Http1Parser(),
  postgres: () => new PostgresParser(),
  mysql: () => new MysqlParser(),
  redis: () => new RedisParser(),
};

export function createParser(protocol: string): ProtocolParser | undefined {
  return FACTORIES[protocol]?.();
}

export function hasParser(protocol: string): boolean {
  return protocol in FACTORIES;
}
