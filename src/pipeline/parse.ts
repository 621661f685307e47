/**
 * The workbench's `loupe parse`: any input (capture, JSONL capture, pcap,
 * pcapng) through connection tracking and the parsers, messages out; no
 * correlation.
 */
import * as fs from 'node:fs';
import { CaptureError, type CaptureHeader } from '../events/capture';
import { decodeRecord, RecordError } from '../events/codec';
import type { Event } from '../events/types';
import { openCapture } from '../sources/capture-file';
import { isPcap } from '../sources/pcap/file';
import { streamPcapFile, type PcapImportStats } from '../sources/pcap/import';
import { ConnectionTracker, type Connection } from '../streams/connections';
import type { Protocol } from '../parsers/protocols';
import { messageRecord, tableHeader, tableRow } from '../export/messages';
import { ProtoDecoder } from '../parsers/grpc/proto';
import type { MessageBase } from '../parsers/types';
import type { Http2Message } from '../parsers/http2/messages';
import { openRegularFile } from '../events/input-file';

export interface InputEvents {
  header: CaptureHeader;
  /** Batches of decoded events; unknown record types are counted in `unknown`. */
  batches: Iterable<Event[]>;
  unknown: Record<string, number>;
  pcap?: PcapImportStats;
}

function readHead(file: string): Buffer {
  let fd: number;
  try {
    fd = openRegularFile(file);
  } catch (e) {
    throw new CaptureError(file, 'open', (e as Error).message);
  }
  try {
    const b = Buffer.alloc(8);
    return b.subarray(0, fs.readSync(fd, b, 0, 8, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Open any input Loupe reads. `pcapViews` chooses how pcap flows become
 * sockets. A pcap streams: its header's process list is complete only once
 * the batches are read.
 */
export function openInput(file: string, pcapViews: 'both' | 'server'): InputEvents {
  if (isPcap(readHead(file))) {
    let fd: number;
    try {
      fd = openRegularFile(file);
    } catch (e) {
      throw new CaptureError(file, 'open', (e as Error).message);
    }
    const { header, batches, stats } = streamPcapFile(fd, file, { views: pcapViews });
    function* closing(): Generator<Event[]> {
      try {
        yield* batches;
      } finally {
        fs.closeSync(fd);
      }
    }
    return { header, batches: closing(), unknown: {}, pcap: stats };
  }
  const source = openCapture(file);
  const unknown: Record<string, number> = {};
  function* batches(): Generator<Event[]> {
    for (const records of source.batches()) {
      const events: Event[] = [];
      for (const r of records) {
        let decoded;
        try {
          decoded = decodeRecord(r.bytes);
        } catch (e) {
          if (e instanceof RecordError) {
            yield events;
            throw new CaptureError(file, r.where, e.reason);
          }
          throw e;
        }
        if (decoded.type === 'unknown') unknown[decoded.recordType] = (unknown[decoded.recordType] ?? 0) + 1;
        else events.push(decoded);
      }
      yield events;
    }
  }
  return { header: source.header, batches: batches(), unknown };
}

export interface ParseSummary {
  messages: number;
  errors: number;
  connections: Record<string, number>;
  unknown: Record<string, number>;
  pcap?: PcapImportStats;
}

export function parseFile(
  file: string,
  format: 'jsonl' | 'table',
  write: (s: string) => void,
  portProtocols: ReadonlyMap<number, Protocol> = new Map(),
  redact = true,
  protoDir?: string,
): ParseSummary {
  const proto = protoDir === undefined ? undefined : new ProtoDecoder(protoDir);
  const input = openInput(file, 'server');
  const boot = BigInt(input.header.bootTimeNs);
  const summary: ParseSummary = { messages: 0, errors: 0, connections: {}, unknown: input.unknown };
  let firstTs: bigint | undefined;
  if (format === 'table') write(tableHeader());
  const countProtocol = (conn: Connection) => {
    const p = conn.protocol ?? 'undetected';
    summary.connections[p] = (summary.connections[p] ?? 0) + 1;
  };
  const tracker = new ConnectionTracker(
    {
      onMessage: (conn, m) => {
        summary.messages++;
        if (m.error !== undefined) summary.errors++;
        const record = messageRecord(conn, m, boot, redact);
        if (proto) decodeGrpcBodies(record, m, proto);
        if (format === 'jsonl') write(`${JSON.stringify(record)}\n`);
        else {
          firstTs ??= BigInt(record.ts as string);
          write(tableRow(record, firstTs));
        }
      },
      onClose: (conn) => countProtocol(conn),
    },
    { portProtocols, parserOptions: { keepGrpcPayloads: proto !== undefined } },
  );
  let last = 0n;
  try {
    for (const batch of input.batches) {
      for (const ev of batch) {
        if (ev.ts > last) last = ev.ts;
        tracker.handle(ev);
      }
    }
  } finally {
    tracker.finish(last);
  }
  if (input.pcap) summary.pcap = input.pcap;
  return summary;
}

/** `--proto`: the gRPC message bodies of a record, decoded with the .proto files. */
function decodeGrpcBodies(record: Record<string, unknown>, m: MessageBase, proto: ProtoDecoder): void {
  const h = m as Partial<Http2Message>;
  const service = record.rpcService as string | undefined;
  const method = record.rpcMethod as string | undefined;
  if (!service || !method || !h.grpc?.payloads) return;
  const decoded = proto.decode(service, method, m.kind, h.grpc.payloads);
  if ('messages' in decoded) record.messages = decoded.messages;
  else record.protoError = decoded.error;
}
