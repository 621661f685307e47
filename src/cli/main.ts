#!/usr/bin/env node
/**
 * loupe: the command line. Each command is thin: it reads arguments, calls
 * the core and maps failures to exit codes (2: bad input or usage, 1: bug).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { CaptureError, CaptureWriter } from '../events/capture';
import { headerToJsonLine, recordToJsonLine } from '../events/jsonl';
import { openCapture } from '../sources/capture-file';
import { REPLAY_FORMATS, replayFile, type ReplayFormat, type ReplaySummary } from '../pipeline/replay';
import { openInput, parseFile, type ParseSummary } from '../pipeline/parse';
import { encodeEvent } from '../events/codec';
import { PROTOCOLS, type Protocol } from '../streams/detect';
import type { PcapImportStats } from '../sources/pcap/import';

export class UsageError extends Error {}

export const USAGE = `loupe — eBPF auto-instrumentation workbench

Usage:
  loupe replay FILE [--format tree|jsonl|otlp-json] [-o OUT] [--quiet]
      Replay a capture (*.loupe or its JSONL form) into spans.
      tree: a span tree per trace; jsonl: one span per line;
      otlp-json: an OTLP/JSON ExportTraceServiceRequest.
      A summary (records, spans, incomplete, skipped) goes to stderr.
  loupe convert IN OUT [--to binary|jsonl]
      Convert a capture between the binary form and the JSONL form.
      The target form follows OUT's extension (.loupe / .jsonl) unless --to says.
  loupe parse FILE [--format jsonl|table] [--port N=PROTO ...] [--no-redact] [--quiet]
      Print every parsed request and response in a capture, pcap or pcapng
      file: one JSON object per message (docs/formats.md) or a table.
      --port 8443=http1 forces a protocol for a port (either end) instead of
      detection. PROTO: http1, http2, postgres, mysql, redis, tls.
      Query values and Authorization/Cookie headers are REDACTED unless
      --no-redact. A summary goes to stderr unless --quiet.
  loupe import FILE.pcap|FILE.pcapng -o OUT.loupe|OUT.jsonl
      Turn a packet capture into a Loupe capture: each TCP flow reassembled
      and shown as a client and a server socket, so replay gives both spans.
  loupe help

Exit status: 0 ok; 2 bad input (corrupt or truncated capture, bad record,
bad arguments) with the file and byte offset or line on stderr; 1 internal error.

Planned (see the issues): run, record, view, report, diff.
`;

type Out = { out: (s: string) => void; err: (s: string) => void };

function summaryLine(s: ReplaySummary): string {
  const unknown = Object.entries(s.pipeline.unknownRecords);
  const parts = [
    `${s.records} records`,
    `${s.pipeline.connections} connections`,
    `${s.correlator.spans} spans`,
    `${s.correlator.incomplete} incomplete`,
  ];
  if (s.correlator.orphanResponses) parts.push(`${s.correlator.orphanResponses} responses without a request`);
  if (s.correlator.parseErrors) parts.push(`${s.correlator.parseErrors} parse errors`);
  if (s.pipeline.lostRecords) parts.push(`${s.pipeline.lostRecords} records lost by the kernel side`);
  if (unknown.length) {
    const n = unknown.reduce((sum, [, c]) => sum + c, 0);
    parts.push(`${n} records of unknown type skipped (${unknown.map(([t, c]) => `type ${t}: ${c}`).join(', ')})`);
  }
  return `loupe: ${parts.join(', ')}\n`;
}

function cmdReplay(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string', default: 'tree' }, output: { type: 'string', short: 'o' }, quiet: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('replay takes exactly one capture file');
  const format = values.format as ReplayFormat;
  if (!REPLAY_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${REPLAY_FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`);
  const chunks: string[] = [];
  const write = values.output ? (s: string) => chunks.push(s) : io.out;
  const flush = () => {
    if (values.output) fs.writeFileSync(values.output, chunks.join(''));
  };
  let summary: ReplaySummary;
  try {
    summary = replayFile(positionals[0]!, format, write);
  } finally {
    flush(); // spans from before a fault are kept
  }
  if (!values.quiet) io.err(summaryLine(summary));
  return 0;
}

function pcapLine(p: PcapImportStats): string {
  const parts = [`${p.packets} packets`, `${p.tcpSegments} TCP segments`, `${p.flows} flows`];
  const skipped = Object.entries(p.skipped);
  if (skipped.length) parts.push(`skipped ${skipped.map(([k, v]) => `${v} ${k}`).join(', ')}`);
  if (p.retransmittedBytes) parts.push(`${p.retransmittedBytes} retransmitted bytes dropped`);
  if (p.gaps) parts.push(`${p.gaps} holes (${p.gapBytes} bytes) reported as loss`);
  if (p.truncatedBytes) parts.push(`${p.truncatedBytes} bytes cut by the capture's snap length`);
  if (p.malformedCount) parts.push(`${p.malformedCount} malformed packets (first at byte ${p.malformed[0]!.offset}: ${p.malformed[0]!.reason})`);
  return `loupe: ${parts.join(', ')}\n`;
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
      format: { type: 'string', default: 'jsonl' }, port: { type: 'string', multiple: true },
      quiet: { type: 'boolean', default: false }, 'no-redact': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError('parse takes exactly one input file');
  if (values.format !== 'jsonl' && values.format !== 'table') throw new UsageError(`--format must be jsonl or table, got ${JSON.stringify(values.format)}`);
  const summary: ParseSummary = parseFile(positionals[0]!, values.format, io.out, parsePorts(values.port), !values['no-redact']);
  if (!values.quiet) {
    if (summary.pcap) io.err(pcapLine(summary.pcap));
    const conns = Object.entries(summary.connections).map(([p, n]) => `${n} ${p}`).join(', ');
    const unknown = Object.values(summary.unknown).reduce((a, b) => a + b, 0);
    io.err(`loupe: ${summary.messages} messages, ${summary.errors} with parse errors; connections: ${conns || 'none'}${unknown ? `; ${unknown} records of unknown type skipped` : ''}\n`);
  }
  return 0;
}

function cmdImport(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { output: { type: 'string', short: 'o' } } });
  if (positionals.length !== 1 || !values.output) throw new UsageError('import takes one pcap or pcapng file and -o OUT');
  const input = openInput(positionals[0]!, 'both');
  if (!input.pcap) throw new UsageError(`${positionals[0]} is not a pcap or pcapng file (use convert for captures)`);
  const out = values.output;
  if (out.endsWith('.jsonl')) {
    const fd = fs.openSync(out, 'w', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, `${headerToJsonLine(input.header)}\n`);
      for (const batch of input.batches) for (const ev of batch) fs.writeSync(fd, `${recordToJsonLine(encodeEvent(ev))}\n`);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    const writer = new CaptureWriter(out, input.header);
    try {
      for (const batch of input.batches) for (const ev of batch) writer.write(encodeEvent(ev));
    } finally {
      writer.close();
    }
  }
  io.err(pcapLine(input.pcap));
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
    } finally {
      writer.close();
    }
    count = writer.records;
  } else {
    const fd = fs.openSync(output, 'w', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, `${headerToJsonLine(source.header)}\n`);
      for (const batch of source.batches()) {
        for (const r of batch) {
          let line: string;
          try {
            line = recordToJsonLine(r.bytes);
          } catch (e) {
            throw new CaptureError(input, r.where, (e as Error).message);
          }
          fs.writeSync(fd, `${line}\n`);
          count++;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  io.err(`loupe: wrote ${count} records to ${output} (${to})\n`);
  return 0;
}

export function main(argv: string[], io: Out): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'replay':
        return cmdReplay(rest, io);
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
      case 'run': case 'record': case 'view': case 'report': case 'diff':
        throw new UsageError(`'${command}' is not built yet; see the project's open issues`);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    if (e instanceof CaptureError) {
      io.err(`loupe: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.err(`loupe: ${(e as Error).message}\n${command === undefined ? USAGE : "run 'loupe help' for usage\n"}`);
      return 2;
    }
    io.err(`loupe: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `loupe replay ... | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const code = main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  });
  process.exitCode = code;
}
