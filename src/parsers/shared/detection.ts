/** What every protocol's detection shares: the verdict words and framing whole messages back to back. */
import type { ModuleVerdict } from '../module';

export const NEED_MORE = 'need-more';
/** Bytes we wait for at most before giving up on a direction's prefix. */
export const MAX_DETECT_BYTES = 1024;
/** Bytes a connection may move without a recognisable message start before we stop looking. */
export const GIVE_UP_BYTES = 64 * 1024;

export const seenFrom = (sender: 'client' | 'server' | undefined, connectionStart: boolean): ModuleVerdict => ({ sender, connectionStart });

export function isPrefixOf(bytes: Buffer, whole: Buffer): boolean {
  return bytes.length < whole.length && whole.subarray(0, bytes.length).equals(bytes);
}

/** Walk messages whose size `sizeAt` gives; decide only when they end exactly at the end of the bytes. */
export function framesChain(b: Buffer, headerSize: number, sizeAt: (at: number) => number, verdict: () => ModuleVerdict): ModuleVerdict {
  if (b.length < headerSize) return undefined; // too little to frame: do not wait for a guess
  let at = 0;
  let frames = 0;
  while (at + headerSize <= b.length) {
    const size = sizeAt(at);
    if (size < headerSize) return undefined;
    at += size;
    frames++;
  }
  if (at === b.length && frames > 0) return verdict();
  return at > b.length ? NEED_MORE : undefined;
}

export const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
