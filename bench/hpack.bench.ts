/**
 * HPACK decoding: Loupe's HpackDecoder against hpack.js's decompressor on the
 * same header blocks (encoded by hpack.js with Huffman strings and the dynamic
 * table, as browsers, curl and gRPC libraries send them), in one run. Each
 * decoder must return every field of every block.
 */
import { HpackDecoder } from '../src/parsers/http2/hpack';
import { compare, report } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string }>): void; read(): Buffer } };
  decompressor: { create(o: { table: { size: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null } };
};

const BLOCKS = 2000;
const shapes = [
  (i: number) => ({
    ':method': 'GET',
    ':scheme': 'https',
    ':authority': 'shop.example.com',
    ':path': `/api/v1/users/${i}/orders?page=${i % 7}`,
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    accept: 'application/json',
    'accept-language': 'en-US,en;q=0.9',
    'accept-encoding': 'gzip, deflate, br',
    cookie: `session=${(i * 7919).toString(16)}abcdef; theme=dark`,
    'x-request-id': `3f1c2a9e-8d7b-4c6a-9e5f-${String(i).padStart(12, '0')}`,
  }),
  (i: number) => ({
    ':method': 'POST',
    ':scheme': 'http',
    ':authority': 'greeter:50051',
    ':path': '/demo.v1.Greeter/SayHello',
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '1S',
    'grpc-accept-encoding': 'identity,deflate,gzip',
    traceparent: `00-0af7651916cd43dd8448eb211c80319c-${(i + 1).toString(16).padStart(16, '0')}-01`,
  }),
  (i: number) => ({
    ':status': i % 10 ? '200' : '404',
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(100 + i),
    date: 'Wed, 25 Nov 2026 15:00:00 GMT',
    server: 'loupe-bench',
    'cache-control': 'no-store',
    vary: 'accept-encoding',
  }),
];
const enc = hpack.compressor.create({ table: { size: 4096 } });
const blocks: Buffer[] = [];
let fields = 0;
for (let i = 0; i < BLOCKS; i++) {
  const h = shapes[i % shapes.length]!(i);
  enc.write(Object.entries(h).map(([name, value]) => ({ name, value })));
  blocks.push(enc.read());
  fields += Object.keys(h).length;
}
const bytes = blocks.reduce((n, b) => n + b.length, 0);

function loupe(): number {
  const d = new HpackDecoder();
  let n = 0;
  for (const b of blocks) n += d.decode(b).headers.length;
  return n;
}

function hpackjs(): number {
  const d = hpack.decompressor.create({ table: { size: 4096 } });
  let n = 0;
  for (const b of blocks) {
    d.write(b);
    d.execute();
    while (d.read()) n++;
  }
  return n;
}

for (const [name, run] of [
  ['loupe', loupe],
  ['hpack.js', hpackjs],
] as const) {
  const got = run();
  if (got !== fields) throw new Error(`${name} decoded ${got} fields, expected ${fields}`);
}
report(
  `HPACK: ${BLOCKS} header blocks (browser requests, gRPC requests, responses), ${(bytes / 1e3).toFixed(0)} kB, ${fields} fields ("messages" = fields)`,
  compare(bytes, [
    { name: 'loupe HpackDecoder', run: loupe },
    { name: 'hpack.js decompressor', run: hpackjs },
  ]),
);
