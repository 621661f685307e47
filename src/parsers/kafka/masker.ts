/**
 * A Kafka client's credentials masked in its bytes: a SaslAuthenticate
 * request's body after its header (PLAIN's password, SCRAM's proof, an
 * OAuth token), and after a SaslHandshake v0 the raw SASL token that
 * follows it in a bare size frame. Walked request by request
 * (shared/walk-masker.ts), so a secret cut across records is masked whole.
 */
import type { PayloadMasker } from '../module';
import { READ, WalkMasker, type Step } from '../shared/walk-masker';
import { API } from './messages';

const MAX_SIZE = 100 * 1024 * 1024;

function* unsigned(bytes: number): Generator<Step, number, number> {
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + (yield READ);
  return v;
}

function* clientStream(): Generator<Step, void, number> {
  let rawToken = false;
  for (;;) {
    const size = (yield* unsigned(4)) | 0;
    if (size < 4 || size > MAX_SIZE) return;
    if (rawToken || size < 10) {
      // A SaslHandshake v0 is followed by the token itself, framed by a size alone.
      yield { op: rawToken ? 'mask' : 'skip', n: size };
      rawToken = false;
      continue;
    }
    const apiKey = yield* unsigned(2);
    const version = yield* unsigned(2);
    yield { op: 'skip', n: 4 }; // correlation id
    const clientId = ((yield* unsigned(2)) << 16) >> 16;
    let used = 10;
    if (clientId > 0) {
      if (used + clientId > size) return;
      yield { op: 'skip', n: clientId };
      used += clientId;
    }
    if (apiKey === API.SaslHandshake && version === 0) rawToken = true;
    if (apiKey === API.SaslAuthenticate) used += yield* authBytes(size - used, version >= 2);
    if (size > used) yield { op: 'skip', n: size - used };
  }
}

/**
 * SaslAuthenticate's auth_bytes masked, its length left readable (a replay still frames the request):
 * bytes with an int32 length, or (v2+) after the header's tagged fields, with a compact length. What
 * cannot be framed is masked whole. Returns the bytes walked.
 */
function* authBytes(left: number, flexible: boolean): Generator<Step, number, number> {
  let used = 0;
  let length: number;
  if (!flexible) {
    if (left < 4) return 0;
    length = (yield* unsigned(4)) | 0;
    used = 4;
  } else {
    const tags = yield READ;
    used = 1;
    let n = 0;
    let shift = 1;
    for (;;) {
      if (tags !== 0 || used >= left) {
        if (left > used) yield { op: 'mask', n: left - used };
        return left;
      }
      const b: number = yield READ;
      used++;
      n += (b & 0x7f) * shift;
      shift *= 128;
      if ((b & 0x80) === 0) break;
    }
    length = n - 1;
  }
  const secret = Math.max(0, Math.min(length, left - used));
  if (secret > 0) yield { op: 'mask', n: secret };
  return used + secret;
}

/** A Kafka client's bytes, SASL secrets masked. */
export const kafkaMasker = (): PayloadMasker => new WalkMasker(clientStream);
