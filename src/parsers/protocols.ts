/**
 * The protocols Loupe knows: one list. Detection's names, `--port N=PROTO`,
 * which are databases (masked, and spans with `db.system.name`) read it, and
 * the parser registry (registry.ts) must have a parser for each it marks
 * parsed — the compiler holds it to that. A protocol is added by one entry
 * here and its parser there (test/protocol-registry.test.ts holds the rest).
 */
export const PROTOCOL_MODULES = [
  { name: 'http1', family: 'http', parsed: true },
  { name: 'http2', family: 'http', parsed: true },
  { name: 'postgres', family: 'database', dbSystem: 'postgresql', parsed: true },
  { name: 'mysql', family: 'database', dbSystem: 'mysql', parsed: true },
  { name: 'redis', family: 'database', dbSystem: 'redis', parsed: true },
  // Named, not read: its plaintext comes from the TLS probes.
  { name: 'tls', family: 'tls', parsed: false },
] as const satisfies ReadonlyArray<{
  name: string;
  /** http: requests and responses with HTTP semantics; database: a client and its server, db.* attributes; tls: named only. */
  family: 'http' | 'database' | 'tls';
  /** OpenTelemetry's db.system.name, for a database. */
  dbSystem?: string;
  parsed: boolean;
}>;

type Module = (typeof PROTOCOL_MODULES)[number];
export type Protocol = Module['name'];
export type DatabaseProtocol = Extract<Module, { family: 'database' }>['name'];
export type ParsedProtocol = Extract<Module, { parsed: true }>['name'];

/** The protocols' names, in the list's order. */
export const PROTOCOLS: readonly Protocol[] = PROTOCOL_MODULES.map((m) => m.name);

const DATABASES: ReadonlyMap<string, string> = new Map(PROTOCOL_MODULES.flatMap((m) => ('dbSystem' in m ? [[m.name, m.dbSystem] as const] : [])));

export function isDatabaseProtocol(name: string): name is DatabaseProtocol {
  return DATABASES.has(name);
}

/** OpenTelemetry's db.system.name for a database protocol. */
export function dbSystemOf(protocol: DatabaseProtocol): string {
  return DATABASES.get(protocol)!;
}
