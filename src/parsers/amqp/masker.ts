/**
 * An AMQP client's credentials masked in its bytes: the `response` of
 * connection.start-ok (PLAIN's `\0user\0password`, AMQPLAIN's table) and of
 * connection.secure-ok, with their lengths kept so a replay still frames
 * them. Walked frame by frame (shared/walk-masker.ts).
 */
import type { PayloadMasker } from '../module';
import { READ, WalkMasker, type Step } from '../shared/walk-masker';

function* unsigned(bytes: number): Generator<Step, number, number> {
  let v = 0;
  for (let i = 0; i < bytes; i++) v = v * 256 + (yield READ);
  return v;
}

/** A method frame's arguments: the credentials of start-ok and secure-ok masked; `size` bytes in all. */
function* method(size: number): Generator<Step, void, number> {
  if (size < 4) {
    if (size > 0) yield { op: 'skip', n: size };
    return;
  }
  const id = yield* unsigned(4);
  let used = 4;
  if (id === 0x000a000b) {
    // start-ok: client-properties (a table), mechanism (a short string), then the response.
    if (used + 4 > size) {
      yield { op: 'skip', n: size - used };
      return;
    }
    const table = yield* unsigned(4);
    used += 4;
    if (used + table + 1 > size) {
      yield { op: 'skip', n: size - used };
      return;
    }
    if (table > 0) yield { op: 'skip', n: table };
    used += table;
    const mechanism = yield* unsigned(1);
    used += 1;
    if (used + mechanism > size) {
      yield { op: 'skip', n: size - used };
      return;
    }
    if (mechanism > 0) yield { op: 'skip', n: mechanism };
    used += mechanism;
  }
  if (id === 0x000a000b || id === 0x000a0015) {
    if (used + 4 <= size) {
      const length = yield* unsigned(4);
      used += 4;
      const secret = Math.min(length, size - used);
      if (secret > 0) yield { op: 'mask', n: secret };
      used += secret;
    }
  }
  if (size > used) yield { op: 'skip', n: size - used };
}

function* clientStream(): Generator<Step, void, number> {
  const first = yield READ;
  if (first === 0x41) yield { op: 'skip', n: 7 }; // the protocol header "AMQP" 0 0 9 1
  let type = first === 0x41 ? -1 : first;
  for (;;) {
    if (type < 0) type = yield READ;
    if (type !== 1 && type !== 2 && type !== 3 && type !== 8) return;
    yield { op: 'skip', n: 2 }; // channel
    const size = yield* unsigned(4);
    if (type === 1) yield* method(size);
    else if (size > 0) yield { op: 'skip', n: size };
    yield { op: 'skip', n: 1 }; // frame end
    type = -1;
  }
}

/** An AMQP client's bytes, the login response masked. */
export const amqpMasker = (): PayloadMasker => new WalkMasker(clientStream);
