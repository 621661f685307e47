/**
 * Which parser reads which protocol (the list is protocols.ts): one factory
 * per protocol the list marks parsed, which the compiler checks.
 */
import { Http1Parser } from './http1/parser';
import { Http2Parser } from './http2/parser';
import { MysqlParser } from './mysql/parser';
import { PostgresParser } from './postgres/parser';
import type { ParsedProtocol } from './protocols';
import { RedisParser } from './redis/parser';
import type { ProtocolParser } from './types';


export interface ParserOptions {
  /** HTTP/2: keep the first gRPC message payloads (for `loupe parse --proto`). */
  keepGrpcPayloads?: boolean;
  /** HTTP/2 reached by an HTTP/1.1 Upgrade: h2c (stream 1 is the upgraded request). */
  upgraded?: boolean;
}

const FACTORIES: Record<ParsedProtocol, (options: ParserOptions) => ProtocolParser> = {
  http1: () => new Http1Parser(),
  http2: (options) => new Http2Parser({ keepGrpcPayloads: options.keepGrpcPayloads ?? false, upgraded: options.upgraded ?? false }),
  postgres: () => new PostgresParser(),
  mysql: () => new MysqlParser(),
  redis: () => new RedisParser(),
};

export function createParser(protocol: string, options: ParserOptions = {}): ProtocolParser | undefined {
  return Object.hasOwn(FACTORIES, protocol) ? FACTORIES[protocol as ParsedProtocol](options) : undefined;
}

export function hasParser(protocol: string): boolean {
  return Object.hasOwn(FACTORIES, protocol);
}
