/** HTTP/2 frames built by hand, for the parser's tests and bench/http2. */

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** A SETTINGS frame with these [identifier, value] entries. */
export const settings = (entries: Array<[number, number]> = []): Buffer =>
  frame(
    4,
    0,
    0,
    Buffer.concat(
      entries.map(([id, v]) => {
        const b = Buffer.alloc(6);
        b.writeUInt16BE(id, 0);
        b.writeUInt32BE(v, 2);
        return b;
      }),
    ),
  );
