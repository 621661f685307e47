/**
 * src/parsers/protocols.ts is the one list of protocols: detection names only
 * those and each of them, `--port N=PROTO` offers exactly those, every one
 * marked parsed has its parser, databases carry OpenTelemetry's system
 * names, and no other source file spells out a list of them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DB_SYSTEM_NAME_VALUE_MYSQL, DB_SYSTEM_NAME_VALUE_POSTGRESQL } from '@opentelemetry/semantic-conventions';
import { DB_SYSTEM_NAME_VALUE_MEMCACHED, DB_SYSTEM_NAME_VALUE_REDIS } from '@opentelemetry/semantic-conventions/incubating';
import { describe, expect, it } from 'vitest';
import { createParser, hasParser, moduleOf, PROTOCOL_MODULES, PROTOCOLS, type ParsedMessage } from '../src/parsers/protocols';
import type { ProtocolModule } from '../src/parsers/module';
import { detectProtocol, NEED_MORE } from '../src/parsers/detect';
import { allSeeds } from './fuzz/seeds';
import { ROOT, sourceFiles } from './helpers';

/** A TLS 1.2 ClientHello's record and handshake headers (its body does not matter to detection). */
const TLS_HELLO = Buffer.from('160301020001000200' + '03'.repeat(8), 'hex');

/** Compiles only while ParsedMessage is a union the compiler narrows by `protocol`, each member its own fields, with no cast. */
function summaryOf(m: ParsedMessage): string {
  switch (m.protocol) {
    case 'http1':
      return m.kind === 'request' ? `${m.method} ${m.target}` : String(m.status);
    case 'http2':
    case 'grpc':
      return `stream ${m.streamId}`;
    case 'postgres':
    case 'mysql':
    case 'memcached':
    case 'redis':
      return m.command;
    case 'nats':
      return `${m.op} ${m.subject ?? ''}`;
    case 'mqtt':
      return `${m.packet} ${m.topic ?? ''}`;
    case 'kafka':
      return `${m.api} ${m.correlationId ?? ''}`;
    case 'amqp':
      return `${m.method} ${m.channel ?? ''}`;
    default: {
      const none: never = m;
      return none;
    }
  }
}

describe('the protocol list', () => {
  it('types its messages as one union, narrowed by protocol', () => {
    const seen = new Set<string>();
    for (const [protocol, conversations] of allSeeds()) {
      const parser = createParser(protocol)!;
      parser.onMessage = (m) => seen.add(`${m.protocol}: ${summaryOf(m)}`);
      for (const t of conversations[0]!) parser.feed(t.side, { data: t.bytes, ts: 0n, tid: 1 });
    }
    for (const p of ['http1', 'http2', 'postgres', 'mysql', 'memcached', 'nats', 'mqtt', 'kafka', 'amqp', 'redis'])
      expect(
        [...seen].some((s) => s.startsWith(`${p}: `) || (p === 'http2' && s.startsWith('grpc: '))),
        p,
      ).toBe(true);
  });

  it('is what detection names: each protocol from its own first bytes, and nothing else from any seed', () => {
    const detected = new Set<string>();
    for (const [, conversations] of allSeeds()) {
      for (const turns of conversations) {
        for (const t of turns.slice(0, 2)) {
          const v = detectProtocol(t.bytes);
          if (v !== undefined && v !== NEED_MORE) detected.add(v.protocol);
        }
      }
    }
    const tls = detectProtocol(TLS_HELLO);
    if (tls !== undefined && tls !== NEED_MORE) detected.add(tls.protocol);
    expect([...detected].sort()).toEqual([...PROTOCOLS].sort());
  });

  it('is what --port N=PROTO offers', () => {
    const r = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'parse', path.join(ROOT, 'test/fixtures/http-loopback.pcap'), '--port', '1=gopher'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`PROTO one of ${PROTOCOLS.join(', ')}`);
  });

  it('has modules that parse whole: a parser reading that protocol, its parse-error codes, pairing rules, span mapping and record fields; or only a name (TLS)', () => {
    for (const module of PROTOCOL_MODULES as readonly ProtocolModule[]) {
      const parts = [module.parser, module.parseErrors, module.pairing, module.role, module.respond, module.record, module.summary].map((p) => p !== undefined);
      expect(parts, module.name).toEqual(parts.map(() => hasParser(module.name)));
      if (module.parser) expect(createParser(module.name)!.protocol).toBe(module.name);
      for (const alias of module.messageProtocols ?? []) expect(moduleOf(alias)).toBe(module);
    }
    expect(PROTOCOL_MODULES.filter((m) => !hasParser(m.name)).map((m) => m.name)).toEqual(['tls']);
  });

  it("gives each database OpenTelemetry's db.system.name", () => {
    expect(PROTOCOL_MODULES.filter((m) => m.family === 'database').map((m) => [m.name, 'dbSystem' in m ? m.dbSystem : undefined])).toEqual([
      ['postgres', DB_SYSTEM_NAME_VALUE_POSTGRESQL],
      ['mysql', DB_SYSTEM_NAME_VALUE_MYSQL],
      ['memcached', DB_SYSTEM_NAME_VALUE_MEMCACHED],
      ['redis', DB_SYSTEM_NAME_VALUE_REDIS],
    ]);
  });

  it('is spelled out nowhere else in the sources', () => {
    const names = PROTOCOLS.map((p) => `'${p}'`);
    for (const file of sourceFiles(path.join(ROOT, 'src'))) {
      if (file.endsWith(path.join('parsers', 'protocols.ts'))) continue;
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        // A list: three or more of the names on one line, in an array or a union.
        const listed = names.filter((n) => line.includes(n));
        expect(listed.length, `${path.relative(ROOT, file)}: ${line.trim()}`).toBeLessThan(3);
      }
    }
  });

  it("is reached through its modules: no file outside a protocol's own folder branches on a protocol's name", () => {
    // (Its message aliases, `grpc`, also name an OTLP transport: the protocol names are what is checked.)
    const names = new Set<string>(PROTOCOLS);
    const own = (file: string) => [...names].some((n) => file.includes(`${path.sep}parsers${path.sep}${n}${path.sep}`)) || file.endsWith(path.join('parsers', 'protocols.ts'));
    const branches: string[] = [];
    for (const file of sourceFiles(path.join(ROOT, 'src'))) {
      if (own(file)) continue;
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/[!=]==? '([a-z0-9]+)'|case '([a-z0-9]+)':/g)) {
        const name = m[1] ?? m[2];
        if (name && names.has(name)) branches.push(`${path.relative(ROOT, file)}: ${m[0]}`);
      }
    }
    expect(branches).toEqual([]);
  });
});
