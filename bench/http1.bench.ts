/**
 * HTTP/1 request parsing: Loupe's parser against Node's own llhttp binding
 * and http-parser-js, on the same corpus, in one run. Each parser must count
 * every message, or the run fails.
 */
import { HTTPParser as PeerJsParser } from 'http-parser-js';
import { Http1Parser } from '../src/parsers/http1/parser';
import { compare, report } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser: LlhttpParser } = require('_http_common') as { HTTPParser: any };

const REQUESTS = [
  'GET /api/v1/users/12345/orders?page=2&limit=50 HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: application/json\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: session=abcdef0123456789; theme=dark\r\nConnection: keep-alive\r\nX-Request-Id: 3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f\r\n\r\n',
  'POST /factorial HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 27\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n{"n": 20, "mode": "fast"}\r\n',
  'GET /health HTTP/1.1\r\nHost: backend\r\n\r\n',
  'PUT /objects/bucket/key.bin HTTP/1.1\r\nHost: storage\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n',
];
const COPIES = 5000;
const corpus = Buffer.from(Array.from({ length: COPIES }, (_, i) => REQUESTS[i % REQUESTS.length]).join(''));
const CHUNK = 16 * 1024;
const chunks: Buffer[] = [];
for (let i = 0; i < corpus.length; i += CHUNK) chunks.push(corpus.subarray(i, i + CHUNK));

function loupe(): number {
  const p = new Http1Parser();
  let n = 0;
  p.onMessage = () => n++;
  for (const c of chunks) p.feed('client', { data: c, ts: 0n, tid: 0 });
  return n;
}

function llhttp(): number {
  const p = new LlhttpParser();
  p.initialize(LlhttpParser.REQUEST, {});
  let n = 0;
  p[LlhttpParser.kOnHeaders] = () => {};
  p[LlhttpParser.kOnHeadersComplete] = () => 0;
  p[LlhttpParser.kOnBody] = () => {};
  p[LlhttpParser.kOnMessageComplete] = () => void n++;
  for (const c of chunks) {
    const r = p.execute(c);
    if (r instanceof Error) throw r;
  }
  return n;
}

function httpParserJs(): number {
  const p = new PeerJsParser(PeerJsParser.REQUEST);
  let n = 0;
  p[PeerJsParser.kOnHeaders] = () => {};
  p[PeerJsParser.kOnHeadersComplete] = () => 0;
  p[PeerJsParser.kOnBody] = () => {};
  p[PeerJsParser.kOnMessageComplete] = () => void n++;
  for (const c of chunks) {
    const r = p.execute(c);
    if (r instanceof Error) throw r;
  }
  return n;
}

const results = compare(corpus.length, [
  { name: 'loupe Http1Parser', run: loupe },
  { name: "Node's llhttp binding (_http_common)", run: llhttp },
  { name: 'http-parser-js', run: httpParserJs },
]);
for (const r of results) if (r.messages !== COPIES) throw new Error(`${r.name} parsed ${r.messages} of ${COPIES} requests`);
report(`HTTP/1 requests: ${COPIES} pipelined requests, ${(corpus.length / 1e6).toFixed(2)} MB in ${CHUNK / 1024} KiB chunks (node ${process.version})`, results);

// Linear time on huge header lines: a value of N bytes fed in 1 KiB chunks should cost ~N.
function longHeader(size: number): Buffer {
  return Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`);
}
const scaling = [100_000, 1_000_000].flatMap((size) => {
  const bytes = longHeader(size);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 1024) pieces.push(bytes.subarray(i, i + 1024));
  const run = () => {
    const p = new Http1Parser({ maxHeaderBytes: 2 << 20, maxHeaderCount: 256 });
    let n = 0;
    p.onMessage = (m) => {
      if (m.error) throw new Error(m.error);
      n++;
    };
    for (const c of pieces) p.feed('client', { data: c, ts: 0n, tid: 0 });
    return n;
  };
  return compare(bytes.length, [{ name: `loupe, one ${size.toLocaleString('en-US')}-byte header value`, run }], 9);
});
report('Linear time on long header lines (1 KiB chunks): MB/s should not fall as the line grows', scaling, false);
