/**
 * The agent's configuration file (YAML or JSON), validated by a schema;
 * errors name the key. Environment variables override the file, flags
 * override both:
 *
 *   discovery:  { pids: [123], exe: "frontend|backend", ports: [8080], open_ports: [8080] }   (or exe_glob: a glob)
 *   services:   [{ exe: "/frontend$", name: frontend }]   # service.name by executable
 *   routes:     { patterns: ["/factorial/{n}"], ignore: ["/health"], heuristic: true }
 *   capture:    { max_payload: 65536, ring_mb: 16, redact: true }
 *   tls:        { enabled: true, libraries: [] }
 *   export:     { otlp: false, prometheus_port: 0, sampler: { name: traceidratio, arg: 0.1 } }
 *   agent:      { cpus: "1" }   # keep the agent's threads on these CPUs (taskset's list syntax)
 *
 * Environment: LOUPE_PIDS, LOUPE_EXE, LOUPE_PORTS, LOUPE_OPEN_PORTS, LOUPE_ROUTES, LOUPE_IGNORE_ROUTES,
 * LOUPE_MAX_PAYLOAD, LOUPE_RING_MB, LOUPE_REDACT, LOUPE_TLS, LOUPE_OTLP,
 * LOUPE_PROMETHEUS_PORT, LOUPE_GO, LOUPE_GO_INJECT, LOUPE_CPUS (lists comma-separated, booleans true/false).
 */
import { LoupeError } from '../errors';
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CONSTANTS } from '../events/layout';
import { readRegularFile } from '../events/input-file';
import { parseCpuList } from './cpu-list';

export { parseCpuList };

/**
 * The trace samplers the configuration may name (OTEL_TRACES_SAMPLER's
 * values): declared here, where options are, and read by export/sampling.ts,
 * so discovery never imports from export.
 */
export const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/**
 * Bytes copied per read or write by default. Protocols put a message's end in
 * the last bytes of a write (gRPC's trailers after a 10 KB reply, nghttpd's
 * last DATA frame of a 40 KB file): a copy of 4096 bytes lost it, and the
 * call read as never answered. Past 4096 the copy costs records of its own
 * (BENCHMARKS.md, the copy bound).
 */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024;

/** A configuration problem; `source` says whether the value came from the file or the environment. */
export class ConfigError extends LoupeError {
  constructor(message: string, readonly source: 'file' | 'environment' = 'file') {
    super('LOUPE_CONFIG', message);
  }
}

const regex = z.string().refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, 'is not a valid regular expression');
const port = z.number().int().min(1).max(65535);

const cpuList = z.string().refine((s) => parseCpuList(s) !== undefined, 'is not a CPU list (like "1", "0,2" or "2-3")');

export const CONFIG_SCHEMA = z.object({
  discovery: z.object({
    pids: z.array(z.number().int().positive().max(2 ** 22)).default([]),
    exe: regex.optional(),
    // A shell-style glob on the executable path instead of a regex, e.g. /srv/STAR/bin/STAR (STAR: one segment, STAR STAR: any).
    exe_glob: z.string().min(1).optional(),
    ports: z.array(port).default([]),
    // The processes listening on these ports (Beyla's open-port discovery), found again every 2 s.
    open_ports: z.array(port).default([]),
  }).strict().default({}),
  services: z.array(z.object({ exe: regex, name: z.string().min(1) }).strict()).default([]),
  routes: z.object({
    patterns: z.array(z.string().startsWith('/')).default([]),
    ignore: z.array(z.string().startsWith('/')).default([]),
    heuristic: z.boolean().default(true),
  }).strict().default({}),
  capture: z.object({
    max_payload: z.number().int().min(0).max(CONSTANTS.LOUPE_MAX_COPY).default(DEFAULT_MAX_PAYLOAD),
    ring_mb: z.number().int().min(1).max(1024).refine((n) => (n & (n - 1)) === 0, 'must be a power of two').default(16),
    redact: z.boolean().default(true),
  }).strict().default({}),
  tls: z.object({ enabled: z.boolean().default(true), libraries: z.array(z.string()).default([]) }).strict().default({}),
  export: z.object({
    otlp: z.boolean().default(false),
    prometheus_port: z.number().int().min(0).max(65535).default(0),
    // Head sampling of OTLP traces, as OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG say it (those win).
    sampler: z.object({ name: z.enum(SAMPLER_NAMES), arg: z.number().min(0).max(1).optional() }).strict().optional(),
  }).strict().default({}),
  // Go programs: goroutine and net/http probes; inject_traceparent puts the context on their outgoing HTTP/1 requests.
  go: z.object({ enabled: z.boolean().default(true), inject_traceparent: z.boolean().default(true) }).strict().default({}),
  // The agent's own threads; unset: wherever the scheduler puts them.
  agent: z.object({ cpus: cpuList.optional() }).strict().default({}),
}).strict();

export type LoupeConfig = z.infer<typeof CONFIG_SCHEMA>;

/** What a capture header keeps of the configuration, so a replay names spans as the live run did. */
export interface RecordedRules {
  routes: { patterns: string[]; ignore: string[]; heuristic: boolean };
  services: Array<{ exe: string; name: string }>;
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const bool = (name: string, v: string) => {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ConfigError(`${name}=${v}: expected true or false`, 'environment');
};
// Decimal digits only: Number() also takes "1e3", "0x50" and " ", which nobody means as a port.
const num = (name: string, v: string) => {
  if (!/^\s*\d{1,10}\s*$/.test(v)) throw new ConfigError(`${name}=${v}: expected a whole decimal number`, 'environment');
  return Number(v);
};

/** The environment variable each configuration key can come from. */
export const ENV_OF_KEY: Record<string, string> = {
  'discovery.pids': 'LOUPE_PIDS', 'discovery.exe': 'LOUPE_EXE', 'discovery.ports': 'LOUPE_PORTS', 'discovery.open_ports': 'LOUPE_OPEN_PORTS',
  'routes.patterns': 'LOUPE_ROUTES', 'routes.ignore': 'LOUPE_IGNORE_ROUTES', 'capture.max_payload': 'LOUPE_MAX_PAYLOAD',
  'capture.ring_mb': 'LOUPE_RING_MB', 'capture.redact': 'LOUPE_REDACT', 'tls.enabled': 'LOUPE_TLS', 'export.otlp': 'LOUPE_OTLP',
  'export.prometheus_port': 'LOUPE_PROMETHEUS_PORT', 'go.enabled': 'LOUPE_GO', 'go.inject_traceparent': 'LOUPE_GO_INJECT', 'agent.cpus': 'LOUPE_CPUS',
};

/** Environment overrides as a partial raw config (validated with the file). */
function fromEnv(env: NodeJS.ProcessEnv): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const set = (section: string, key: string, value: unknown) => ((out[section] ??= {})[key] = value);
  if (env.LOUPE_PIDS) set('discovery', 'pids', list(env.LOUPE_PIDS).map((p) => num('LOUPE_PIDS', p)));
  if (env.LOUPE_EXE) set('discovery', 'exe', env.LOUPE_EXE);
  if (env.LOUPE_PORTS) set('discovery', 'ports', list(env.LOUPE_PORTS).map((p) => num('LOUPE_PORTS', p)));
  if (env.LOUPE_OPEN_PORTS) set('discovery', 'open_ports', list(env.LOUPE_OPEN_PORTS).map((p) => num('LOUPE_OPEN_PORTS', p)));
  if (env.LOUPE_ROUTES) set('routes', 'patterns', list(env.LOUPE_ROUTES));
  if (env.LOUPE_IGNORE_ROUTES) set('routes', 'ignore', list(env.LOUPE_IGNORE_ROUTES));
  if (env.LOUPE_MAX_PAYLOAD) set('capture', 'max_payload', num('LOUPE_MAX_PAYLOAD', env.LOUPE_MAX_PAYLOAD));
  if (env.LOUPE_RING_MB) set('capture', 'ring_mb', num('LOUPE_RING_MB', env.LOUPE_RING_MB));
  if (env.LOUPE_REDACT) set('capture', 'redact', bool('LOUPE_REDACT', env.LOUPE_REDACT));
  if (env.LOUPE_TLS) set('tls', 'enabled', bool('LOUPE_TLS', env.LOUPE_TLS));
  if (env.LOUPE_OTLP) set('export', 'otlp', bool('LOUPE_OTLP', env.LOUPE_OTLP));
  if (env.LOUPE_GO) set('go', 'enabled', bool('LOUPE_GO', env.LOUPE_GO));
  if (env.LOUPE_GO_INJECT) set('go', 'inject_traceparent', bool('LOUPE_GO_INJECT', env.LOUPE_GO_INJECT));
  if (env.LOUPE_CPUS) set('agent', 'cpus', env.LOUPE_CPUS);
  if (env.LOUPE_PROMETHEUS_PORT) set('export', 'prometheus_port', num('LOUPE_PROMETHEUS_PORT', env.LOUPE_PROMETHEUS_PORT));
  return out;
}

/** A configuration is a page of YAML: past this it is not one (and /dev/zero never ends). */
const MAX_CONFIG_BYTES = 1 << 20;

/** Read, merge with the environment, validate. `file` undefined: defaults and environment only. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoupeConfig {
  let raw: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readRegularFile(file, MAX_CONFIG_BYTES).toString('utf8');
    } catch (e) {
      throw new ConfigError(`${file}: ${(e as Error).message}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: the configuration must be a mapping`);
  }
  const merged: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const [section, values] of Object.entries(fromEnv(env))) {
    const base = merged[section];
    merged[section] = { ...(typeof base === 'object' && base !== null ? base : {}), ...values };
  }
  const result = CONFIG_SCHEMA.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(top level)';
    // Said where the value came from: an environment variable wins over the file.
    const envName = ENV_OF_KEY[issue.path.slice(0, 2).join('.')];
    if (envName && env[envName] !== undefined) throw new ConfigError(`${envName}=${env[envName]}: ${key}: ${issue.message}`, 'environment');
    throw new ConfigError(`${file ?? 'environment'}: ${key}: ${issue.message}`, file === undefined ? 'environment' : 'file');
  }
  return result.data;
}

/** The service a process runs as under the configured rules: first matching executable wins. */
export function serviceByRules(exe: string, rules: ReadonlyArray<{ exe: string; name: string }>): string | undefined {
  for (const r of rules) if (new RegExp(r.exe).test(exe)) return r.name;
  return undefined;
}

// A glob on paths as a regex: a star and ? stay within one path segment, two stars cross them.
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
