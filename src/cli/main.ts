#!/usr/bin/env node
/**
 * loupe: the command line. Each command is thin: it reads arguments, calls
 * the core and maps failures to exit codes (2: bad input or usage, 1: bug).
 */
import { EXIT_STATUS, LoupeError } from '../errors';
import * as path from 'node:path';
import { renderWaterfall } from '../export/waterfall';
import { ProgressBar } from './progress';
import { edgesTable, renderReport } from '../export/report';
import { diffSpans, renderDiff } from '../export/diff';
import { checkScenario, loadScenario, SCENARIO_DIR, ScenarioError, type CheckResult, type Scenario } from '../scenarios/scenario';
import { runScenario } from '../scenarios/run';
import { parseArgs } from 'node:util';
import { CaptureError, CaptureWriter } from '../events/capture';
import { ChunkedOutput } from '../export/chunked';
import { headerToJsonLine, recordToJsonLine } from '../events/jsonl';
import { openCapture } from '../sources/capture-file';
import { replayFile, replayFileExporting, replayHosts, spansOfCaptures } from '../pipeline/replay';
import { describeHosts, type HostClock } from '../pipeline/merge';
import { SPAN_FORMATS, type RunSummary, type SpanFormat } from '../pipeline/output';
import { openInput, parseFile, type ParseSummary } from '../pipeline/parse';
import { encodeEvent } from '../events/codec';
import { PROTOCOLS, type Protocol } from '../parsers/protocols';
import type { PcapImportStats } from '../sources/pcap/import';
import { LiveSession, type GoResult, type LiveSessionOptions } from '../pipeline/live';
import type { ChosenBy } from '../discovery/selection';
import { LiveError, type Propagation } from '../sources/live/live-source';
import { onlineCpus, systemLibssl } from '../sources/live/system';
import { CONSTANTS } from '../events/layout';
import { ExportConfigError, validateExportEnv, type ExportStats } from '../export/export-config';
import { ConfigError, DEFAULT_MAX_PAYLOAD, globToRegExp, loadConfig, parseCpuList, type LoupeConfig } from '../discovery/config';
import { configAsFlags, ENV_OF_KEY, flagHelp, flagSpecs, KEY_OF_FLAG } from '../discovery/options';
import { escapeControl } from '../export/terminal';
import { checkTarget, streamFile, wholeFile, type OutputFile } from '../events/output-file';

export class UsageError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_USAGE', message);
  }
}

export const USAGE = `loupe — eBPF auto-instrumentation workbench

Usage:
  loupe replay FILE... [--format tree|jsonl|otlp-json] [-o OUT] [--otlp] [--quiet]
      Replay a capture (*.loupe or its JSONL form) into spans. Several files
      (captures recorded on several hosts) replay as one: each host's clock
      offset is estimated from the connections it shares with another (a
      byte is read after it was written), stated with its bound on stderr,
      and their connection pairs join across the hosts; any order of the
      files gives the same output.
      --otlp also sends the spans and RED metrics to an OTLP endpoint
      (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL grpc or
      http/protobuf, and the other standard OTEL_* variables); traces are
      sampled by OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default
      parentbased_always_on), whole, and metrics count every span.
      tree: a span tree per trace; jsonl: one span per line;
      otlp-json: an OTLP/JSON ExportTraceServiceRequest.
      A summary (records, spans, incomplete, skipped) goes to stderr.
  loupe convert IN OUT [--to binary|jsonl]
      Convert a capture between the binary form and the JSONL form.
      The target form follows OUT's extension (.loupe / .jsonl) unless --to says.
  loupe parse FILE [--format jsonl|table] [--port N=PROTO ...] [--proto DIR] [--no-redact] [--quiet]
      Print every parsed request and response in a capture, pcap or pcapng
      file: one JSON object per message (docs/formats.md) or a table.
      --port 8443=http1 forces a protocol for a port (either end) instead of
      detection. PROTO: ${PROTOCOLS.join(', ')}.
      --proto DIR decodes gRPC message bodies with the .proto files there.
      Query values and Authorization/Cookie headers are REDACTED unless
      --no-redact. A summary goes to stderr unless --quiet.
  loupe import FILE.pcap|FILE.pcapng -o OUT.loupe|OUT.jsonl
      Turn a packet capture into a Loupe capture: each TCP flow reassembled
      and shown as a client and a server socket, so replay gives both spans.
  loupe run [OPTIONS]
      Run the live agent (root): eBPF on this host's syscalls, through the
      same pipeline as replay, until SIGINT/SIGTERM or --duration. Spans go
      to stdout or OUT as they come (tree: a trace once quiet for 2 s;
      jsonl: a span as it ends; otlp-json: a request line each second);
      --record also writes the capture it consumed, so replaying it gives
      the same spans byte for byte. With no --pid, --exe, --exe-glob, --port
      or --open-port every process is watched (but the agent). HTTPS
      plaintext comes from uprobes on the system's OpenSSL (or --ssl-lib).
      Go programs get goroutine and net/http probes and traceparent on their
      outgoing HTTP/1 requests through sk_msg (--no-inject: their bytes stay
      untouched). --cpus keeps the agent's threads off the CPUs a
      latency-bound service uses.
  loupe record -o FILE.loupe [OPTIONS]
      Record a capture (mode 0600) with a progress line of records/s and
      records lost. Payload secrets (credential headers, query values, SQL
      literals) are masked unless --no-redact.
    OPTIONS of run and record [the configuration key and variable that also set it;
    variables override the file, flags override both; docs/options.md]:
${flagHelp()}
  loupe view FILE... [--trace ID] [--width N]
      Each trace of a capture as a waterfall in the terminal: one bar per
      span on the trace's time axis (▓ failed, ░ in-queue/processing phases),
      then the service graph's edges as report --edges prints them.
      --trace shows one trace (an id prefix is enough); --width sets the bars'
      columns (default 40).
  loupe report FILE... -o REPORT.html | --edges
      A self-contained HTML page: the service graph (who calls whom, calls,
      calls/s, errors, median and p95 latency, how the calls were joined) and
      a waterfall per trace. --edges prints the graph's edges as a table on
      stdout: per caller and callee, the share of calls joined each way (the
      callee's loupe.context) and the calls left unjoined.
  loupe diff A B [--format text|json] [--check]
  loupe diff --a A1 --a A2 ... --b B1 ... [--format text|json] [--check]
      Compare two captures (a side of several files: one run's hosts, merged
      as replay merges them): operations (service, kind, span name) that
      appeared or vanished and how their counts, errors and p50/p95 latency
      moved; trace shapes (parent-to-child paths) each has. --check exits 4
      when shapes or operations differ, or an operation's errors appear,
      vanish or move by more than 5 points of its calls.
  loupe scenario run NAME [--record FILE.loupe]
      Run scenarios/NAME.yaml live (root): start its services on free ports,
      watch them with the agent, drive the load, then check the expected
      trace shapes on the replay of the recording (kept with --record).
  loupe scenario check NAME [--capture FILE ...]
      Check a recording (default: the scenario's committed capture) against
      the scenario's expected trace shapes; several --capture, the recordings
      of several hosts, are checked as one replay (see replay).
  loupe help

Exit status: 0 ok; 2 bad input (corrupt or truncated capture, bad record,
bad arguments, a bad scenario) with the file and byte offset, line or key on
stderr; 3 the live agent cannot run here (names the missing privilege or
kernel feature); 4 a scenario's expectations do not hold; 1 internal error.

`;

type Out = {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY?: boolean;
  /** stderr as given, for the progress bar's own control sequences; `err` shows control characters instead. */
  rawErr?: (s: string) => void;
};

function summaryLine(s: RunSummary): string {
  const unknown = Object.entries(s.pipeline.unknownRecords);
  const parts = [`${s.records} records`, `${s.pipeline.connections} connections`, `${s.correlator.spans} spans`, `${s.correlator.incomplete} incomplete`];
  if (s.correlator.orphanResponses) parts.push(`${s.correlator.orphanResponses} responses without a request`);
  if (s.correlator.parseErrors) parts.push(`${s.correlator.parseErrors} parse errors`);
  if (s.pipeline.lostRecords) parts.push(`${s.pipeline.lostRecords} records lost by the kernel side`);
  if (s.pipeline.parserFaults)
    parts.push(`${s.pipeline.parserFaults} connections not parsed after a parser fault (the first: ${escapeControl(s.pipeline.firstParserFault ?? '')})`);
  if (unknown.length) {
    const n = unknown.reduce((sum, [, c]) => sum + c, 0);
    parts.push(`${n} records of unknown type skipped (${unknown.map(([t, c]) => `type ${t}: ${c}`).join(', ')})`);
  }
  return `loupe: ${parts.join(', ')}\n`;
}

async function cmdReplay(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'tree' },
      output: { type: 'string', short: 'o' },
      quiet: { type: 'boolean', default: false },
      otlp: { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) throw new UsageError("replay takes a capture file, or several hosts' captures to replay as one");
  if (positionals.length > 1 && values.otlp) throw new UsageError('--otlp replays one capture at a time');
  const format = values.format as SpanFormat;
  if (!SPAN_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${SPAN_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`);
  // Spans go out in chunks as they come, to -o or stdout: a replay of a long recording holds none of them.
  const file = values.output ? outputFile(values.output) : undefined;
  const chunked = new ChunkedOutput(file ? file.write : io.out);
  const write = chunked.push;
  const flush = () => {
    chunked.flush();
    file?.close();
  };
  let summary: RunSummary;
  let hosts: HostClock[] | undefined;
  try {
    const bar = !values.quiet && io.isTTY ? new ProgressBar((s) => (io.rawErr ?? io.err)(s)) : undefined;
    const progress = bar && ((p: { done: number; total: number }) => bar.update(p.done, p.total));
    if (positionals.length > 1) {
      const merged = replayHosts(positionals, format, write);
      summary = merged.summary;
      hosts = merged.hosts;
    } else
      summary = values.otlp ? await replayFileExporting(positionals[0]!, format, write, { otlp: true }, progress) : replayFile(positionals[0]!, format, write, undefined, progress);
    bar?.clear();
  } finally {
    flush(); // spans from before a fault are kept
  }
  await summary.exporters?.shutdown();
  if (!values.quiet) {
    io.err(summaryLine(summary));
    if (hosts) io.err(`loupe: hosts: ${describeHosts(hosts)}\n`);
    const x = summary.exporters?.traceStats;
    if (x) io.err(exportLine(x));
  }
  return 0;
}

function exportLine(x: ExportStats): string {
  return `loupe: OTLP: ${x.exported} spans exported, ${x.unsampled} left out by the sampler, ${x.dropped} dropped, ${x.failedBatches} failed batches${x.lastError ? ` (last error: ${x.lastError})` : ''}\n`;
}

function pcapLine(p: PcapImportStats): string {
  const parts = [`${p.packets} packets`, `${p.tcpSegments} TCP segments`, `${p.flows} flows`];
  const skipped = Object.entries(p.skipped);
  if (skipped.length) parts.push(`skipped ${skipped.map(([k, v]) => `${v} ${k}`).join(', ')}`);
  if (p.retransmittedBytes) parts.push(`${p.retransmittedBytes} retransmitted bytes dropped`);
  if (p.gaps) parts.push(`${p.gaps} holes (${p.gapBytes} bytes) reported as loss`);
  if (p.truncatedBytes) parts.push(`${p.truncatedBytes} bytes cut by the capture's snap length`);
  if (p.malformedCount) parts.push(`${p.malformedCount} malformed packets (first at byte ${p.malformed[0]!.offset}: ${p.malformed[0]!.reason})`);
  const cut = p.truncatedEnd
    ? `loupe: warning: the file ends inside its last record (byte ${p.truncatedEnd.offset}: ${p.truncatedEnd.reason}); every packet before it was read\n`
    : '';
  return `${cut}loupe: ${parts.join(', ')}\n`;
}

function parsePorts(values: string[] | undefined): Map<number, Protocol> {
  const ports = new Map<number, Protocol>();
  for (const v of values ?? []) {
    const m = /^(\d{1,5})=(\w+)$/.exec(v);
    if (!m || Number(m[1]) > 65535 || !PROTOCOLS.includes(m[2] as Protocol)) {
      throw new UsageError(`--port takes PORT=PROTO with PROTO one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(v)}`);
    }
    ports.set(Number(m[1]), m[2] as Protocol);
  }
  return ports;
}

function cmdParse(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'jsonl' },
      port: { type: 'string', multiple: true },
      quiet: { type: 'boolean', default: false },
      'no-redact': { type: 'boolean', default: false },
      proto: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('parse takes exactly one input file');
  if (values.format !== 'jsonl' && values.format !== 'table') throw new UsageError(`--format must be jsonl or table, got ${JSON.stringify(values.format)}`);
  let summary: ParseSummary;
  const chunked = new ChunkedOutput(io.out);
  try {
    summary = parseFile(positionals[0]!, values.format, chunked.push, parsePorts(values.port), !values['no-redact'], values.proto);
  } catch (e) {
    if (e instanceof LoupeError && e.code === 'LOUPE_PROTO') throw new UsageError(e.message);
    throw e;
  } finally {
    chunked.flush(); // messages from before a fault are kept
  }
  if (!values.quiet) {
    if (summary.pcap) io.err(pcapLine(summary.pcap));
    const conns = Object.entries(summary.connections)
      .map(([p, n]) => `${n} ${p}`)
      .join(', ');
    const unknown = Object.values(summary.unknown).reduce((a, b) => a + b, 0);
    io.err(
      `loupe: ${summary.messages} messages, ${summary.errors} with parse errors; connections: ${conns || 'none'}${unknown ? `; ${unknown} records of unknown type skipped` : ''}\n`,
    );
  }
  return 0;
}

function cmdImport(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { output: { type: 'string', short: 'o' } } });
  if (positionals.length !== 1 || !values.output) throw new UsageError('import takes one pcap or pcapng file and -o OUT');
  const scan = openInput(positionals[0]!, 'both');
  if (!scan.pcap) throw new UsageError(`${positionals[0]} is not a pcap or pcapng file (use convert for captures)`);
  // A capture's header names its processes before its records, and a pcap's
  // pseudo-processes are known only at its end: a first pass names them, so
  // the second streams to the output in bounded memory (twice the CPU of one).
  for (const _batch of scan.batches) {
    // read only for the processes it names
  }
  const input = openInput(positionals[0]!, 'both');
  input.header = scan.header;
  const out = values.output;
  if (out.endsWith('.jsonl')) {
    const file = wholeFile(out);
    try {
      file.write(Buffer.from(`${headerToJsonLine(input.header)}\n`));
      for (const batch of input.batches) for (const ev of batch) file.write(Buffer.from(`${recordToJsonLine(encodeEvent(ev))}\n`));
    } catch (e) {
      file.abort();
      throw e;
    }
    file.commit();
  } else {
    const writer = new CaptureWriter(out, input.header);
    try {
      for (const batch of input.batches) for (const ev of batch) writer.write(encodeEvent(ev));
    } catch (e) {
      writer.abort();
      throw e;
    }
    writer.close();
  }
  io.err(pcapLine(scan.pcap));
  return 0;
}

function cmdConvert(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { to: { type: 'string' } } });
  if (positionals.length !== 2) throw new UsageError('convert takes an input and an output file');
  const [input, output] = positionals as [string, string];
  const to = values.to ?? (output.endsWith('.jsonl') ? 'jsonl' : output.endsWith('.loupe') ? 'binary' : undefined);
  if (to !== 'jsonl' && to !== 'binary') throw new UsageError('say --to binary or --to jsonl (or name OUT *.loupe or *.jsonl)');
  const source = openCapture(input);
  let count = 0;
  if (to === 'binary') {
    const writer = new CaptureWriter(output, source.header);
    try {
      for (const batch of source.batches()) for (const r of batch) writer.write(r.bytes);
    } catch (e) {
      writer.abort();
      throw e;
    }
    writer.close();
    count = writer.records;
  } else {
    const file = wholeFile(output);
    try {
      file.write(Buffer.from(`${headerToJsonLine(source.header)}\n`));
      for (const batch of source.batches()) {
        for (const r of batch) {
          let line: string;
          try {
            line = recordToJsonLine(r.bytes);
          } catch (e) {
            throw new CaptureError(input, r.where, (e as Error).message);
          }
          file.write(Buffer.from(`${line}\n`));
          count++;
        }
      }
    } catch (e) {
      file.abort();
      throw e;
    }
    file.commit();
  }
  io.err(`loupe: wrote ${count} records to ${output} (${to})\n`);
  return 0;
}

function intOption(name: string, value: unknown, min: number, max: number, label = `--${name}`): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${label} takes a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/** --cpus LIST: CPUs this machine has online, or a usage error that names the ones it has. */
function cpusOption(text: string, label = '--cpus'): number[] {
  const cpus = parseCpuList(text);
  if (!cpus) throw new UsageError(`${label} takes a CPU list like 1, 0,2 or 2-3, got ${JSON.stringify(text)}`);
  const online = onlineCpus();
  const offline = online ? cpus.filter((c) => !online.cpus.includes(c)) : [];
  if (offline.length) throw new UsageError(`${label} ${text}: CPU ${offline.join(', ')} is not online here (online: ${online!.text})`);
  return cpus;
}

interface LiveCommand {
  session: Omit<LiveSessionOptions, 'write'>;
  duration?: number;
  output?: string;
  quiet: boolean;
}

function liveCommand(args: string[], command: 'run' | 'record'): LiveCommand {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: flagSpecs(command === 'run') });
  if (positionals.length) throw new UsageError(`${command} takes no positional arguments, got ${positionals.join(' ')}`);
  const configFile = values.config as string | undefined;
  let config: LoupeConfig;
  try {
    config = loadConfig(configFile);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.source === 'file' ? `--config ${e.message}` : e.message);
    throw e;
  }
  const given = Object.fromEntries(Object.entries(values).filter(([, x]) => x !== undefined && x !== false));
  const v = { ...configAsFlags(config), ...given } as Record<string, unknown>;
  // A value the configuration gave is named by its key (and its variable), not by a flag nobody typed.
  const label = (flag: string): string => {
    if (flag in given || !KEY_OF_FLAG[flag]) return `--${flag}`;
    const key = KEY_OF_FLAG[flag]!;
    const envName = ENV_OF_KEY[key];
    return envName && process.env[envName] !== undefined ? `${envName} (${key})` : `${key} in --config ${configFile ?? ''}`.trim();
  };
  const list = (x: unknown) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  const pids = list(v.pid).map((p) => intOption('pid', p, 1, 2 ** 22, label('pid'))!);
  const ports = list(v.port).map((p) => intOption('port', p, 1, 65535, label('port'))!);
  const openPorts = list(v['open-port']).map((p) => intOption('open-port', p, 1, 65535, label('open-port'))!);
  let exe: RegExp | undefined;
  if (v['exe-glob'] !== undefined) {
    if (v.exe !== undefined) throw new UsageError('give --exe or --exe-glob, not both');
    exe = globToRegExp(String(v['exe-glob']));
  } else if (v.exe !== undefined) {
    try {
      exe = new RegExp(String(v.exe));
    } catch (e) {
      throw new UsageError(`--exe: ${(e as Error).message}`);
    }
  }
  let container: RegExp | undefined;
  if (v.container !== undefined) {
    try {
      container = new RegExp(String(v.container));
    } catch (e) {
      throw new UsageError(`--container: ${(e as Error).message}`);
    }
  }
  const format = (v.format ?? (command === 'run' ? 'tree' : 'jsonl')) as SpanFormat;
  if (!SPAN_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${SPAN_FORMATS.join(', ')}, got ${JSON.stringify(v.format)}`);
  const capturePath = (command === 'record' ? v.output : v.record) as string | undefined;
  if (command === 'record' && !capturePath) throw new UsageError('record needs -o FILE.loupe');
  const ringMb = intOption('ring-mb', v['ring-mb'], 1, 1024, label('ring-mb')) ?? 16;
  if ((ringMb & (ringMb - 1)) !== 0) throw new UsageError(`${label('ring-mb')} must be a power of two, got ${ringMb}`);
  const cpus = v.cpus === undefined ? undefined : cpusOption(String(v.cpus), label('cpus'));
  const duration = v.duration === undefined ? undefined : Number(v.duration);
  if (duration !== undefined && !(duration > 0)) throw new UsageError(`--duration takes seconds > 0, got ${JSON.stringify(v.duration)}`);
  return {
    session: {
      pids,
      ports,
      ...(exe ? { exe } : {}),
      ...(container ? { container } : {}),
      ...(openPorts.length ? { openPorts } : {}),
      ...(cpus ? { cpus } : {}),
      maxPayload: intOption('max-payload', v['max-payload'], 0, CONSTANTS.LOUPE_MAX_COPY, label('max-payload')) ?? DEFAULT_MAX_PAYLOAD,
      ringBytes: ringMb << 20,
      tlsLibraries: v['no-tls'] ? [] : v['ssl-lib'] !== undefined ? list(v['ssl-lib']).map(String) : systemLibssl(),
      // Without --ssl-lib, the libssl files watched programs load get probes too.
      tlsDiscover: !v['no-tls'] && v['ssl-lib'] === undefined,
      redact: !v['no-redact'],
      goProbes: !v['no-go'],
      goInject: !v['no-go'] && !v['no-inject'],
      httpInject: !v['no-inject'],
      goInjectDespiteFionread: Boolean(v['inject-despite-fionread']),
      tcpOptions: !v['no-tcp-options'],
      goTls: !v['no-tls'],
      format,
      exports: {
        otlp: Boolean(v.otlp),
        prometheusPort: intOption('prometheus-port', v['prometheus-port'], 1, 65535, label('prometheus-port')) ?? 0,
        ...(config.export.sampler ? { sampler: config.export.sampler } : {}),
      },
      rules: { routes: config.routes, services: config.services },
      ...(capturePath ? { capturePath } : {}),
    },
    ...(duration !== undefined ? { duration } : {}),
    ...(command === 'run' && typeof v.output === 'string' ? { output: v.output } : {}),
    quiet: Boolean(v.quiet),
  };
}

/**
 * The -o file of replay and run, written as text comes. Opened at the first
 * write; close() makes it anyway, empty, when no span came (as asked).
 */
function outputFile(path: string): { write: (text: string) => void; close: () => void } {
  let file: OutputFile | undefined;
  const open = () => (file ??= streamFile(path));
  return { write: (text) => open().write(Buffer.from(text)), close: () => open().commit() };
}

/** run and record: start, wait for a signal or the duration, stop, report. */
async function cmdLive(args: string[], io: Out, command: 'run' | 'record'): Promise<number> {
  const cmd = liveCommand(args, command);
  // Before a program is attached: settings and output names a run would only fail on later.
  if (cmd.session.exports) validateExportEnv(cmd.session.exports);
  if (cmd.session.capturePath) checkTarget(cmd.session.capturePath);
  if (command === 'run' && cmd.output) checkTarget(cmd.output);
  // record writes no spans; run streams them to stdout or to -o as they come (an agent runs for
  // days: holding its output until the end grew without bound).
  const file = command === 'run' && cmd.output ? outputFile(cmd.output) : undefined;
  const write = command === 'record' ? () => {} : file ? file.write : io.out;
  // Injection concerns Go programs only: said once one is watched, not to a host that runs none.
  let injection: Propagation | undefined;
  let goWatched = false;
  const session = new LiveSession({
    ...cmd.session,
    write,
    onGo: (r) => {
      if (cmd.quiet) return;
      io.err(`loupe: ${goLine(r)}\n`);
      if ('error' in r || goWatched || !injection) return;
      goWatched = true;
      io.err(
        `loupe: traceparent injection into Go programs' HTTP/1 requests: ${injection.inject ? `on (sk_msg + sock_ops${injection.reason ? `; ${injection.reason}` : ''})` : `off (${injection.reason})`}\n`,
      );
    },
    onChosen: (pid, by, exe) => {
      if (!cmd.quiet) io.err(`loupe: watching pid ${pid}${exe ? ` (${exe})` : ''}: ${CHOSEN_BECAUSE[by]}\n`);
    },
    onTls: (lib, pid, error) => {
      if (!cmd.quiet) io.err(error ? `loupe: no TLS probes on ${lib} (pid ${pid}): ${error}\n` : `loupe: TLS plaintext also from ${lib} (loaded by pid ${pid})\n`);
    },
  });
  // Listening before "attached" is said: whoever reads that may signal at once, and Node's first
  // SIGINT listener takes a few ms to set up (until then a SIGINT kills the agent, exit by signal).
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  process.once('SIGINT', requestStop);
  process.once('SIGTERM', requestStop);
  let started;
  try {
    started = session.start();
  } catch (e) {
    process.off('SIGINT', requestStop);
    process.off('SIGTERM', requestStop);
    file?.close();
    if (e instanceof LiveError) {
      io.err(`loupe: the live agent cannot run here: ${e.message}\n`);
      return 3;
    }
    throw e;
  }
  const watching =
    [
      cmd.session.pids?.length ? `pids ${cmd.session.pids.join(',')}` : '',
      cmd.session.exe ? `executables matching /${cmd.session.exe.source}/` : '',
      cmd.session.container ? `containers matching /${cmd.session.container.source}/` : '',
      cmd.session.ports?.length ? `ports ${cmd.session.ports.join(',')}` : '',
      cmd.session.openPorts?.length ? `processes listening on ${cmd.session.openPorts.join(',')}` : '',
    ]
      .filter(Boolean)
      .join(', ') || 'every process';
  const tls = cmd.session.tlsLibraries.length ? cmd.session.tlsLibraries.join(', ') : 'off';
  const p = started.propagation;
  injection = p;
  const cpus = cmd.session.cpus ? `; the agent on CPU ${cmd.session.cpus.join(',')}` : '';
  io.err(
    `loupe: attached ${started.programs.length} programs; watching ${watching}${cpus}; TLS plaintext: ${tls}; kernel lockdown: ${started.lockdown}` +
      ` (bpf_probe_write_user ${started.lockdown === 'none' ? 'possible, not used' : 'refused'})\n` +
      `loupe: Go probes: ${cmd.session.goProbes ? 'on' : 'off'}; connection-pair matching: on; ` +
      `through NAT by connection tracking: ${started.conntrack.on ? 'on' : `off (${started.conntrack.reason})`}\n` +
      // Issue 24: every way a trace may cross hosts, and why each that is off is off.
      `loupe: context across hosts: header in Go programs' HTTP/1 calls: ${!cmd.session.goProbes ? 'off (Go probes off)' : p.inject ? 'on, said when a Go program is watched' : `off (${p.reason})`}; ` +
      `header in other programs' HTTP/1 calls: ${p.http.on ? `on (the trace the calling thread serves, else a new one${p.http.reason ? `; ${p.http.reason}` : ''})` : `off (${p.http.reason})`}; ` +
      `TCP header options: ${p.tcpOptions.on ? "on (any TCP protocol; read where Loupe runs on the server's host)" : `off (${p.tcpOptions.reason})`}; ` +
      `joined on this host or in a merged replay: connection pairs, conntrack\n`,
  );
  const t0 = process.hrtime.bigint();
  let last = { t: t0, records: 0 };
  const progress =
    command === 'record' && !cmd.quiet
      ? setInterval(() => {
          const now = process.hrtime.bigint();
          const rate = ((session.progress.records - last.records) * 1e9) / Number(now - last.t);
          last = { t: now, records: session.progress.records };
          io.err(`loupe: recording: ${session.progress.records} records (${Math.round(rate)}/s), ${session.progress.lost} lost, ${session.progress.spans} spans\n`);
        }, 1000)
      : undefined;
  if (cmd.duration !== undefined) setTimeout(requestStop, cmd.duration * 1000).unref();
  await stopRequested;
  if (progress) clearInterval(progress);
  const summary = await session.stop();
  file?.close();
  if (!cmd.quiet) {
    io.err(summaryLine(summary));
    const x = summary.exporters?.traceStats;
    if (x) io.err(exportLine(x));
    if (cmd.session.capturePath) io.err(`loupe: wrote ${summary.records} records to ${cmd.session.capturePath}\n`);
    if ((p.inject && goWatched) || p.http.on) {
      const n = session.injected;
      io.err(
        `loupe: traceparent put on ${n.inserted} requests; ${n.refused} left as they were for want of a place (no request line where expected, or a head not whole in one write), ` +
          `${n.kept} because they carry a traceparent or a signature of their own\n`,
      );
    }
  }
  return 0;
}

/** Said when a process is chosen after the start: a user sees what a pattern or a port took in, as it happens. */
const CHOSEN_BECAUSE: Record<ChosenBy, string> = {
  exe: 'its executable matches --exe',
  'exe-late': 'its executable matches --exe (decided from /proc at its first record: its exec record was lost)',
  'forked-pending': 'forked by a program --exe chose, before the choice',
  'open-port': 'it listens on a port of --open-port',
  container: 'it runs in a container matching --container',
};

function goLine(r: GoResult): string {
  if ('error' in r) return `Go program ${r.exe} (pid ${r.pid}) not instrumented: ${r.error}`;
  const fns = r.functions
    .filter((f) => !f.startsWith('runtime.'))
    .map((f) => f.replace(/^(net\/http|google\.golang\.org\/grpc)\./, (_, pkg: string) => (pkg === 'net/http' ? 'http.' : 'grpc.')))
    .join(', ');
  // Said once they are in place: requests it made before this line went without probes (and without a header).
  return `Go probes in place on ${r.exe} (pid ${r.pid}, ${r.goVersion}): goroutines, ${fns}; ${r.probes} uprobes, struct offsets from ${r.offsetsFrom}${r.injects ? `; traceparent into its HTTP/1 requests (header map: ${r.headerMap})` : ''}${r.adoptedSockets ? `; ${r.adoptedSockets} open connections get traceparent too` : ''}${r.skipped ? `; ${r.skipped}` : ''}`;
}

async function cmdScenario(args: string[], io: Out): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { record: { type: 'string' }, capture: { type: 'string', multiple: true } } });
  if ((sub !== 'run' && sub !== 'check') || positionals.length !== 1) throw new UsageError('scenario run NAME [--record FILE] | scenario check NAME [--capture FILE ...]');
  let scenario: Scenario;
  try {
    scenario = loadScenario(positionals[0]!);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
  let result: CheckResult;
  if (sub === 'check') {
    // Several --capture: the hosts' recordings of one run, replayed as one (see pipeline/merge.ts).
    const captures = values.capture ?? (scenario.capture ? [path.resolve(SCENARIO_DIR, '..', scenario.capture)] : []);
    if (!captures.length) throw new UsageError(`scenario ${scenario.name} names no capture: give --capture FILE`);
    result = checkScenario(scenario, spansOfCaptures(captures).spans);
  } else {
    try {
      ({ result } = await runScenario(scenario, { ...(values.record ? { record: values.record } : {}), log: (l) => io.err(`${l}\n`) }));
    } catch (e) {
      if (e instanceof LiveError) {
        io.err(`loupe: the live agent cannot run here: ${e.message}\n`);
        return 3;
      }
      if (e instanceof ScenarioError) {
        io.err(`loupe: scenario ${scenario.name}: ${e.message}\n`);
        return 4;
      }
      throw e;
    }
  }
  for (const line of result.lines) io.out(`${line}\n`);
  io.out(`scenario ${scenario.name}: ${result.ok ? 'ok' : 'FAILED'}\n`);
  return result.ok ? 0 : 4;
}

type SpansOf = ReturnType<typeof spansOfCaptures>['spans'];

function cmdDiff(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'text' },
      check: { type: 'boolean', default: false },
      a: { type: 'string', multiple: true },
      b: { type: 'string', multiple: true },
    },
  });
  // Two files, or each side as one host's capture or several (--a FILE --a FILE --b FILE): a multi-host run merged.
  const sides = values.a || values.b ? [values.a ?? [], values.b ?? []] : positionals.map((f) => [f]);
  if (sides.length !== 2 || sides.some((s) => s.length === 0) || (positionals.length > 0 && (values.a || values.b)))
    throw new UsageError('diff takes two capture files, or each side as --a FILE ... --b FILE ... (several files: one run on several hosts)');
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError(`--format must be text or json, got ${JSON.stringify(values.format)}`);
  const [a, b] = sides.map((files, i) => {
    const side = spansOfCaptures(files);
    if (side.hosts) io.err(`loupe: side ${'AB'[i]} hosts: ${describeHosts(side.hosts)}\n`);
    return side.spans;
  }) as [SpansOf, SpansOf];
  const [nameA, nameB] = sides.map((files) => files.join(' + ')) as [string, string];
  const d = diffSpans(a, b);
  io.out(values.format === 'json' ? `${JSON.stringify(d, null, 2)}\n` : renderDiff(d, nameA, nameB));
  return values.check && d.changed ? 4 : 0;
}

function cmdView(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { trace: { type: 'string' }, width: { type: 'string' } } });
  if (positionals.length === 0) throw new UsageError("view takes a capture file, or several hosts' captures to view as one");
  const width = intOption('width', values.width, 10, 400) ?? 40;
  const { spans, hosts } = spansOfCaptures(positionals);
  if (hosts) io.err(`loupe: hosts: ${describeHosts(hosts)}\n`);
  io.out(renderWaterfall(spans, { width, ...(values.trace !== undefined ? { trace: values.trace } : {}) }));
  // The whole capture's service graph after its traces: how each caller's calls were joined to their callee.
  if (values.trace === undefined && spans.length > 0) io.out(`service graph edges\n${edgesTable(spans)}`);
  return 0;
}

function cmdReport(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { output: { type: 'string', short: 'o' }, edges: { type: 'boolean' } } });
  if (positionals.length === 0 || (!values.output && !values.edges))
    throw new UsageError("report takes a capture file (or several hosts' captures) and -o REPORT.html, or --edges");
  const { spans, summary, hosts } = spansOfCaptures(positionals);
  if (hosts) io.err(`loupe: hosts: ${describeHosts(hosts)}\n`);
  if (values.edges) {
    io.out(edgesTable(spans));
    if (!values.output) return 0;
  }
  const report = wholeFile(values.output!);
  report.write(Buffer.from(renderReport(spans, positionals.map((p) => path.basename(p)).join(' + '))));
  report.commit();
  io.err(`loupe: wrote ${values.output}: ${summary.correlator.spans} spans\n`);
  return 0;
}

export function main(argv: string[], given: Out): number | Promise<number> {
  const [command, ...rest] = argv;
  // Lines on stderr name programs, files, libraries and errors anyone may have named: what a terminal would act on is shown instead.
  const io: Out = { ...given, rawErr: given.err, err: (s) => given.err(s.split('\n').map(escapeControl).join('\n')) };
  try {
    switch (command) {
      case 'replay':
        return cmdReplay(rest, io).catch((e) => handleError(e, command, io));
      case 'convert':
        return cmdConvert(rest, io);
      case 'parse':
        return cmdParse(rest, io);
      case 'import':
        return cmdImport(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      case 'run':
      case 'record':
        return cmdLive(rest, io, command).catch((e) => handleError(e, command, io));
      case 'view':
        return cmdView(rest, io);
      case 'scenario':
        return cmdScenario(rest, io).catch((e) => handleError(e, command, io));
      case 'report':
        return cmdReport(rest, io);
      case 'diff':
        return cmdDiff(rest, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    return handleError(e, command, io);
  }
}

function handleError(e: unknown, command: string | undefined, io: Out): number {
  if (e instanceof UsageError || e instanceof ExportConfigError || (e as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
    io.err(`loupe: ${(e as Error).message}\n${command === undefined ? USAGE : "run 'loupe help' for usage\n"}`);
    return EXIT_STATUS.input;
  }
  // Every error Loupe means to raise says what and where, and exits with its kind's status (src/errors.ts).
  if (e instanceof LoupeError) {
    io.err(`loupe: ${e.message}\n`);
    return e.exitStatus;
  }
  io.err(`loupe: internal error: ${(e as Error).stack ?? e}\n`);
  return 1;
}

if (require.main === module) {
  // `loupe replay ... | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  void Promise.resolve(
    main(process.argv.slice(2), {
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
      isTTY: process.stderr.isTTY === true,
    }),
  ).then((code) => {
    process.exitCode = code;
  });
}
