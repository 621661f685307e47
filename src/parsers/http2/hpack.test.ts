import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HpackDecoder, HpackError, huffmanDecode } from './hpack';
import { HUFFMAN_CODES, STATIC_TABLE } from './hpack-tables';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpackjs = require('hpack.js') as {
  compressor: {
    create(o: { table: { size: number } }): {
      write(h: Array<{ name: string; value: string; huffman?: boolean; neverIndex?: boolean }>): void;
      read(): Buffer;
      updateTableSize(n: number): void;
    };
  };
};

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Field names and values as HTTP/2 carries them: lower-case names, visible ASCII values. */
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const headerList = fc.array(fc.tuple(name, value, fc.boolean()), { minLength: 1, maxLength: 12 });

describe('HPACK', () => {
  it('has RFC 7541 tables: 61 static entries and 257 codes', () => {
    expect(STATIC_TABLE).toHaveLength(61);
    expect(STATIC_TABLE[1]).toEqual([':method', 'GET']);
    expect(STATIC_TABLE[60]).toEqual(['www-authenticate', '']);
    expect(HUFFMAN_CODES).toHaveLength(257);
    expect(HUFFMAN_CODES['a'.charCodeAt(0)]).toEqual([5, 0x3]);
    expect(HUFFMAN_CODES[256]).toEqual([30, 0x3fffffff]);
  });

  it('decodes RFC 7541 C.4 (requests with Huffman coding) and keeps the dynamic table across blocks', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')).headers).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).headers).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')).headers).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    expect(d.tableSize).toBe(164);
  });

  it('round-trips what hpack.js encodes, across table sizes, Huffman or not, never-indexed too', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 64, 256, 4096), fc.array(headerList, { minLength: 1, maxLength: 6 }), (size, blocks) => {
        const enc = hpackjs.compressor.create({ table: { size } });
        const dec = new HpackDecoder(false, 4096);
        for (const block of blocks) {
          enc.write(block.map(([n, v, huff]) => ({ name: n, value: v, huffman: huff, neverIndex: huff && v.length % 5 === 0 })));
          expect(dec.decode(enc.read()).headers).toEqual(block.map(([n, v]) => [n, v]));
        }
      }),
    );
  });

  it('reports fields naming entries from before a late join as unknown, and keeps going', () => {
    const enc = hpackjs.compressor.create({ table: { size: 4096 } });
    enc.write([
      { name: 'x-tenant', value: 'acme' },
      { name: 'x-user', value: 'u1' },
    ]);
    enc.read(); // the capture missed this block
    enc.write([
      { name: 'x-tenant', value: 'acme' },
      { name: 'x-new', value: 'fresh' },
      { name: ':method', value: 'GET' },
    ]);
    const late = new HpackDecoder(true);
    const { headers, unknown } = late.decode(enc.read());
    expect(unknown).toHaveLength(1);
    expect(headers.filter(([n]) => !n.startsWith('<unknown'))).toEqual([
      ['x-new', 'fresh'],
      [':method', 'GET'],
    ]);
    // The same block on a decoder that saw the start is an error: it must not guess.
    expect(() => new HpackDecoder(false).decode(hex('be'))).toThrow(HpackError);
  });

  it('decodes any Huffman string a canonical encoder makes', () => {
    const encode = (s: string) => {
      let bits = 0n;
      let n = 0n;
      for (const ch of Buffer.from(s, 'latin1')) {
        const [len, code] = HUFFMAN_CODES[ch]!;
        bits = (bits << BigInt(len)) | BigInt(code);
        n += BigInt(len);
      }
      const pad = (8n - (n % 8n)) % 8n;
      bits = (bits << pad) | ((1n << pad) - 1n);
      const out = Buffer.alloc(Number((n + pad) / 8n));
      for (let i = out.length - 1; i >= 0; i--, bits >>= 8n) out[i] = Number(bits & 0xffn);
      return out;
    };
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 60 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
        (s) => {
          const b = encode(s);
          expect(huffmanDecode(b, 0, b.length)).toBe(s);
        },
      ),
    );
  });

  it('never throws anything but HpackError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (bytes, late) => {
        try {
          new HpackDecoder(late).decode(Buffer.from(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(HpackError);
        }
      }),
    );
  });
});
