/**
 * An MQTT client's credentials masked in its bytes: CONNECT's password and
 * MQTT 5's Authentication Data (in CONNECT and AUTH), byte for byte however
 * the stream is cut: the client stream is walked packet by packet (shared/walk-masker.ts).
 */
import type { PayloadMasker } from '../module';
import { READ, WalkMasker, type Step } from '../shared/walk-masker';
import { FIXED_SIZE, PROPERTY, PROPERTY_TYPES, validFlags } from './wire';

/** The framing broke (a length past its packet, an undefined property): nothing more is known of this stream. */
class Lost extends Error {}

/** A packet's bytes, counted against its Remaining Length. */
class Packet {
  used = 0;
  constructor(readonly remaining: number) {}

  take(n: number): number {
    if (this.used + n > this.remaining) throw new Lost();
    this.used += n;
    return n;
  }
}

function* u8(p: Packet): Generator<Step, number, number> {
  p.take(1);
  return yield READ;
}

function* u16(p: Packet): Generator<Step, number, number> {
  return ((yield* u8(p)) << 8) | (yield* u8(p));
}

function* varint(p: Packet): Generator<Step, number, number> {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const b = yield* u8(p);
    value += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) return value;
  }
  throw new Lost();
}

/** Two bytes of length and that many bytes, masked or passed over. */
function* lengthPrefixed(p: Packet, mask: boolean): Generator<Step, void, number> {
  const n = yield* u16(p);
  if (n > 0) yield { op: mask ? 'mask' : 'skip', n: p.take(n) };
}

/** MQTT 5 properties, Authentication Data masked. */
function* properties(p: Packet): Generator<Step, void, number> {
  const length = yield* varint(p);
  const end = p.used + length;
  while (p.used < end) {
    const id = yield* varint(p);
    const type = PROPERTY_TYPES.get(id);
    if (type === undefined) throw new Lost();
    if (type === 'pair') {
      yield* lengthPrefixed(p, false);
      yield* lengthPrefixed(p, false);
    } else if (type === 'string' || type === 'binary') yield* lengthPrefixed(p, id === PROPERTY.AUTHENTICATION_DATA);
    else if (type === 'varint') yield* varint(p);
    else yield { op: 'skip', n: p.take(FIXED_SIZE[type]!) };
  }
  if (p.used !== end) throw new Lost();
}

function* connect(p: Packet): Generator<Step, void, number> {
  yield* lengthPrefixed(p, false); // "MQTT"
  const level = yield* u8(p);
  const flags = yield* u8(p);
  yield { op: 'skip', n: p.take(2) }; // keep alive
  if (level === 5) yield* properties(p);
  yield* lengthPrefixed(p, false); // client identifier
  if (flags & 0x04) {
    if (level === 5) yield* properties(p); // will properties
    yield* lengthPrefixed(p, false); // will topic
    yield* lengthPrefixed(p, false); // will payload
  }
  if (flags & 0x80) yield* lengthPrefixed(p, false); // user name
  if (flags & 0x40) yield* lengthPrefixed(p, true); // password
}

/** The client's packets, one after the other. */
function* clientStream(): Generator<Step, void, number> {
  for (;;) {
    const first: number = yield READ;
    const type = first >> 4;
    if (type === 0 || !validFlags(type, first & 15)) return;
    let remaining = 0;
    for (let i = 0; ; i++) {
      if (i === 4) return;
      const b: number = yield READ;
      remaining += (b & 0x7f) * 128 ** i;
      if ((b & 0x80) === 0) break;
    }
    const p = new Packet(remaining);
    try {
      if (type === 1) yield* connect(p);
      else if (type === 15 && remaining > 1) {
        yield* u8(p); // reason code
        yield* properties(p);
      }
    } catch (e) {
      if (!(e instanceof Lost)) throw e;
      return;
    }
    if (p.remaining > p.used) yield { op: 'skip', n: p.remaining - p.used };
  }
}

/** An MQTT client's bytes, the password and Authentication Data masked. */
export const mqttMasker = (): PayloadMasker => new WalkMasker(clientStream);
