/**
 * Every option of the live agent, declared once: its configuration key, the
 * `LOUPE_*` variable and the flag that set it, its kind, default and one doc
 * line. The environment overrides (config.ts), the flags `run` and `record`
 * take, their help text and the option table in docs/options.md are made
 * from this list; the configuration schema (config.ts, which keeps its
 * refinements) is checked against it by src/discovery/options.test.ts.
 */

/** How a value is spelled in a variable or a flag: lists are comma-separated in a variable, a repeated flag on the command line. */
export type OptionKind = 'int' | 'int-list' | 'string' | 'string-list' | 'bool' | 'object';

export interface OptionSpec {
  /** Key in the configuration file (`section.name`); none: a flag only. */
  key?: string;
  kind: OptionKind;
  /** The value with none given, as the schema gives it (JSON); none: unset. */
  default?: unknown;
  /**
   * Flag of `run` and `record` (without the dashes). A boolean on by default
   * is turned off by its flag (`no-tls`); one off by default is turned on.
   */
  flag?: string;
  /** Short flag. */
  short?: string;
  /** What the flag's value is called in help (N, REGEX, FILE). */
  value?: string;
  /** `run` only. */
  runOnly?: boolean;
  env?: string;
  /** A number that means "off": a configuration giving it sets no flag. */
  off?: number;
  doc: string;
}

export const OPTIONS: readonly OptionSpec[] = [
  { flag: 'config', kind: 'string', value: 'FILE', doc: 'configuration file (YAML or JSON), validated by a schema; variables override it, flags override both' },
  {
    key: 'discovery.pids',
    kind: 'int-list',
    default: [],
    flag: 'pid',
    value: 'N',
    env: 'LOUPE_PIDS',
    doc: "watch these processes, their children and their children's, running or forked later",
  },
  { key: 'discovery.exe', kind: 'string', flag: 'exe', value: 'REGEX', env: 'LOUPE_EXE', doc: "watch programs whose executable path matches, also ones exec'd later" },
  {
    key: 'discovery.container',
    kind: 'string',
    flag: 'container',
    value: 'REGEX',
    env: 'LOUPE_CONTAINER',
    doc: 'watch the processes of containers whose name, image or id matches (podman, Docker, containerd, CRI-O), found again every 2 s',
  },
  { key: 'discovery.exe_glob', kind: 'string', flag: 'exe-glob', value: 'GLOB', doc: 'the same as a glob: `*` within a path segment, `**` across' },
  { key: 'discovery.ports', kind: 'int-list', default: [], flag: 'port', value: 'N', env: 'LOUPE_PORTS', doc: 'watch programs seen on this port, either end' },
  {
    key: 'discovery.open_ports',
    kind: 'int-list',
    default: [],
    flag: 'open-port',
    value: 'N',
    env: 'LOUPE_OPEN_PORTS',
    doc: 'watch the processes listening on this port, found again every 2 s',
  },
  {
    key: 'services',
    kind: 'object',
    default: [],
    doc: "service.name by executable or container: `[{exe: REGEX, name}]`, `[{container: REGEX, name}]` (its name, image or id), both to need both; the first match wins; `propagate: false` in a rule: that service's calls carry no trace context on the wire (no traceparent header, no TCP option; with such a rule, a process's calls carry the option only once the agent has read which service it is)",
  },
  { key: 'routes.patterns', kind: 'string-list', default: [], env: 'LOUPE_ROUTES', doc: 'http.route patterns like `/factorial/{n}`' },
  { key: 'routes.ignore', kind: 'string-list', default: [], env: 'LOUPE_IGNORE_ROUTES', doc: 'paths that get no route and no metric (`/health`)' },
  { key: 'routes.heuristic', kind: 'bool', default: true, doc: 'group paths no pattern names by their numeric and id-like segments' },
  {
    key: 'capture.max_payload',
    kind: 'int',
    default: 65536,
    flag: 'max-payload',
    value: 'N',
    env: 'LOUPE_MAX_PAYLOAD',
    doc: 'payload bytes copied per read or write (at most 262144)',
  },
  { key: 'capture.ring_mb', kind: 'int', default: 16, flag: 'ring-mb', value: 'N', env: 'LOUPE_RING_MB', doc: 'ring buffer size in MiB, a power of two' },
  {
    key: 'capture.redact',
    kind: 'bool',
    default: true,
    flag: 'no-redact',
    env: 'LOUPE_REDACT',
    doc: 'mask credentials, query values and SQL literals in payloads before anything is written',
  },
  { key: 'tls.enabled', kind: 'bool', default: true, flag: 'no-tls', env: 'LOUPE_TLS', doc: 'read HTTPS plaintext through uprobes on OpenSSL' },
  {
    key: 'tls.libraries',
    kind: 'string-list',
    default: [],
    flag: 'ssl-lib',
    value: 'PATH',
    doc: "probe these libssl files, and only these (default: the system's and every one a watched program maps)",
  },
  { key: 'export.otlp', kind: 'bool', default: false, flag: 'otlp', env: 'LOUPE_OTLP', doc: 'export spans and RED metrics over OTLP (OTEL_EXPORTER_OTLP_* variables)' },
  {
    key: 'export.prometheus_port',
    kind: 'int',
    default: 0,
    off: 0,
    flag: 'prometheus-port',
    value: 'N',
    env: 'LOUPE_PROMETHEUS_PORT',
    doc: 'serve the RED metrics at /metrics on this port',
  },
  { key: 'export.sampler', kind: 'object', doc: 'head sampling of OTLP traces: `{name, arg}` as OTEL_TRACES_SAMPLER and its argument take them (those win)' },
  { key: 'go.enabled', kind: 'bool', default: true, flag: 'no-go', env: 'LOUPE_GO', doc: 'goroutine and net/http probes on Go programs' },
  {
    key: 'go.inject_traceparent',
    kind: 'bool',
    default: true,
    flag: 'no-inject',
    env: 'LOUPE_GO_INJECT',
    doc: "put traceparent on watched programs' outgoing HTTP/1 requests (sk_msg): a Go program's from its goroutine's context, another's from the request its thread serves, else a new trace; never on a request with its own traceparent or a signature, or whose head is not whole in one write",
  },
  {
    key: 'go.inject_despite_fionread',
    kind: 'bool',
    default: false,
    flag: 'inject-despite-fionread',
    env: 'LOUPE_GO_INJECT_DESPITE_FIONREAD',
    doc: "keep header injection on where the kernel misreports FIONREAD for sockets in a sockhash (start-up says so), for Go programs with C code and for programs in other languages too: only for programs that never ask it (Go's net package, CPython's sockets and nginx 1.22 with epoll do not; Java's NIO does)",
  },
  {
    key: 'propagation.tcp_options',
    kind: 'bool',
    default: true,
    flag: 'no-tcp-options',
    env: 'LOUPE_TCP_OPTIONS',
    doc: "put trace context in a TCP header option on the first segment of each call watched programs make, and read it where Loupe runs on the server's host (any TCP protocol; no payload byte changes)",
  },
  { key: 'agent.cpus', kind: 'string', flag: 'cpus', value: 'LIST', env: 'LOUPE_CPUS', doc: "keep the agent's threads on these CPUs (taskset's syntax: 1, 0,2, 2-3)" },
  { flag: 'format', kind: 'string', value: 'tree|jsonl|otlp-json', runOnly: true, doc: 'how spans are written (default tree)' },
  { flag: 'output', short: 'o', kind: 'string', value: 'OUT', doc: 'run: write spans there; record: the capture to write' },
  { flag: 'record', kind: 'string', value: 'FILE.loupe', runOnly: true, doc: 'also write the capture the run consumed' },
  { flag: 'duration', kind: 'string', value: 'S', doc: 'stop after S seconds (default: at SIGINT or SIGTERM)' },
  { flag: 'quiet', kind: 'bool', default: false, doc: 'no start-up lines, progress or summary on stderr' },
];

export const KEYED_OPTIONS = OPTIONS.filter((o): o is OptionSpec & { key: string } => o.key !== undefined);

/** The environment variable each configuration key can come from. */
export const ENV_OF_KEY: Readonly<Record<string, string>> = Object.fromEntries(KEYED_OPTIONS.flatMap((o) => (o.env ? [[o.key, o.env]] : [])));

/** The configuration key behind each flag. */
export const KEY_OF_FLAG: Readonly<Record<string, string>> = Object.fromEntries(KEYED_OPTIONS.flatMap((o) => (o.flag ? [[o.flag, o.key]] : [])));

const isList = (o: OptionSpec) => o.kind === 'int-list' || o.kind === 'string-list';

/** `util.parseArgs`'s option declarations for run (`run: true`) or record. */
export function flagSpecs(run: boolean): Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: boolean }> {
  const specs: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: boolean }> = {};
  for (const o of OPTIONS) {
    if (!o.flag || (o.runOnly && !run)) continue;
    specs[o.flag] = o.kind === 'bool' ? { type: 'boolean', default: false } : { type: 'string', ...(isList(o) ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  return specs;
}

/** A configuration's values as the flags they stand for (flags given win over these). */
export function configAsFlags(config: unknown): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const o of KEYED_OPTIONS) {
    if (!o.flag) continue;
    const value = o.key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
    if (value === undefined || (Array.isArray(value) && value.length === 0) || value === o.off) continue;
    if (o.kind === 'bool') {
      // A flag that turns off what is on by default is set by a false; one that turns on, by a true.
      if (value !== o.default) flags[o.flag] = true;
    } else flags[o.flag] = value;
  }
  return flags;
}

/** The flags' lines of `loupe help`. */
export function flagHelp(): string {
  const rows = OPTIONS.filter((o) => o.flag).map((o) => {
    const name = `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.value ? ` ${o.value}` : ''}${isList(o) ? ' ...' : ''}`;
    const from = [o.key, o.env].filter(Boolean).join(', ');
    const off = o.kind === 'bool' && o.default === true ? 'off: ' : '';
    return { name, doc: `${o.runOnly ? 'run: ' : ''}${off}${o.doc.replace(/`/g, '')}${from ? ` [${from}]` : ''}` };
  });
  const width = Math.max(...rows.map((r) => r.name.length)) + 2;
  return rows.map((r) => `    ${r.name.padEnd(width)}${r.doc}`).join('\n');
}

/** The option table of docs/options.md. */
export function optionsTable(): string {
  const cell = (s: string | undefined) => (s ? `\`${s}\`` : '');
  const lines = ['| config key | variable | flag | default | what it does |', '|---|---|---|---|---|'];
  for (const o of OPTIONS) {
    const flag = o.flag ? `--${o.flag}${o.value ? ` ${o.value}` : ''}`.replace(/\|/g, '\\|') : undefined;
    const off = o.kind === 'bool' && o.default === true && o.flag ? ' (the flag turns it off)' : '';
    const dflt = o.default === undefined || (Array.isArray(o.default) && o.default.length === 0) ? '' : `\`${JSON.stringify(o.default)}\``;
    lines.push(`| ${cell(o.key)} | ${cell(o.env)} | ${cell(flag)} | ${dflt} | ${o.doc.replace(/\|/g, '\\|')}${off}${o.runOnly ? ' (run only)' : ''} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** A variable's value as the configuration value it stands for; `fail` names the value (an element of a list) and why it cannot be. */
export function fromVariable(o: OptionSpec, text: string, fail: (value: string, why: string) => never): unknown {
  const list = () =>
    text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  // Decimal digits only: Number() also takes "1e3", "0x50" and " ", which nobody means as a port.
  const num = (v: string) => (/^\s*\d{1,10}\s*$/.test(v) ? Number(v) : fail(v, 'expected a whole decimal number'));
  switch (o.kind) {
    case 'int':
      return num(text);
    case 'int-list':
      return list().map(num);
    case 'string-list':
      return list();
    case 'bool':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      return fail(text, 'expected true or false');
    default:
      return text;
  }
}
