/** HTTP/2 from its client preface, or mid-connection from whole frames back to back. */
import type { ModuleVerdict } from '../module';
import { asBuffer, framesChain, isPrefixOf, NEED_MORE, seenFrom } from '../shared/detection';
import { DEFAULT_MAX_FRAME, FRAME_HEADER_BYTES, FrameType, isConnectionFrame, LAST_KNOWN_FRAME_TYPE, SETTING_BYTES } from './frames';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function detectHttp2(b: Buffer): ModuleVerdict {
  if (b.length >= H2_PREFACE.length && b.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) return seenFrom('client', true);
  if (isPrefixOf(b, H2_PREFACE)) return NEED_MORE;
  // Mid-connection: whole frames, back to back, ending exactly at the end of the bytes.
  return framesChain(
    b,
    FRAME_HEADER_BYTES,
    (at) => {
      const length = b.readUIntBE(at, 3);
      const type = b[at + 3]!;
      const reserved = b[at + 5]! & 0x80;
      const stream = b.readUInt32BE(at + 5) & 0x7fffffff;
      if (type > LAST_KNOWN_FRAME_TYPE || reserved || length > DEFAULT_MAX_FRAME) return -1;
      // SETTINGS, PING and GOAWAY live on stream 0; HEADERS, DATA and the like never do (WINDOW_UPDATE on either).
      if (isConnectionFrame(type) !== (stream === 0) && type !== FrameType.WINDOW_UPDATE) return -1;
      if (type === FrameType.SETTINGS && length % SETTING_BYTES !== 0) return -1;
      return FRAME_HEADER_BYTES + length;
    },
    () => seenFrom(undefined, false),
  );
}

/** Are these bytes HTTP/2 frames, back to back, ending exactly at their end (a connection's middle, as `detectProtocol` takes it)? */
export function isHttp2Frames(bytes: Uint8Array): boolean {
  return typeof detectHttp2(asBuffer(bytes)) === 'object';
}
