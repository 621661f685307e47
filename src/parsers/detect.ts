/**
 * Which protocol a connection speaks, from the first bytes seen in one
 * direction, and who must have sent them. Bytes may arrive one at a time, so
 * detection answers NEED_MORE until it can decide.
 *
 * Each protocol module judges the bytes (its `detect`); this asks them in the
 * list's order (protocols.ts). Two kinds of evidence:
 *  - a connection start (HTTP/2 preface, PostgreSQL startup, MySQL handshake,
 *    TLS hello): strong;
 *  - a message start seen mid-connection (a capture that joined late): only
 *    accepted when the bytes frame exactly into whole messages of that
 *    protocol, to keep false positives (MySQL's loose framing especially) down.
 */
import { PROTOCOL_MODULES, moduleOf, type Protocol } from './protocols';
import { asBuffer, NEED_MORE } from './shared/detection';
import type { Side } from './types';

export { GIVE_UP_BYTES, MAX_DETECT_BYTES, NEED_MORE } from './shared/detection';

export interface Detection {
  protocol: Protocol;
  /** Who must have sent these bytes; undefined when the bytes do not tell. */
  sender: Side | undefined;
  /** True when the bytes are the connection's very first message. */
  connectionStart: boolean;
}

type Verdict = Detection | typeof NEED_MORE | undefined;

/**
 * The verdict on a direction's prefix: a Detection, NEED_MORE while some
 * protocol could still match, or undefined when none can.
 */
export function detectProtocol(prefix: Uint8Array): Verdict {
  const b = asBuffer(prefix);
  let waiting = false;
  for (const module of PROTOCOL_MODULES) {
    const v = module.detect.verdict(b);
    if (v === NEED_MORE) waiting = true;
    else if (v) {
      // A stronger detector still waiting for bytes outranks a weaker one that already matched.
      if (waiting && !v.connectionStart) return NEED_MORE;
      return { protocol: module.name, sender: v.sender, connectionStart: v.connectionStart };
    }
  }
  return waiting ? NEED_MORE : undefined;
}

/**
 * Are these bytes whole messages of `protocol`, once another direction has
 * named it? Framing alone where the module has a test for it, else what
 * detection would say.
 */
export function framesAs(protocol: string, bytes: Uint8Array): boolean {
  const b = asBuffer(bytes);
  const frames = moduleOf(protocol)?.detect.frames;
  if (frames) return frames(b);
  const v = detectProtocol(b);
  return typeof v === 'object' && v.protocol === protocol;
}
