/** TLS from a handshake record's header: ClientHello or ServerHello. */
import type { ModuleVerdict } from '../module';
import { NEED_MORE, seenFrom } from '../shared/detection';

export function detectTls(b: Buffer): ModuleVerdict {
  // A record header: handshake (22), version 3.x, a plausible length, then ClientHello (1) or ServerHello (2).
  if (b.length < 6) return b.length === 0 || (b[0] === 22 && (b.length < 2 || b[1] === 3)) ? NEED_MORE : undefined;
  if (b[0] !== 22 || b[1] !== 3 || b[2]! > 4) return undefined;
  if (b[5] === 1) return seenFrom('client', true);
  if (b[5] === 2) return seenFrom('server', true);
  return undefined;
}
