/**
 * Which parser reads which protocol. A detected protocol with no parser yet is
 * still named on the connection (so `loupe parse` can say what it saw).
 */
import { Http1Parser } from './http1/parser';
import { Http2Parser } from './http2/parser';
import { MysqlParser } from './mysql/parser';
import { PostgresParser } from './postgres/parser';
import { RedisParser } from './redis/parser';
import type { ProtocolParser } from './types';

export interface ParserOptions {
  /** HTTP/2: keep the first gRPC message payloads (for `loupe parse --proto`). */
  keepGrpcPayloads?: boolean;
  /** HTTP/2 reached by an HTTP/1.1 Upgrade: h2c (stream 1 is the upgraded request). */
  upgraded?: boolean;
}

const FACTORIES: Record<string, (options: ParserOptions) => ProtocolParser> = {
  http1: () => new Http1Parser(),
  http2: (options) => new Http2Parser({ keepGrpcPayloads: options.keepGrpcPayloads ?? false, upgraded: options.upgraded ?? false }),
  postgres: () => new PostgresParser(),
  mysql: () => new MysqlParser(),
  redis: () => new RedisParser(),
};

export function createParser(protocol: string, options: ParserOptions = {}): ProtocolParser | undefined {
  return FACTORIES[protocol]?.(options);
}

export function hasParser(protocol: string): boolean {
  return protocol in FACTORIES;
}
