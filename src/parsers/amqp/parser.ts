/**
 * AMQP 0-9-1, both directions: the client's protocol header, then frames —
 * type, channel, size, payload, 0xCE. A content-bearing method waits on its
 * channel for its content header and body frames and is emitted with them;
 * publisher confirms (confirm.select) number a channel's publishes, and a
 * broker's ack or nack with `multiple` is expanded into one message per
 * publish it confirms, so each publish finds its answer.
 */
import { drainBody, endBody, framedBody, loseIntoBody, type FramedBody } from '../shared/framed-body';
import { payloadDigest } from '../shared/messaging';
import { StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import { decodeContentHeader, decodeMethod, type Fields } from './decode';
import { AMQP_ERROR, CONTENT_METHODS, type AmqpMessage } from './messages';

const FRAME_END = 0xce;
/** Frames larger than this are not believed (frame_max defaults to 128 KiB in RabbitMQ; 16 MiB leaves room). */
const MAX_FRAME = 16 * 1024 * 1024;
/** After broken framing, a frame larger than this is not believed as the place to resume (its end must be seen). */
const RESYNC_MAX_FRAME = 128 * 1024;
const PROTOCOL_HEADER = Buffer.from('AMQP', 'latin1');
const TYPES: ReadonlySet<number> = new Set([1, 2, 3, 8]);

/** A content-bearing method waiting for its content on a channel. */
interface Pending {
  fields: Fields;
  tsStart: bigint;
  tid: number;
  offset: number;
  /** Body bytes still to come; undefined until the content header says. */
  bodyLeft: number | undefined;
  lost: number;
}

/** A frame header at the head of `b`: type, channel, size; 'more' when not held; undefined when no frame starts here. */
function frameHeader(b: Buffer): { type: number; channel: number; size: number } | 'more' | undefined {
  if (b.length < 7) return 'more';
  const type = b[0]!;
  const size = b.readUInt32BE(3);
  if (!TYPES.has(type) || size > MAX_FRAME) return undefined;
  return { type, channel: b.readUInt16BE(1), size };
}

export class AmqpParser implements ProtocolParser<AmqpMessage> {
  readonly protocol = 'amqp';
  onMessage: (message: AmqpMessage) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  /** The rest of a body frame whose bytes were not all copied: framed over by its size. */
  private readonly body: Record<Side, FramedBody | undefined> = { client: undefined, server: undefined };
  /** After bytes lost where no frame framed them: resume at a syscall boundary that starts a frame; after a broken frame: at the next bytes that frame whole, by content. */
  private readonly resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  private readonly pending: Record<Side, Map<number, Pending>> = { client: new Map(), server: new Map() };
  /** Channels in confirm mode: the sequence number of their last publish, and those not yet confirmed. */
  private readonly confirms = new Map<number, { seq: number; outstanding: number[] }>();

  feed(side: Side, chunk: Chunk): void {
    this.buffers[side].push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    const buf = this.buffers[side];
    if (!this.body[side] && !this.resync[side]) {
      // A body frame whose header is held but not its end: the loss falls in its size, and counts against its message's body.
      const head = frameHeader(buf.peek(Math.min(buf.available, 7)) ?? Buffer.alloc(0));
      const pending = typeof head === 'object' ? this.pending[side].get(head.channel) : undefined;
      if (typeof head === 'object' && head.type === 3 && pending?.bodyLeft !== undefined && 8 + head.size > buf.available) {
        const total = 8 + head.size;
        const held = buf.available;
        buf.skip(held);
        pending.bodyLeft -= head.size;
        const body: FramedBody = framedBody(total - held, false, () => {
          pending.lost += body.lost;
          this.contentEnd(side, head.channel);
        });
        this.body[side] = body;
      }
    }
    if (!this.resync[side]) {
      bytes = loseIntoBody(buf, this.body, side, bytes);
      if (bytes === 0) return;
    }
    const at = buf.offset + buf.available;
    buf.clear(bytes);
    this.body[side] = undefined;
    this.resync[side] = 'gap';
    this.pending[side].clear();
    this.emit(
      side,
      { method: 'Lost', error: `byte ${at}: ${bytes} bytes of the ${side} stream were not captured`, parseErrorCode: AMQP_ERROR.LOST_BYTES, lostBytes: bytes },
      ts,
      ts,
      0,
      at,
    );
  }

  end(_ts: bigint): void {}

  private emit(side: Side, fields: Fields & { method: string }, tsStart: bigint, tsEnd: bigint, tid: number, offset: number): void {
    this.onMessage({ protocol: 'amqp', kind: side === 'client' ? 'request' : 'response', tsStart, tsEnd: tsEnd > tsStart ? tsEnd : tsStart, tid, offset, ...fields });
  }

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      const body = this.body[side];
      if (body) {
        if (drainBody(buf, body) === 'more') return;
        endBody(this.body, side);
        continue;
      }
      if (buf.offset === 0 && !this.resync[side]) {
        // The protocol header opens the client's stream (and a broker's refusal of its version).
        const head = buf.peek(Math.min(buf.available, 8))!;
        if (PROTOCOL_HEADER.subarray(0, Math.min(4, head.length)).equals(head.subarray(0, 4))) {
          if (head.length < 8) return;
          const start = buf.when();
          buf.skip(8);
          this.emit(side, { method: 'protocol-header' }, start.ts, start.ts, start.tid, 0);
          continue;
        }
      }
      if (this.resync[side] === 'content') {
        if (!this.seekFrame(buf)) return;
        this.resync[side] = undefined;
      }
      const head = frameHeader(buf.peek(Math.min(buf.available, 7))!);
      if (this.resync[side] === 'gap') {
        if (head === 'more' && buf.atChunkStart()) return;
        if (!buf.atChunkStart() || head === undefined || head === 'more') {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = undefined;
      }
      if (head === 'more') return;
      if (head === undefined) {
        this.broken(side, 'a frame type AMQP does not define, or a size over 16 MiB', AMQP_ERROR.INVALID_FRAME);
        continue;
      }
      if (buf.available < 8 + head.size) return;
      // The frame from the first chunk's view when it lies there whole (most do): no join, no copy.
      const view = buf.view();
      const bytes = view.length >= 8 + head.size ? view : buf.peek(8 + head.size)!;
      if (bytes[7 + head.size] !== FRAME_END) {
        this.broken(side, `a frame of ${head.size} bytes not ended by 0xCE`, AMQP_ERROR.FRAME_END_EXPECTED);
        continue;
      }
      this.frame(side, head.type, head.channel, head.size, bytes);
    }
  }

  /** Drop bytes one at a time until a frame whose end byte is in its place starts; false when more bytes are needed to tell. */
  private seekFrame(buf: StreamBuffer): boolean {
    for (;;) {
      const head = frameHeader(buf.peek(Math.min(buf.available, 7))!);
      if (head === 'more') return false;
      if (head !== undefined && head.size <= RESYNC_MAX_FRAME) {
        if (buf.available < 8 + head.size) return false;
        if (buf.byteAt(7 + head.size) === FRAME_END) return true;
      }
      buf.skip(1);
    }
  }

  /** A frame whose bytes start `bytes` (which may hold more after it). */
  private frame(side: Side, type: number, channel: number, size: number, bytes: Buffer): void {
    const buf = this.buffers[side];
    const start = buf.when();
    const offset = buf.offset;
    buf.skip(8 + size);
    const end = buf.lastTs();
    const pendings = this.pending[side];
    if (type === 8) {
      this.emit(side, { method: 'heartbeat' }, start.ts, end, start.tid, offset);
      return;
    }
    if (type === 1) {
      const f: Fields = { channel };
      const ok = decodeMethod(bytes, 7, 7 + size, f);
      const method = f.method ?? 'Unparsable';
      if (!ok) {
        this.emit(
          side,
          { ...f, method, error: `byte ${offset}: ${method} whose arguments run past its frame`, parseErrorCode: AMQP_ERROR.MALFORMED },
          start.ts,
          end,
          start.tid,
          offset,
        );
        return;
      }
      this.track(side, channel, f);
      if (CONTENT_METHODS.has(method)) {
        const cut = pendings.get(channel);
        if (cut)
          this.emit(
            side,
            {
              ...cut.fields,
              method: cut.fields.method!,
              error: `byte ${offset}: ${method} before the content of the ${cut.fields.method} at byte ${cut.offset} was complete`,
              parseErrorCode: AMQP_ERROR.UNEXPECTED_CONTENT,
            },
            cut.tsStart,
            start.ts,
            cut.tid,
            cut.offset,
          );
        pendings.set(channel, { fields: f, tsStart: start.ts, tid: start.tid, offset, bodyLeft: undefined, lost: 0 });
        return;
      }
      this.answer(side, channel, f as Fields & { method: string }, start.ts, end, start.tid, offset);
      return;
    }
    const pending = pendings.get(channel);
    if (!pending || (type === 2) !== (pending.bodyLeft === undefined)) {
      this.emit(
        side,
        {
          method: type === 2 ? 'content-header' : 'content-body',
          channel,
          error: `byte ${offset}: content on channel ${channel} with no method before it`,
          parseErrorCode: AMQP_ERROR.UNEXPECTED_CONTENT,
        },
        start.ts,
        end,
        start.tid,
        offset,
      );
      return;
    }
    if (type === 2) {
      if (!decodeContentHeader(bytes, 7, 7 + size, pending.fields)) {
        pendings.delete(channel);
        this.emit(
          side,
          {
            ...pending.fields,
            method: pending.fields.method!,
            error: `byte ${offset}: a content header whose properties run past its frame`,
            parseErrorCode: AMQP_ERROR.MALFORMED,
          },
          pending.tsStart,
          end,
          pending.tid,
          pending.offset,
        );
        return;
      }
      pending.bodyLeft = pending.fields.bodySize ?? 0;
      if (pending.bodyLeft === 0) this.identify(pending.fields, bytes, 0, 0);
    } else {
      if (pending.bodyLeft === pending.fields.bodySize) this.identify(pending.fields, bytes, 7, 7 + size);
      pending.bodyLeft! -= size;
    }
    if (pending.bodyLeft! <= 0) this.contentEnd(side, channel);
  }

  /** A digest of the body's first bytes (in its first body frame: `b[at, end)`), by which a delivery knows its publish. */
  private identify(f: Fields, b: Buffer, at: number, end: number): void {
    const digest = payloadDigest(f.bodySize ?? 0, b, at, end);
    if (digest !== undefined) f.payloadDigest = digest;
  }

  /** A content-bearing method's body is complete: emit it. */
  private contentEnd(side: Side, channel: number): void {
    const pending = this.pending[side].get(channel);
    if (!pending || pending.bodyLeft === undefined || pending.bodyLeft > 0) return;
    this.pending[side].delete(channel);
    const buf = this.buffers[side];
    this.emit(
      side,
      { ...pending.fields, method: pending.fields.method!, ...(pending.lost ? { lostBytes: pending.lost } : {}) },
      pending.tsStart,
      buf.lastTs(),
      pending.tid,
      pending.offset,
    );
  }

  /** Publisher confirms: a channel's publishes numbered from 1 once it is in confirm mode. */
  private track(side: Side, channel: number, f: Fields): void {
    // A channel number reused after a close starts without confirms (whichever end closed it).
    if (f.method === 'channel.open' || f.method === 'channel.close') this.confirms.delete(channel);
    if (side === 'client' && f.method === 'confirm.select') this.confirms.set(channel, { seq: 0, outstanding: [] });
    const confirm = this.confirms.get(channel);
    if (side === 'client' && f.method === 'basic.publish' && confirm) {
      f.deliveryTag = ++confirm.seq;
      confirm.outstanding.push(confirm.seq);
      if (confirm.outstanding.length > 65536) confirm.outstanding.shift();
    }
  }

  /** A broker's ack or nack confirms publishes: with `multiple`, each outstanding one up to its tag, one message each. */
  private answer(side: Side, channel: number, f: Fields & { method: string }, tsStart: bigint, tsEnd: bigint, tid: number, offset: number): void {
    const confirm = side === 'server' && (f.method === 'basic.ack' || f.method === 'basic.nack') ? this.confirms.get(channel) : undefined;
    if (!confirm || f.deliveryTag === undefined) {
      this.emit(side, f, tsStart, tsEnd, tid, offset);
      return;
    }
    const tag = f.deliveryTag;
    const confirmed = f.multiple ? confirm.outstanding.filter((s) => s <= tag) : confirm.outstanding.filter((s) => s === tag);
    confirm.outstanding = confirm.outstanding.filter((s) => !confirmed.includes(s));
    if (confirmed.length === 0) confirmed.push(tag);
    for (const seq of confirmed) this.emit(side, { ...f, deliveryTag: seq }, tsStart, tsEnd, tid, offset);
  }

  private broken(side: Side, reason: string, code: string): void {
    const buf = this.buffers[side];
    const start = buf.when();
    this.emit(side, { method: 'Unparsable', error: `byte ${buf.offset}: ${reason}`, parseErrorCode: code }, start.ts, start.ts, start.tid, buf.offset);
    this.resync[side] = 'content';
    this.pending[side].clear();
    buf.skip(1);
  }
}
