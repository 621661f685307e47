/** Wire builders the database benchmarks share: PostgreSQL messages and MySQL packets as servers and clients send them. */

/** A PostgreSQL message: its type byte, a length that counts itself, the body. */
export function pgMsg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

/** A MySQL packet: a 3-byte little-endian length, the sequence id, the payload. */
export function myPacket(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq & 0xff;
  return Buffer.concat([h, payload]);
}

/** MySQL's length-encoded string, for strings under 251 bytes. */
export const lenenc = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);

/** A MySQL server's greeting (HandshakeV10) naming `version`, with the capabilities a modern server offers. */
export function myGreeting(version: string): Buffer {
  return myPacket(
    0,
    Buffer.concat([
      Buffer.from([10]),
      Buffer.from(`${version}\0`),
      Buffer.alloc(4),
      Buffer.alloc(8),
      Buffer.alloc(1),
      Buffer.from([0xff, 0xf7]),
      Buffer.alloc(1),
      Buffer.alloc(2),
      Buffer.from([0xff, 0x81]),
      Buffer.alloc(1),
      Buffer.alloc(10),
    ]),
  );
}
