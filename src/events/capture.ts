/**
 * The `*.loupe` capture file: a versioned header, then the raw kernel records
 * exactly as the kernel side wrote them, each framed by length and CRC-32.
 * Specified in docs/formats.md; keep the two in step.
 */
import { LoupeError } from '../errors';
import { crc32 } from 'node:zlib';
import { streamFile, wholeFile, writeFully, type OutputFile } from './output-file';

export const MAGIC = Buffer.from('LOUPECAP', 'latin1');
/** Version 2 added the header's checksum; version 1 files (no checksum) are still read. */
export const FORMAT_VERSION = 2;
/** magic(8) + format version u16 + reserved u16 + header length u32 */
export const PREAMBLE_SIZE = 16;
/** After the header (version 2): CRC-32 of the preamble's bytes 8-15 and the header. */
export const HEADER_CRC_SIZE = 4;
/** record length u32 + crc32 u32 */
export const FRAME_SIZE = 8;
/** No kernel record comes near this; a larger length means the framing is broken. */
export const MAX_RECORD_SIZE = 1 << 20;
export const MAX_HEADER_SIZE = 64 << 20;

/** The container a process runs in (found by src/discovery/containers.ts). */
export interface ContainerInfo {
  /** The full container id, 64 hex digits. */
  id: string;
  /** Which runtime's cgroup naming it was found by. */
  runtime: 'podman' | 'docker' | 'containerd' | 'cri-o' | 'kubernetes';
  name?: string;
  image?: string;
  /** From the runtime's Kubernetes labels (io.kubernetes.*), or the pod uid in the cgroup path. */
  k8s?: { podName?: string; namespace?: string; containerName?: string; podUid?: string };
}

export interface ProcessInfo {
  pid: number;
  ppid?: number;
  /** Executable path. */
  exe: string;
  comm?: string;
  cmdline?: string[];
  /** service.name chosen by discovery config; defaults to the executable's base name. */
  service?: string;
  /** The container it runs in (src/discovery/containers.ts): from its cgroup, named by the runtime when one answered. */
  container?: ContainerInfo;
}

export interface CaptureHeader {
  /** Version of bpf/events.h the records follow. */
  eventsVersion: number;
  /** 64-bit seed of the span/trace id generator, 16 hex digits. */
  seed: string;
  host: { hostname: string; kernel: string; arch: string };
  /** Wall-clock Unix time in ns at kernel monotonic time 0, decimal string (exceeds 2^53). */
  bootTimeNs: string;
  processes: ProcessInfo[];
  config: Record<string, unknown>;
  createdBy?: string;
}

/** A capture problem, with where it is. Exit code 2 in the CLI. */
export class CaptureError extends LoupeError {
  constructor(
    public readonly file: string,
    /** Human "where": "byte 1234" or "line 7". */
    public readonly where: string,
    public readonly reason: string,
  ) {
    super('LOUPE_CAPTURE', `${file}: ${where}: ${reason}`);
  }
}

export interface RawRecord {
  /** Where the record starts: file byte offset (binary) or line number (JSONL). */
  where: string;
  bytes: Buffer;
}

export function validateHeader(value: unknown, file: string, where: string): CaptureHeader {
  const fail = (reason: string): never => {
    throw new CaptureError(file, where, `capture header: ${reason}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('not a JSON object');
  const h = value as Record<string, unknown>;
  if (typeof h.eventsVersion !== 'number') fail('eventsVersion must be a number');
  if (typeof h.seed !== 'string' || !/^[0-9a-f]{16}$/.test(h.seed)) fail('seed must be 16 lowercase hex digits');
  const host = h.host as Record<string, unknown> | undefined;
  if (typeof host !== 'object' || host === null) fail('host must be an object');
  for (const k of ['hostname', 'kernel', 'arch']) if (typeof host![k] !== 'string') fail(`host.${k} must be a string`);
  if (typeof h.bootTimeNs !== 'string' || !/^\d+$/.test(h.bootTimeNs)) fail('bootTimeNs must be a decimal string');
  if (!Array.isArray(h.processes)) fail('processes must be an array');
  (h.processes as unknown[]).forEach((p, i) => {
    const proc = p as Record<string, unknown>;
    if (typeof proc !== 'object' || proc === null) fail(`processes[${i}] must be an object`);
    if (!Number.isInteger(proc.pid)) fail(`processes[${i}].pid must be an integer`);
    if (typeof proc.exe !== 'string') fail(`processes[${i}].exe must be a string`);
  });
  if (typeof h.config !== 'object' || h.config === null || Array.isArray(h.config)) fail('config must be an object');
  return h as unknown as CaptureHeader;
}

/** The checksum that follows a version 2 header: over version, reserved, length and the JSON. */
function headerCrc(preamble: Buffer, json: Buffer): number {
  return crc32(json, crc32(preamble.subarray(8, PREAMBLE_SIZE)));
}

export function encodePreamble(header: CaptureHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(PREAMBLE_SIZE);
  MAGIC.copy(pre, 0);
  pre.writeUInt16LE(FORMAT_VERSION, 8);
  pre.writeUInt32LE(json.length, 12);
  const crc = Buffer.alloc(HEADER_CRC_SIZE);
  crc.writeUInt32LE(headerCrc(pre, json));
  return Buffer.concat([pre, json, crc]);
}

export { writeFully };

export function encodeFrame(record: Buffer): Buffer {
  const frame = Buffer.alloc(FRAME_SIZE + record.length);
  frame.writeUInt32LE(record.length, 0);
  frame.writeUInt32LE(crc32(record), 4);
  record.copy(frame, FRAME_SIZE);
  return frame;
}

/**
 * Incremental reader of the binary form: feed it chunks of any size, get the
 * header once and then whole records. Knows absolute byte offsets, so every
 * error names one.
 */
export class CaptureDecoder {
  private pending: Buffer = Buffer.alloc(0);
  /** File offset of pending[0]. */
  private base = 0;
  header: CaptureHeader | undefined;

  constructor(private readonly file: string) {}

  /** A fault found after good records in the same chunk: raised on the next call, so those records are not lost. */
  private deferred: CaptureError | undefined;

  /** Returns the records completed by this chunk. */
  push(chunk: Buffer): RawRecord[] {
    if (this.deferred) throw this.deferred;
    const out: RawRecord[] = [];
    try {
      this.parse(chunk, out);
    } catch (e) {
      if (!(e instanceof CaptureError) || out.length === 0) throw e;
      this.deferred = e;
    }
    return out;
  }

  private parse(chunk: Buffer, out: RawRecord[]): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    const buf = this.pending;
    if (!this.header) {
      if (buf.length < PREAMBLE_SIZE) return;
      if (!buf.subarray(0, 8).equals(MAGIC)) {
        throw new CaptureError(this.file, 'byte 0', `not a Loupe capture: magic is ${JSON.stringify(buf.subarray(0, 8).toString('latin1'))}, expected "LOUPECAP"`);
      }
      const version = buf.readUInt16LE(8);
      if (version !== 1 && version !== FORMAT_VERSION) {
        throw new CaptureError(this.file, 'byte 8', `capture format version ${version} is not supported (this Loupe reads versions 1 to ${FORMAT_VERSION})`);
      }
      const headerLength = buf.readUInt32LE(12);
      if (headerLength > MAX_HEADER_SIZE) {
        throw new CaptureError(this.file, 'byte 12', `header length ${headerLength} exceeds ${MAX_HEADER_SIZE}: the file is corrupt`);
      }
      const crcSize = version >= 2 ? HEADER_CRC_SIZE : 0;
      if (buf.length < PREAMBLE_SIZE + headerLength + crcSize) return;
      if (crcSize) {
        const stored = buf.readUInt32LE(PREAMBLE_SIZE + headerLength);
        const computed = headerCrc(buf.subarray(0, PREAMBLE_SIZE), buf.subarray(PREAMBLE_SIZE, PREAMBLE_SIZE + headerLength));
        if (stored !== computed) {
          throw new CaptureError(
            this.file,
            `byte ${PREAMBLE_SIZE + headerLength}`,
            `capture header checksum mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')}): the header is corrupt`,
          );
        }
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString('utf8', PREAMBLE_SIZE, PREAMBLE_SIZE + headerLength));
      } catch (e) {
        throw new CaptureError(this.file, `byte ${PREAMBLE_SIZE}`, `capture header is not valid JSON (${(e as Error).message})`);
      }
      this.header = validateHeader(parsed, this.file, `byte ${PREAMBLE_SIZE}`);
      pos = PREAMBLE_SIZE + headerLength + crcSize;
    }
    while (buf.length - pos >= FRAME_SIZE) {
      const length = buf.readUInt32LE(pos);
      const at = this.base + pos;
      if (length > MAX_RECORD_SIZE) {
        throw new CaptureError(this.file, `byte ${at}`, `record length ${length} exceeds ${MAX_RECORD_SIZE}: the file is corrupt`);
      }
      if (buf.length - pos - FRAME_SIZE < length) break;
      const bytes = buf.subarray(pos + FRAME_SIZE, pos + FRAME_SIZE + length);
      const stored = buf.readUInt32LE(pos + 4);
      const computed = crc32(bytes);
      if (stored !== computed) {
        throw new CaptureError(
          this.file,
          `byte ${at}`,
          `record checksum mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')}): the file is corrupt`,
        );
      }
      out.push({ where: `byte ${at}`, bytes });
      pos += FRAME_SIZE + length;
    }
    this.pending = buf.subarray(pos);
    this.base += pos;
  }

  /** Call at end of input: anything left over is a truncated file. */
  end(): void {
    if (this.deferred) throw this.deferred;
    if (!this.header) {
      throw new CaptureError(this.file, `byte ${this.pending.length}`, 'truncated: the file ends inside the capture header');
    }
    if (this.pending.length > 0) {
      const need = this.pending.length >= FRAME_SIZE ? FRAME_SIZE + this.pending.readUInt32LE(0) : FRAME_SIZE;
      throw new CaptureError(this.file, `byte ${this.base}`, `truncated: the record here needs ${need} bytes but the file ends after ${this.pending.length}`);
    }
  }
}

/**
 * Writes a capture, mode 0600 since it holds other programs' traffic: whole
 * (renamed into place when closed), or as a stream — header first, records
 * as they are flushed — so a recording killed at any point is a capture.
 */
export class CaptureWriter {
  private readonly file: OutputFile;
  private chunks: Buffer[] = [];
  private buffered = 0;
  records = 0;

  constructor(
    readonly path: string,
    header: CaptureHeader,
    mode: 'whole' | 'stream' = 'whole',
  ) {
    this.file = mode === 'whole' ? wholeFile(path) : streamFile(path);
    this.push(encodePreamble(header));
    if (mode === 'stream') this.flush();
  }

  /** Where the bytes are going until close (a whole file's temporary). */
  get writingTo(): string {
    return this.file.writingTo;
  }

  write(record: Buffer): void {
    this.push(encodeFrame(record));
    this.records++;
  }

  private push(buf: Buffer): void {
    this.chunks.push(buf);
    this.buffered += buf.length;
    if (this.buffered >= 1 << 16) this.flush();
  }

  flush(): void {
    if (this.buffered === 0) return;
    this.file.write(Buffer.concat(this.chunks));
    this.chunks = [];
    this.buffered = 0;
  }

  close(): void {
    this.flush();
    this.file.commit();
  }

  /** Give up (the input failed): a whole file leaves nothing behind. */
  abort(): void {
    this.file.abort();
  }
}
