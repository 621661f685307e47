/**
 * HTTP/2 over one connection, both directions, in three layers as in hyper's
 * h2: frames (length, type, flags, stream; padding, priority, CONTINUATION),
 * HPACK (a decoder per direction, see hpack.ts), and streams (request and
 * response halves paired by stream id, any number at once).
 *
 * A request is reported when it ends (END_STREAM), when its response begins,
 * or when it is reset, whichever comes first; a response when it ends (with
 * its trailers) or is reset. gRPC (content-type application/grpc) adds the
 * service and method from `:path`, the length-prefixed messages counted per
 * direction, and grpc-status / grpc-message from the trailers (or from the
 * headers of a trailers-only response).
 *
 * Joining late: without the client preface the capture began mid-connection;
 * header fields that name older dynamic-table entries are reported unknown.
 * Lost bytes, or an HPACK error, leave a direction's table unknown in the
 * same way: decoding goes on with what can be decoded.
 */
import { StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import { HpackDecoder, HpackError, type HeaderField } from './hpack';
import {
  ERROR_CODE_NAMES,
  FRAME_HEADER_BYTES as FRAME_HEADER,
  DEFAULT_MAX_FRAME,
  FrameFlag,
  FrameType,
  isHeaderBlockFrame,
  LAST_KNOWN_FRAME_TYPE,
  Setting,
  SETTING_BYTES,
} from './frames';
import { field, H2_ERROR, type GrpcInfo, type Http2Message, type Http2Request, type Http2Response } from './messages';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** SETTINGS_MAX_FRAME_SIZE may not exceed 2^24-1. */
const MAX_FRAME = (1 << 24) - 1;
const { END_STREAM, END_HEADERS, PADDED, PRIORITY } = FrameFlag;
const ERROR_CODES: readonly string[] = ERROR_CODE_NAMES;
/** Payloads kept per direction of a gRPC stream when asked, and bytes kept of each. */
const KEEP_MESSAGES = 4;
const KEEP_BYTES = 64 * 1024;

interface Half {
  headers?: HeaderField[];
  trailers: HeaderField[];
  bodyBytes: number;
  ended: boolean;
  tsStart?: bigint;
  tsEnd?: bigint;
  tid: number;
  offset: number;
  unknown: string[];
  grpc?: GrpcInfo;
  /** gRPC framing: bytes of a message prefix seen so far, and bytes still to come of the current message. */
  prefix: number[];
  remaining: number;
  payload?: Buffer[];
  /** Bytes of its frames that were not captured (DATA counted in bodyBytes all the same). */
  lostBytes: number;
  /** gRPC framing was lost inside a gap: messages after it are not counted. */
  grpcLost?: boolean;
}

/** A DATA frame being read as its bytes come: its body is counted, never held whole. */
interface DataFrame {
  streamId: number;
  flags: number;
  /** Payload bytes of the frame still to come (body and padding). */
  left: number;
  /** Padding at its end; -1 until the pad length byte is read. */
  pad: number;
  tsEnd: bigint;
}

interface Stream {
  id: number;
  request: Half;
  response: Half;
  requestReported: boolean;
}

/** A header block still arriving in CONTINUATION frames. */
interface PendingBlock {
  streamId: number;
  promised?: number;
  endStream: boolean;
  parts: Buffer[];
  ts: bigint;
  tid: number;
  offset: number;
}

const newHalf = (): Half => ({ trailers: [], bodyBytes: 0, ended: false, tid: 0, offset: 0, unknown: [], prefix: [], remaining: 0, lostBytes: 0 });

export interface Http2Options {
  /** Keep the first gRPC message payloads (for decoding with .proto files). */
  keepGrpcPayloads?: boolean;
  /**
   * Reached by HTTP/1.1 Upgrade: h2c. Stream 1 is the request the HTTP/1
   * parser already reported; only its response comes as HTTP/2.
   */
  upgraded?: boolean;
}

export class Http2Parser implements ProtocolParser<Http2Message> {
  readonly protocol = 'http2';
  onMessage: (message: Http2Message) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  /** Decoders of the header blocks each side sends, made once we know whether we joined late. */
  private decoders: Partial<Record<Side, HpackDecoder>> = {};
  private limits: Record<Side, number> = { client: 4096, server: 4096 };
  /** undefined until the first client bytes tell; true when they were the preface. */
  private sawPreface: boolean | undefined;
  private readonly streams = new Map<number, Stream>();
  private pending: Partial<Record<Side, PendingBlock>> = {};
  private resync: Record<Side, boolean> = { client: false, server: false };
  private stopped: Partial<Record<Side, string>> = {};
  /** The DATA frame each side is in the middle of. */
  private data: Partial<Record<Side, DataFrame>> = {};

  constructor(private readonly options: Http2Options = {}) {
    if (options.upgraded) {
      const s = this.stream(1);
      s.requestReported = true;
      s.request.headers = [];
      s.request.ended = true;
    }
  }

  feed(side: Side, chunk: Chunk): void {
    const buf = this.buffers[side];
    buf.push(chunk);
    if (side === 'client' && this.sawPreface === undefined) {
      const n = Math.min(buf.available, PREFACE.length);
      const head = buf.peek(n)!;
      if (!PREFACE.subarray(0, n).equals(head)) this.sawPreface = false;
      else if (n < PREFACE.length) return;
      else {
        this.sawPreface = true;
        buf.skip(PREFACE.length);
      }
    }
    this.frames(side);
  }

  gap(side: Side, bytes: number, _ts: bigint): void {
    const buf = this.buffers[side];
    if (!this.resync[side] && !this.stopped[side]) {
      // Frame lengths say where the lost bytes fall: inside a frame, framing holds.
      const d = this.data[side];
      if (d) {
        const inside = Math.min(bytes, d.left);
        this.dataLost(side, d, inside);
        if (inside === bytes) return;
        bytes -= inside;
      } else if (buf.available >= FRAME_HEADER) {
        const size = FRAME_HEADER + buf.peek(FRAME_HEADER)!.readUIntBE(0, 3);
        const inside = buf.inside(bytes, size);
        if (inside > 0) {
          // A header block cut short: what it added to the table is unknown from here on.
          const type = buf.byteAt(3);
          if (isHeaderBlockFrame(type ?? -1)) {
            this.pending[side] = undefined;
            this.decoders[side] = new HpackDecoder(true, this.limits[side]);
          }
          buf.lose(inside, size);
          if (inside === bytes) return;
          bytes -= inside;
        }
      }
    }
    buf.clear(bytes);
    this.data[side] = undefined;
    this.pending[side] = undefined;
    this.resync[side] = true;
    // What the lost bytes added to this side's table is unknown from here on.
    this.decoders[side] = new HpackDecoder(true, this.limits[side]);
  }

  /**
   * The connection closed, or the capture ended: a request still being sent
   * (its END_STREAM never came) is reported as it stands, open, so it is seen
   * — and ends as an incomplete span — rather than dropped.
   */
  end(_ts: bigint): void {
    for (const s of [...this.streams.values()].sort((a, b) => a.id - b.id)) {
      if (!s.requestReported && s.request.headers !== undefined) this.reportRequest(s, true);
    }
  }

  private decoder(side: Side): HpackDecoder {
    let d = this.decoders[side];
    if (!d) {
      // Joined late unless the connection's start was seen: its preface, or the 101 of an h2c upgrade.
      d = new HpackDecoder(!(this.sawPreface === true || this.options.upgraded === true), this.limits[side]);
      this.decoders[side] = d;
    }
    return d;
  }

  private frames(side: Side): void {
    const buf = this.buffers[side];
    while (!this.stopped[side]) {
      if (!buf.skipPending()) return;
      const d = this.data[side];
      if (d) {
        if (!this.dataBytes(side, d)) return;
        continue;
      }
      if (buf.available < FRAME_HEADER) return;
      // The header read in place when the first chunk holds it (most do): no view per frame.
      const first = buf.firstChunk!;
      const inFirst = first.length - buf.firstChunkHead >= FRAME_HEADER;
      const h = inFirst ? first : buf.peek(FRAME_HEADER)!;
      const hAt = inFirst ? buf.firstChunkHead : 0;
      const length = (h[hAt]! << 16) | (h[hAt + 1]! << 8) | h[hAt + 2]!;
      const type = h[hAt + 3]!;
      const flags = h[hAt + 4]!;
      const streamId = h.readUInt32BE(hAt + 5) & 0x7fffffff;
      if (this.resync[side]) {
        // After lost bytes: resume at a syscall boundary whose bytes look like a frame header.
        if (!buf.atChunkStart() || type > LAST_KNOWN_FRAME_TYPE || h[hAt + 5]! & 0x80 || length > DEFAULT_MAX_FRAME) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = false;
      }
      if (length > MAX_FRAME) {
        this.stopped[side] = `byte ${buf.offset}: frame length ${length} is impossible`;
        return;
      }
      if (type === FrameType.DATA) {
        // DATA: read as it comes, so a frame larger than one capture is framed, not held.
        const tsEnd = buf.tsAt(FRAME_HEADER - 1);
        buf.skip(FRAME_HEADER);
        this.data[side] = { streamId, flags, left: length, pad: flags & PADDED ? -1 : 0, tsEnd };
        continue;
      }
      const total = FRAME_HEADER + length;
      const payload = buf.slice(FRAME_HEADER, total);
      if (!payload) return;
      const when = buf.when();
      const at = { ts: when.ts, tid: when.tid, offset: buf.offset, tsEnd: buf.tsAt(total - 1) };
      this.frame(side, type, flags, streamId, payload, at);
      buf.skip(total);
    }
  }

  /** Take what is held of a DATA frame; true when the frame ended. */
  private dataBytes(side: Side, d: DataFrame): boolean {
    const buf = this.buffers[side];
    if (d.pad < 0) {
      if (d.left === 0) d.pad = 0;
      else {
        const pad = buf.byteAt(0);
        if (pad === undefined) return false;
        buf.skip(1);
        d.left--;
        d.pad = Math.min(pad, d.left); // a pad longer than the frame is the peer's error; its body is empty
      }
    }
    const half = this.halfOf(side, d.streamId);
    while (d.left > d.pad) {
      const piece = buf.view();
      if (piece.length === 0) return false;
      const body = piece.subarray(0, d.left - d.pad);
      d.tsEnd = buf.tsAt(body.length - 1);
      if (half) {
        half.bodyBytes += body.length;
        if (half.grpc && !half.grpcLost) this.grpcData(half, body);
      }
      buf.skip(body.length);
      d.left -= body.length;
    }
    const padding = Math.min(d.left, buf.available);
    if (padding > 0) {
      d.tsEnd = buf.tsAt(padding - 1);
      buf.skip(padding);
      d.left -= padding;
    }
    if (d.left > 0) return false;
    this.dataEnded(side, d);
    return true;
  }

  /** `n` bytes of the DATA frame under way were not captured. */
  private dataLost(side: Side, d: DataFrame, n: number): void {
    const half = this.halfOf(side, d.streamId);
    const body = d.pad < 0 ? Math.max(0, n - 1) : Math.max(0, Math.min(n, d.left - d.pad));
    if (d.pad < 0) d.pad = 0; // its length byte is lost: the padding is counted as body
    d.left -= n;
    this.buffers[side].lose(n, n); // nothing of the frame is held: its bytes are taken as they come
    if (half) {
      half.lostBytes += n;
      half.bodyBytes += body;
      if (half.grpc && !half.grpcLost) {
        // Inside the message under way, the count holds; past its end, the next prefixes are lost.
        if (half.remaining >= body) {
          half.remaining -= body;
          half.payload = undefined;
        } else if (body > 0) half.grpcLost = true;
      }
    }
    if (d.left === 0) this.dataEnded(side, d);
  }

  private dataEnded(side: Side, d: DataFrame): void {
    this.data[side] = undefined;
    const s = this.streams.get(d.streamId);
    if (!s) return;
    const half = side === 'client' ? s.request : s.response;
    half.tsEnd = d.tsEnd;
    if (d.flags & END_STREAM) this.ended(side, s, d.tsEnd);
  }

  private halfOf(side: Side, streamId: number): Half | undefined {
    const s = this.streams.get(streamId);
    return s && (side === 'client' ? s.request : s.response);
  }

  private stream(id: number): Stream {
    let s = this.streams.get(id);
    if (!s) {
      s = { id, request: newHalf(), response: newHalf(), requestReported: false };
      this.streams.set(id, s);
    }
    return s;
  }

  private frame(side: Side, type: number, flags: number, streamId: number, payload: Buffer, at: { ts: bigint; tid: number; offset: number; tsEnd: bigint }): void {
    switch (type) {
      case FrameType.HEADERS: {
        let block = unpad(payload, flags);
        if (!block) return;
        if (flags & PRIORITY) block = block.subarray(5);
        this.pending[side] = { streamId, endStream: (flags & END_STREAM) !== 0, parts: [block], ts: at.ts, tid: at.tid, offset: at.offset };
        if (flags & END_HEADERS) this.headerBlock(side, at.tsEnd);
        return;
      }
      case FrameType.PUSH_PROMISE: {
        const body = unpad(payload, flags);
        if (!body || body.length < 4) return;
        this.pending[side] = { streamId, promised: body.readUInt32BE(0) & 0x7fffffff, endStream: false, parts: [body.subarray(4)], ts: at.ts, tid: at.tid, offset: at.offset };
        if (flags & END_HEADERS) this.headerBlock(side, at.tsEnd);
        return;
      }
      case FrameType.CONTINUATION: {
        const p = this.pending[side];
        if (!p || p.streamId !== streamId) return;
        p.parts.push(payload);
        if (flags & END_HEADERS) this.headerBlock(side, at.tsEnd);
        return;
      }
      case FrameType.RST_STREAM: {
        const s = this.streams.get(streamId);
        if (!s || payload.length < 4) return;
        const code = payload.readUInt32BE(0);
        const name = ERROR_CODES[code] ?? `0x${code.toString(16)}`;
        if (!s.requestReported) this.reportRequest(s, true);
        this.reportResponse(s, at.tsEnd, name);
        return;
      }
      case FrameType.SETTINGS: {
        if (flags & FrameFlag.ACK || streamId !== 0) return;
        for (let i = 0; i + SETTING_BYTES <= payload.length; i += SETTING_BYTES) {
          if (payload.readUInt16BE(i) !== Setting.HEADER_TABLE_SIZE) continue;
          // The sender's HEADER_TABLE_SIZE bounds the table the other side encodes with.
          const other: Side = side === 'client' ? 'server' : 'client';
          this.limits[other] = payload.readUInt32BE(i + 2);
          this.decoders[other]?.setLimit(this.limits[other]);
        }
        return;
      }
      default:
        // PRIORITY, PING, GOAWAY, WINDOW_UPDATE and unknown types change nothing we report.
        return;
    }
  }

  private headerBlock(side: Side, tsEnd: bigint): void {
    const p = this.pending[side]!;
    this.pending[side] = undefined;
    const block = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts);
    let headers: HeaderField[];
    let unknown: string[];
    try {
      ({ headers, unknown } = this.decoder(side).decode(block));
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      // The table is out of step from here: what follows is decoded as after a late join.
      this.decoders[side] = new HpackDecoder(true, this.limits[side]);
      headers = [];
      unknown = [`header block of stream ${p.streamId} at byte ${p.offset}: ${e.message}`];
    }
    if (p.promised !== undefined) {
      // A pushed stream: the promise carries its request.
      const s = this.stream(p.promised);
      Object.assign(s.request, { headers, unknown, tsStart: p.ts, tsEnd, tid: p.tid, offset: p.offset, ended: true });
      this.reportRequest(s, false);
      return;
    }
    const s = this.stream(p.streamId);
    const half = side === 'client' ? s.request : s.response;
    if (half.headers === undefined) {
      if (side === 'server' && /^1\d\d$/.test(field(headers, ':status') ?? '')) return; // interim: the final headers follow
      half.headers = headers;
      half.unknown.push(...unknown);
      half.tsStart = p.ts;
      half.tid = p.tid;
      half.offset = p.offset;
      const grpc = grpcOf(side === 'client' ? headers : (s.request.headers ?? []), field(headers, 'content-type'));
      if (grpc) half.grpc = grpc;
      if (side === 'server' && !s.requestReported) this.reportRequest(s, true);
    } else {
      half.trailers = headers;
      half.unknown.push(...unknown);
    }
    half.tsEnd = tsEnd;
    if (p.endStream) this.ended(side, s, tsEnd);
  }

  private ended(side: Side, s: Stream, ts: bigint): void {
    const half = side === 'client' ? s.request : s.response;
    half.ended = true;
    half.tsEnd = ts;
    if (side === 'client') {
      if (!s.requestReported) this.reportRequest(s, false);
    } else {
      if (!s.requestReported) this.reportRequest(s, true);
      this.reportResponse(s, ts);
    }
  }

  private reportRequest(s: Stream, open: boolean): void {
    s.requestReported = true;
    const r = s.request;
    const headers = r.headers ?? [];
    const m: Http2Request = {
      protocol: r.grpc ? 'grpc' : 'http2',
      kind: 'request',
      streamId: s.id,
      method: field(headers, ':method') ?? '',
      path: field(headers, ':path') ?? '',
      authority: field(headers, ':authority') ?? '',
      scheme: field(headers, ':scheme') ?? '',
      headers,
      bodyBytes: r.bodyBytes,
      tsStart: r.tsStart ?? r.tsEnd ?? 0n,
      tsEnd: r.tsEnd ?? r.tsStart ?? 0n,
      tid: r.tid,
      offset: r.offset,
    };
    if (r.headers === undefined) {
      m.error = `stream ${s.id}: its request headers were not seen`;
      m.parseErrorCode = H2_ERROR.HEADERS_NOT_SEEN;
    }
    if (r.unknown.length) m.unknownHeaders = [...r.unknown];
    if (open && !r.ended) m.open = true;
    if (r.lostBytes) m.lostBytes = r.lostBytes;
    if (r.grpc) m.grpc = { ...r.grpc };
    this.onMessage(m);
  }

  private reportResponse(s: Stream, ts: bigint, reset?: string): void {
    this.streams.delete(s.id);
    const r = s.response;
    const headers = r.headers ?? [];
    const grpcFields = r.trailers.length ? r.trailers : headers;
    const m: Http2Response = {
      protocol: s.request.grpc || r.grpc ? 'grpc' : 'http2',
      kind: 'response',
      streamId: s.id,
      status: Number(field(headers, ':status') ?? 0),
      headers,
      trailers: r.trailers,
      bodyBytes: r.bodyBytes,
      tsStart: r.tsStart ?? ts,
      tsEnd: ts,
      tid: r.tid,
      offset: r.offset,
    };
    if (reset !== undefined) m.reset = reset;
    if (r.lostBytes) m.lostBytes = r.lostBytes;
    if (r.unknown.length) m.unknownHeaders = [...r.unknown];
    const grpcStatus = field(grpcFields, 'grpc-status');
    if (grpcStatus !== undefined && /^\d+$/.test(grpcStatus)) m.grpcStatus = Number(grpcStatus);
    const grpcMessage = field(grpcFields, 'grpc-message');
    if (grpcMessage !== undefined) m.grpcMessage = decodeGrpcMessage(grpcMessage);
    if (r.grpc) m.grpc = { ...r.grpc };
    if (r.headers === undefined && reset === undefined) {
      m.error = `stream ${s.id}: its response headers were not seen`;
      m.parseErrorCode = H2_ERROR.HEADERS_NOT_SEEN;
    }
    this.onMessage(m);
  }

  /** Length-prefixed gRPC messages: 1 byte compressed flag, 4 bytes length, the message. */
  private grpcData(half: Half, body: Buffer): void {
    const g = half.grpc!;
    let i = 0;
    while (i < body.length) {
      if (half.remaining > 0) {
        const take = Math.min(half.remaining, body.length - i);
        if (half.payload) half.payload.push(body.subarray(i, i + take));
        half.remaining -= take;
        i += take;
        if (half.remaining === 0) this.grpcMessageDone(half);
        continue;
      }
      half.prefix.push(body[i++]!);
      if (half.prefix.length < 5) continue;
      const [flag, a, b, c, d] = half.prefix as [number, number, number, number, number];
      half.prefix = [];
      g.messages++;
      if (flag & 1) g.compressed++;
      half.remaining = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
      g.bytes += half.remaining;
      if (this.options.keepGrpcPayloads && (g.payloads?.length ?? 0) < KEEP_MESSAGES) half.payload = [];
      if (half.remaining === 0) this.grpcMessageDone(half);
    }
  }

  private grpcMessageDone(half: Half): void {
    if (!half.payload) return;
    const whole = Buffer.concat(half.payload);
    half.payload = undefined;
    (half.grpc!.payloads ??= []).push(Buffer.from(whole.subarray(0, KEEP_BYTES)));
  }
}

function unpad(payload: Buffer, flags: number): Buffer | undefined {
  if (!(flags & PADDED)) return payload;
  const pad = payload[0];
  if (pad === undefined || pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

/** gRPC when the content type says so; service and method from `/package.Service/Method`. */
function grpcOf(requestHeaders: HeaderField[], contentType: string | undefined): GrpcInfo | undefined {
  const type = contentType ?? field(requestHeaders, 'content-type');
  if (!type?.startsWith('application/grpc')) return undefined;
  const m = /^\/([^/]+)\/([^/]+)$/.exec(field(requestHeaders, ':path') ?? '');
  return { service: m?.[1] ?? '', method: m?.[2] ?? '', messages: 0, compressed: 0, bytes: 0 };
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
function decodeGrpcMessage(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
