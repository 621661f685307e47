/**
 * The agent's configuration file (YAML or JSON), validated by a schema;
 * errors name the key. Environment variables override the file, flags
 * override both:
 *
 *   discovery:  { pids: [123], exe: "frontend|backend", ports: [8080], open_ports: [8080] }   (or exe_glob: a glob)
 *   services:   [{ exe: "/frontend$", name: frontend }, { container: "^shop-web", name: web }]   # service.name by executable or container
 *               ({ ..., propagate: false }: its calls get no traceparent header and no TCP option)
 *   routes:     { patterns: ["/factorial/{n}"], ignore: ["/health"], heuristic: true }
 *   capture:    { max_payload: 65536, ring_mb: 16, redact: true }
 *   tls:        { enabled: true, libraries: [] }
 *   export:     { otlp: false, prometheus_port: 0, sampler: { name: traceidratio, arg: 0.1 } }
 *   agent:      { cpus: "1" }   # keep the agent's threads on these CPUs (taskset's list syntax)
 *
 * Each option, its variable and its flag are declared once, in options.ts
 * (lists comma-separated in a variable, booleans true/false); the schema
 * below keeps the refinements and is checked against that table.
 */
import { LoupeError } from '../errors';
import { parseYaml } from '../lazy';
import { z } from 'zod';
import { CONSTANTS } from '../events/layout';
import type { ProcessInfo } from '../events/capture';
import { readRegularFile } from '../events/input-file';
import { parseCpuList } from './cpu-list';
import { ENV_OF_KEY, fromVariable, KEYED_OPTIONS } from './options';

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
  constructor(
    message: string,
    readonly source: 'file' | 'environment' = 'file',
  ) {
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

export const CONFIG_SCHEMA = z
  .object({
    discovery: z
      .object({
        pids: z
          .array(
            z
              .number()
              .int()
              .positive()
              .max(2 ** 22),
          )
          .default([]),
        exe: regex.optional(),
        // The processes of containers whose name, image or id matches, found again every 2 s.
        container: regex.optional(),
        // A shell-style glob on the executable path instead of a regex, e.g. /srv/STAR/bin/STAR (STAR: one segment, STAR STAR: any).
        exe_glob: z.string().min(1).optional(),
        ports: z.array(port).default([]),
        // The processes listening on these ports (Beyla's open-port discovery), found again every 2 s.
        open_ports: z.array(port).default([]),
      })
      .strict()
      .default({}),
    services: z
      .array(
        z
          .object({ exe: regex.optional(), container: regex.optional(), name: z.string().min(1), propagate: z.boolean().optional() })
          .strict()
          .refine((r) => r.exe !== undefined || r.container !== undefined, 'a rule needs exe or container (a regular expression)'),
      )
      .default([]),
    routes: z
      .object({
        patterns: z.array(z.string().startsWith('/')).default([]),
        ignore: z.array(z.string().startsWith('/')).default([]),
        heuristic: z.boolean().default(true),
      })
      .strict()
      .default({}),
    capture: z
      .object({
        max_payload: z.number().int().min(0).max(CONSTANTS.LOUPE_MAX_COPY).default(DEFAULT_MAX_PAYLOAD),
        ring_mb: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
          .default(16),
        redact: z.boolean().default(true),
      })
      .strict()
      .default({}),
    tls: z
      .object({ enabled: z.boolean().default(true), libraries: z.array(z.string()).default([]) })
      .strict()
      .default({}),
    export: z
      .object({
        otlp: z.boolean().default(false),
        prometheus_port: z.number().int().min(0).max(65535).default(0),
        // Head sampling of OTLP traces, as OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG say it (those win).
        sampler: z
          .object({ name: z.enum(SAMPLER_NAMES), arg: z.number().min(0).max(1).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    // Go programs: goroutine and net/http probes; inject_traceparent puts the context on their outgoing HTTP/1 requests
    // (inject_despite_fionread: also on a kernel whose sockhash breaks FIONREAD, see live-source.ts).
    go: z
      .object({ enabled: z.boolean().default(true), inject_traceparent: z.boolean().default(true), inject_despite_fionread: z.boolean().default(false) })
      .strict()
      .default({}),
    // Trace context across hosts in TCP header options (bpf/tcpopt.bpf.c).
    propagation: z
      .object({ tcp_options: z.boolean().default(true) })
      .strict()
      .default({}),
    // The agent's own threads; unset: wherever the scheduler puts them.
    agent: z.object({ cpus: cpuList.optional() }).strict().default({}),
  })
  .strict();

export type LoupeConfig = z.infer<typeof CONFIG_SCHEMA>;

/** What a capture header keeps of the configuration, so a replay names spans as the live run did. */
export interface RecordedRules {
  routes: { patterns: string[]; ignore: string[]; heuristic: boolean };
  services: ServiceRule[];
}

/** service.name for processes whose executable matches `exe`, or whose container's name, image or id matches `container` (both when both are given). */
export interface ServiceRule {
  exe?: string;
  container?: string;
  name: string;
  /** false: the service's calls carry no context on the wire (no traceparent header, no TCP option). */
  propagate?: boolean;
}

/** Environment overrides (the variables of OPTIONS) as a partial raw config, validated with the file. */
function fromEnv(env: NodeJS.ProcessEnv): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const o of KEYED_OPTIONS) {
    const text = o.env ? env[o.env] : undefined;
    if (!text) continue;
    const [section, key] = o.key.split('.') as [string, string];
    (out[section] ??= {})[key] = fromVariable(o, text, (value, why) => {
      throw new ConfigError(`${o.env}=${value}: ${why}`, 'environment');
    });
  }
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
    const key =
      issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
        .join('')
        .replace(/^\./, '') || '(top level)';
    // Said where the value came from: an environment variable wins over the file.
    const envName = ENV_OF_KEY[issue.path.slice(0, 2).join('.')];
    if (envName && env[envName] !== undefined) throw new ConfigError(`${envName}=${env[envName]}: ${key}: ${issue.message}`, 'environment');
    throw new ConfigError(`${file ?? 'environment'}: ${key}: ${issue.message}`, file === undefined ? 'environment' : 'file');
  }
  return result.data;
}

/** The first rule a process matches: by executable, container, or both when both are given. */
function ruleFor(process: ProcessInfo, rules: readonly ServiceRule[]): ServiceRule | undefined {
  const c = process.container;
  for (const r of rules) {
    if (r.exe !== undefined && !new RegExp(r.exe).test(process.exe)) continue;
    if (r.container !== undefined && !(c && [c.name, c.image, c.id].some((v) => v !== undefined && new RegExp(r.container!).test(v)))) continue;
    return r;
  }
  return undefined;
}

/** The service a process runs as under the configured rules: first matching executable wins. */
export function serviceByRules(process: ProcessInfo, rules: readonly ServiceRule[]): string | undefined {
  return ruleFor(process, rules)?.name;
}

/** Whether a process's calls may carry trace context on the wire: unless the rule that names it says `propagate: false`. */
export function propagatesByRules(process: ProcessInfo, rules: readonly ServiceRule[]): boolean {
  return ruleFor(process, rules)?.propagate !== false;
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
