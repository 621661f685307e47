/**
 * Scenarios (`scenarios/*.yaml`): demo services, the load that drives them,
 * and the trace shapes expected. A shape is a path of hops from parent to
 * child, `service KIND [name]` each, separated by `>`:
 *
 *   curl CLIENT > frontend SERVER GET /factorial/{id} > frontend CLIENT > backend SERVER GET /compute
 *
 * A trace has the shape when a chain of spans, each the parent of the next,
 * matches the hops in order (a hop's name, when given, must equal the span's
 * name or begin it). `traces` says how many traces must have it (exactly), and
 * `attributes` what every span matching a hop must carry (a string starting
 * with `~` is a regular expression the value must match).
 */
import { LoupeError } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseYaml } from '../lazy';
import { z } from 'zod';
import type { Span } from '../correlator/span';
import { groupTraces } from '../export/traces';

export class ScenarioError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_SCENARIO', message);
  }
}

const command = z.array(z.string()).min(1);

export const SCENARIO_SCHEMA = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    /** A committed recording of this scenario that CI checks. */
    capture: z.string().optional(),
    /** Programs the scenario needs on the machine (a compiler, a database); a run without them says which. */
    requires: z.array(z.string()).default([]),
    /** Hosts, each a network namespace (root needed); `{addr:HOST}` is a host's address. Without: all on loopback. */
    /** Go programs' outgoing HTTP/1 requests get a traceparent from the kernel (sk_msg); false keeps their bytes untouched. */
    go_inject: z.boolean().default(true),
    hosts: z.array(z.string().regex(/^[a-z][a-z0-9]{0,11}$/, 'host names are 1-12 lower-case letters and digits')).default([]),
    services: z
      .array(
        z
          .object({
            name: z.string(),
            /** The host it runs on (one of `hosts`). */
            host: z.string().optional(),
            /**
             * argv; `{port:NAME}` becomes the free port chosen for service NAME, `{root}` the repository,
             * `{addr:NAME}` a host's address, or a container service's on the scenario's network.
             * For a container, the arguments of its program.
             */
            run: command,
            /** Runs in a container (podman or docker): `build` makes its one static program, the image is FROM scratch. */
            container: z.boolean().default(false),
            /** A container's build: argv that writes a static executable to `{out}`. */
            build: command.optional(),
            /** Text on stdout that says the service listens. */
            ready: z.string().default('ready'),
            /** How long it may take to say so (a service compiled at start takes longer). */
            ready_seconds: z.number().positive().default(20),
          })
          .strict(),
      )
      .min(1),
    load: z.array(z.object({ run: command, times: z.number().int().min(1).default(1), host: z.string().optional() }).strict()).default([]),
    expect: z
      .array(
        z
          .object({
            path: z.string(),
            traces: z.number().int().min(0),
            attributes: z.record(z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))).default({}),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type Scenario = z.infer<typeof SCENARIO_SCHEMA>;

export const SCENARIO_DIR = path.resolve(__dirname, '../../scenarios');

/** A scenario by name (scenarios/NAME.yaml) or by path. */
export function loadScenario(nameOrFile: string): Scenario {
  const file = nameOrFile.endsWith('.yaml') ? nameOrFile : path.join(SCENARIO_DIR, `${nameOrFile}.yaml`);
  let raw: unknown;
  try {
    raw = parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ScenarioError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = SCENARIO_SCHEMA.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ScenarioError(`${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  for (const e of r.data.expect) parsePath(e.path, file);
  for (const s of r.data.services) {
    if (s.container && !s.build) throw new ScenarioError(`${file}: service ${s.name}: a container needs build (argv writing a static program to {out})`);
    if (!s.container && s.build) throw new ScenarioError(`${file}: service ${s.name}: build is for container services`);
    if (s.container && s.host) throw new ScenarioError(`${file}: service ${s.name}: a container runs on this host's network of containers, not on a scenario host`);
  }
  for (const item of [...r.data.services, ...r.data.load]) {
    if (item.host !== undefined && !r.data.hosts.includes(item.host)) throw new ScenarioError(`${file}: host ${item.host} is not in hosts (${r.data.hosts.join(', ') || 'none'})`);
  }
  return r.data;
}

interface Hop {
  text: string;
  service: string;
  kind: Span['kind'];
  name?: string;
}

function parsePath(text: string, where = 'scenario'): Hop[] {
  return text.split('>').map((part) => {
    const m = /^\s*(\S+)\s+(SERVER|CLIENT|PRODUCER|CONSUMER|INTERNAL)(?:\s+(.+?))?\s*$/.exec(part);
    if (!m) throw new ScenarioError(`${where}: hop ${JSON.stringify(part.trim())} is not "service KIND [name]"`);
    return { text: part.trim(), service: m[1]!, kind: m[2]!.toLowerCase() as Hop['kind'], ...(m[3] ? { name: m[3] } : {}) };
  });
}

const matches = (span: Span, hop: Hop) =>
  span.service === hop.service && span.kind === hop.kind && (hop.name === undefined || span.name === hop.name || span.name.startsWith(`${hop.name} `));

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

/** Check spans against a scenario's expectations; every line says what held or what did not. */
export function checkScenario(scenario: Scenario, spans: Span[]): CheckResult {
  const traces = groupTraces(spans);
  const lines: string[] = [];
  let ok = true;
  for (const e of scenario.expect) {
    const hops = parsePath(e.path);
    const chains: Span[][] = [];
    let count = 0;
    for (const t of traces) {
      const children = new Map<string, Span[]>();
      for (const s of t.spans) if (s.parentSpanId) children.set(s.parentSpanId, [...(children.get(s.parentSpanId) ?? []), s]);
      const find = (span: Span, i: number): Span[] | undefined => {
        if (!matches(span, hops[i]!)) return undefined;
        if (i === hops.length - 1) return [span];
        for (const c of children.get(span.spanId) ?? []) {
          const rest = find(c, i + 1);
          if (rest) return [span, ...rest];
        }
        return undefined;
      };
      const chain = t.spans.map((s) => find(s, 0)).find(Boolean);
      if (chain) {
        count++;
        chains.push(chain);
      }
    }
    const countOk = count === e.traces;
    ok &&= countOk;
    lines.push(`${countOk ? 'ok  ' : 'FAIL'} ${e.path}: ${count} trace${count === 1 ? '' : 's'} (expected ${e.traces})`);
    if (!countOk) lines.push(...brokenChains(traces, hops, chains));
    for (const [hopText, wanted] of Object.entries(e.attributes)) {
      const i = hops.findIndex((h) => h.text === hopText);
      if (i < 0) {
        ok = false;
        lines.push(`FAIL   attributes name hop ${JSON.stringify(hopText)}, which is not in the path`);
        continue;
      }
      for (const chain of chains) {
        for (const [k, v] of Object.entries(wanted)) {
          const got = chain[i]!.attributes[k];
          // A string value starting with ~ is a regular expression the attribute must match.
          const holds = typeof v === 'string' && v.startsWith('~') ? got !== undefined && new RegExp(v.slice(1)).test(String(got)) : got === v;
          if (!holds) {
            ok = false;
            lines.push(`FAIL   ${hopText}: ${k} is ${JSON.stringify(got)}, expected ${JSON.stringify(v)} (trace ${chain[i]!.traceId})`);
          }
        }
      }
    }
  }
  return { ok, lines };
}

/**
 * Where a path broke, for a failure line: each span matching its last hop outside every chain found,
 * with its ancestors as they were joined (service, kind, name, `loupe.context`), up to its root. A CI
 * flake then says which hop lost its parent, and how the others were joined.
 */
function brokenChains(traces: ReturnType<typeof groupTraces>, hops: Hop[], chains: Span[][]): string[] {
  const inChains = new Set(chains.flat());
  const lines: string[] = [];
  for (const t of traces) {
    const byId = new Map(t.spans.map((s) => [s.spanId, s]));
    for (const leaf of t.spans) {
      if (!matches(leaf, hops[hops.length - 1]!) || inChains.has(leaf)) continue;
      const up: string[] = [];
      for (let s: Span | undefined = leaf; s && up.length < 12; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined) {
        up.push(`${s.service} ${s.kind.toUpperCase()} ${s.name} (${String(s.attributes['loupe.context'] ?? '-')})`);
        if (s.parentSpanId && !byId.has(s.parentSpanId)) up.push(`parent ${s.parentSpanId} not in the trace`);
      }
      lines.push(`FAIL   not in the path, trace ${t.traceId}: ${up.join(' < ')}`);
    }
  }
  return lines;
}

/** What a scenario requires that this machine lacks: programs on PATH, and paths (with a `/`) under the project (a build step's output). */
export function missingRequirements(scenario: Scenario): string[] {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return scenario.requires.filter((p) => (p.includes('/') ? !fs.existsSync(path.join(SCENARIO_DIR, '..', p)) : !dirs.some((d) => fs.existsSync(path.join(d, p)))));
}
