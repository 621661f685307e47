/**
 * MQTT, both directions: a fixed header (packet type, flags, Remaining
 * Length), then the packet. Packets are held whole up to HEAD_LIMIT bytes; of
 * a larger one (a PUBLISH's payload) the first bytes are decoded and the rest
 * framed over as it arrives, so a Remaining Length of 256 MB costs no memory.
 * The client's CONNECT names the level (3.1, 3.1.1, 5) both directions decode by.
 */
import { drainBody, endBody, framedBody, loseIntoBody, type FramedBody } from '../shared/framed-body';
import { brokenAt, StreamBuffer } from '../shared/stream-buffer';
import type { Chunk, ProtocolParser, Side } from '../types';
import { decodePacket, type ConnectionState, type Fields } from './decode';
import { MQTT_ERROR, PACKET_TYPES, type MqttMessage, type PacketType } from './messages';
import { validFlags, varint } from './wire';

/** After broken framing, a packet larger than this is not believed as the place to resume. */
const RESYNC_MAX_PACKET = 16 * 1024;

/** Bytes of one packet decoded at most: a topic (up to 65,535 bytes) and MQTT 5 properties fit; payload beyond is counted. */
const HEAD_LIMIT = 128 * 1024;

/** The fixed header at the head of `b`: type, flags, header and packet sizes; 'more' when not held, or what is wrong with it. */
function fixedHeader(b: Buffer): { type: PacketType; flags: number; headLen: number; remaining: number } | 'more' | { code: string; reason: string } {
  if (b.length < 2) return 'more';
  const type = b[0]! >> 4;
  const flags = b[0]! & 15;
  if (type === 0 || !validFlags(type, flags)) return { code: MQTT_ERROR.INVALID_HEADER, reason: `packet type ${type} with flags ${flags.toString(2).padStart(4, '0')}` };
  const length = varint(b, 1);
  if (length === 'more') return 'more';
  if (length === undefined) return { code: MQTT_ERROR.INVALID_LENGTH, reason: 'a Remaining Length longer than four bytes' };
  return { type: PACKET_TYPES[type]!, flags, headLen: 1 + length[1], remaining: length[0] };
}

/** Drop bytes one at a time until the next ones are two plausible packets in a row; false when more bytes are needed to tell. */
function seekTwoPackets(buf: StreamBuffer): boolean {
  for (;;) {
    const head = fixedHeader(buf.peek(Math.min(buf.available, 5))!);
    if (head === 'more') return false;
    if ('type' in head && head.remaining <= RESYNC_MAX_PACKET) {
      const size = head.headLen + head.remaining;
      const next = buf.available >= size + 5 ? buf.peek(size + 5)!.subarray(size) : buf.available > size ? buf.peek(buf.available)!.subarray(size) : undefined;
      if (next === undefined) return false;
      const second = fixedHeader(next);
      if (second === 'more') return false;
      if ('type' in second) return true;
    }
    buf.skip(1);
  }
}

export class MqttParser implements ProtocolParser<MqttMessage> {
  readonly protocol = 'mqtt';
  onMessage: (message: MqttMessage) => void = () => {};
  private readonly buffers: Record<Side, StreamBuffer> = { client: new StreamBuffer(), server: new StreamBuffer() };
  /** The rest of a packet larger than what is held of it: skipped as it arrives; the packet is emitted at its end. */
  private readonly body: Record<Side, FramedBody | undefined> = { client: undefined, server: undefined };
  /**
   * How a side finds its framing again: after bytes lost where no packet framed them, at a syscall
   * boundary that starts a plausible packet (where writes began); after a broken fixed header, by
   * content alone — two plausible packets in a row — so where it resumes never depends on how the
   * bytes were cut.
   */
  private readonly resync: Record<Side, 'gap' | 'content' | undefined> = { client: undefined, server: undefined };
  private readonly state: ConnectionState = { version: undefined, seenV5: false, aliases: { client: new Map(), server: new Map() } };

  feed(side: Side, chunk: Chunk): void {
    this.buffers[side].push(chunk);
    this.parse(side);
  }

  gap(side: Side, bytes: number, ts: bigint): void {
    const buf = this.buffers[side];
    if (!this.body[side] && !this.resync[side]) {
      // A packet whose fixed header is held but not its end: what is held of it is decoded, the loss falls in its length.
      const head = fixedHeader(buf.peek(Math.min(buf.available, 5)) ?? Buffer.alloc(0));
      if (typeof head === 'object' && 'type' in head && head.headLen + head.remaining > buf.available) this.packet(side, head, buf.available);
    }
    if (!this.resync[side]) {
      bytes = loseIntoBody(buf, this.body, side, bytes);
      if (bytes === 0) return;
    }
    const at = buf.offset + buf.available;
    buf.clear(bytes);
    this.body[side] = undefined;
    this.resync[side] = 'gap';
    this.onMessage({
      protocol: 'mqtt',
      kind: side === 'client' ? 'request' : 'response',
      packet: 'Unparsable',
      tsStart: ts,
      tsEnd: ts,
      tid: 0,
      offset: at,
      error: `byte ${at}: ${bytes} bytes of the ${side} stream were not captured`,
      parseErrorCode: MQTT_ERROR.LOST_BYTES,
      lostBytes: bytes,
    });
  }

  end(_ts: bigint): void {}

  private parse(side: Side): void {
    const buf = this.buffers[side];
    while (buf.available > 0) {
      const body = this.body[side];
      if (body) {
        if (drainBody(buf, body) === 'more') return;
        endBody(this.body, side);
        continue;
      }
      if (this.resync[side] === 'content') {
        if (!seekTwoPackets(buf)) return;
        this.resync[side] = undefined;
      }
      const head = fixedHeader(buf.peek(Math.min(buf.available, 5))!);
      if (this.resync[side] === 'gap') {
        if (head === 'more' && buf.atChunkStart()) return;
        if (!buf.atChunkStart() || typeof head !== 'object' || !('type' in head)) {
          buf.skipToNextChunk();
          continue;
        }
        this.resync[side] = undefined;
      }
      if (head === 'more') return;
      if (!('type' in head)) {
        this.broken(side, head.reason, head.code);
        continue;
      }
      const need = Math.min(head.headLen + head.remaining, head.headLen + HEAD_LIMIT);
      if (buf.available < need) return;
      this.packet(side, head, need);
    }
  }

  /** Decode a packet from its first `held` bytes (all of it, or a prefix whose rest becomes a body) and consume them. */
  private packet(side: Side, head: { type: PacketType; flags: number; headLen: number; remaining: number }, held: number): void {
    const buf = this.buffers[side];
    const start = buf.when();
    const offset = buf.offset;
    const total = head.headLen + head.remaining;
    const bytes = buf.peek(held)!;
    const fields: Fields = {};
    let error: { error: string; parseErrorCode: string } | undefined;
    const stopped = decodePacket(head.type, head.flags, bytes, head.headLen, held, head.remaining, side, this.state, fields);
    // Its length frames it all the same: the next packet is read where this one ends. (Only a prefix held: its fields may well go on.)
    if (stopped && ('unknownProperty' in stopped || held === total)) {
      const what = 'unknownProperty' in stopped ? `with ${stopped.unknownProperty}, which MQTT 5 does not define` : 'whose fields run past its length';
      error = { error: `byte ${offset}: ${head.type} ${what}`, parseErrorCode: MQTT_ERROR.MALFORMED_PACKET };
    }
    if (this.state.version !== undefined && fields.version === undefined) fields.version = this.state.version;
    buf.skip(held);
    const emit = (tsEnd: bigint, lost?: number) =>
      this.onMessage({
        protocol: 'mqtt',
        kind: side === 'client' ? 'request' : 'response',
        packet: head.type,
        tsStart: start.ts,
        tsEnd: tsEnd > start.ts ? tsEnd : start.ts,
        tid: start.tid,
        offset,
        ...fields,
        ...error,
        ...(lost ? { lostBytes: lost } : {}),
      });
    if (held === total) emit(buf.lastTs());
    else {
      const body: FramedBody = framedBody(total - held, false, () => emit(buf.lastTs(), body.lost));
      this.body[side] = body;
    }
  }

  private broken(side: Side, reason: string, code: string): void {
    const buf = this.buffers[side];
    this.onMessage({
      protocol: 'mqtt',
      kind: side === 'client' ? 'request' : 'response',
      packet: 'Unparsable',
      ...brokenAt(buf, reason, code),
    });
    this.resync[side] = 'content';
    buf.skip(1);
  }
}
