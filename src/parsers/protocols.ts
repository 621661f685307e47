/**
 * The protocols Loupe knows: one list of protocol modules (module.ts), one
 * line each. Detection asks them in this order (a connection start's strong
 * evidence first: HTTP/2's preface before HTTP/1's request line);
 * `--port N=PROTO`, parsing, spans, `loupe parse` records and masking reach
 * a protocol only through its module. test/protocol-registry.test.ts holds
 * the rest.
 */
import { amqpModule } from './amqp/module';
import { http1Module } from './http1/module';
import { http2Module } from './http2/module';
import type { ParserOptions, ProtocolModule } from './module';
import { kafkaModule } from './kafka/module';
import { memcachedModule } from './memcached/module';
import { mqttModule } from './mqtt/module';
import { mysqlModule } from './mysql/module';
import { natsModule } from './nats/module';
import { postgresModule } from './postgres/module';
import { redisModule } from './redis/module';
import { tlsModule } from './tls/module';
import type { ProtocolParser } from './types';

// A protocol is one line here.
// prettier-ignore
export const PROTOCOL_MODULES = [
  http2Module,
  http1Module,
  postgresModule,
  mysqlModule,
  kafkaModule,
  memcachedModule,
  natsModule,
  mqttModule,
  amqpModule,
  redisModule,
  tlsModule,
] as const;

export type Protocol = (typeof PROTOCOL_MODULES)[number]['name'];

/** The messages a module's parser emits (none for a module that only names a protocol). */
type MessageOf<M> = M extends { parser?: infer P } ? (P extends (options: ParserOptions) => ProtocolParser<infer X> ? X : never) : never;

/** Every message Loupe parses: a union the compiler narrows by `protocol`. */
export type ParsedMessage = MessageOf<(typeof PROTOCOL_MODULES)[number]>;

/** The protocols' names, in the list's order. */
export const PROTOCOLS: readonly Protocol[] = PROTOCOL_MODULES.map((m) => m.name);

const BY_NAME: ReadonlyMap<string, ProtocolModule> = new Map(
  PROTOCOL_MODULES.flatMap((m) => [m.name, ...((m as ProtocolModule).messageProtocols ?? [])].map((n) => [n, m as ProtocolModule] as const)),
);

/** The module of a protocol, or of a message by its `protocol` (gRPC streams are HTTP/2's). */
export function moduleOf(protocol: string): ProtocolModule | undefined {
  return BY_NAME.get(protocol);
}

/** A parser for the protocol; its messages are ParsedMessage (the module list is what makes them so). */
export function createParser(protocol: string, options: ParserOptions = {}): ProtocolParser<ParsedMessage> | undefined {
  return moduleOf(protocol)?.parser?.(options) as ProtocolParser<ParsedMessage> | undefined;
}

export function hasParser(protocol: string): boolean {
  return moduleOf(protocol)?.parser !== undefined;
}
