/**
 * Parsers on realistic traffic, as the live agent feeds them: one chunk per
 * message (a syscall each), both directions of a connection, message mixes
 * taken from the tools people load servers with — a browser's HTTP/1
 * exchanges, pgbench's TPC-B transaction in its simple and prepared
 * protocols, sysbench's oltp_read_only against MySQL, redis-benchmark-like
 * pipelines. Each against the fastest JavaScript parser of its protocol, in
 * one run (issue 23: the goal is at least 1x for each).
 *
 * The peers are client libraries and parse one direction only (pg-protocol,
 * mysql2 and redis-parser read what a server sends; llhttp and
 * http-parser-js get one parser per direction); Loupe parses both directions,
 * as an agent must. The tables give each candidate's bytes.
 */
import { serialize } from 'pg-protocol';
import { HTTPParser as PeerJsParser } from 'http-parser-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Side } from '../src/parsers/types';
import { lenenc, myGreeting, myPacket, pgMsg } from './wire';
import { compare, type Result } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { HTTPParser: LlhttpParser } = require('_http_common') as { HTTPParser: any };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Parser: PgProtocolParser } = require('pg-protocol/dist/parser') as { Parser: new () => { parse(b: Buffer, cb: (m: { name: string }) => void): void } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Mysql2PacketParser = require(require('node:path').join(require.resolve('mysql2'), '../lib/packet_parser.js')) as new (onPacket: (p: unknown) => void) => {
  execute(b: Buffer): void;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RedisReplyParser = require('redis-parser') as new (o: { returnReply: (r: unknown) => void; returnError: (e: unknown) => void; returnBuffers?: boolean }) => {
  execute(b: Buffer): void;
};

/** A conversation: each message one chunk, in order. */
type Turn = { side: Side; data: Buffer };
const bytesOf = (turns: Turn[], side?: Side) => turns.reduce((n, t) => n + (side === undefined || t.side === side ? t.data.length : 0), 0);

type ParserClass = new () => { feed(side: Side, c: { data: Buffer; ts: bigint; tid: number }): void; onMessage: (m: any) => void };

/**
 * LOUPE_BENCH_AB=DIR: the same parsers from another compiled build (DIR holds its src/, as `tsc --outDir DIR`
 * writes it) run as one more candidate, interleaved with this build's: an A/B of a change in one process,
 * which a machine whose speed moves between runs needs.
 */
const AB_BUILD = process.env.LOUPE_BENCH_AB;
const PARSER_FOLDERS: Record<string, string> = { Http1Parser: 'http1', PostgresParser: 'postgres', MysqlParser: 'mysql', RedisParser: 'redis' };

/**
 * A parser class from a compiled build: `dist/` as `make build` writes it (what `loupe` runs), or a
 * `tsc --outDir DIR` of the repository (DIR/src/...). Not from src/ through tsx: there every exported
 * constant is read through a getter, which made the PostgreSQL parser 1.2x and the MySQL parser 1.9x
 * slower than the build the agent runs (A/B in one run, 2026-12-08), so the peers were compared
 * against a handicapped Loupe.
 */
function parserFrom(build: string, name: string): ParserClass {
  const file = ['parsers', 'src/parsers'].map((under) => path.resolve(build, under, PARSER_FOLDERS[name]!, 'parser.js')).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`no compiled ${name} under ${build}: run \`make build\` (npx tsc -p tsconfig.json) first`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(file) as Record<string, ParserClass>)[name]!;
}
const BUILD = path.resolve(__dirname, '..', 'dist');
const Http1Parser = parserFrom(BUILD, 'Http1Parser');
const PostgresParser = parserFrom(BUILD, 'PostgresParser');
const MysqlParser = parserFrom(BUILD, 'MysqlParser');
const RedisParser = parserFrom(BUILD, 'RedisParser');

/** Loupe's candidate (and the other build's, with LOUPE_BENCH_AB): feeds every turn, counts the messages of one side. */
function loupe(
  name: string,
  Parser: ParserClass,
  turns: Turn[],
  counted: (m: any) => boolean,
  adjust = (n: number) => n,
): Array<{ name: string; bytes: number; run: () => number }> {
  const one = (P: ParserClass) => () => adjust(feedAll(P, turns, counted));
  const mine = { name, bytes: bytesOf(turns), run: one(Parser) };
  if (!AB_BUILD) return [mine];
  const Other = parserFrom(AB_BUILD, Parser.name);
  return [mine, { name: `${name}, build ${AB_BUILD}`, bytes: mine.bytes, run: one(Other) }];
}

function feedAll(Parser: ParserClass, turns: Turn[], counted: (m: any) => boolean): number {
  const p = new Parser();
  let n = 0;
  p.onMessage = (m) => {
    if (counted(m)) n++;
  };
  for (const t of turns) p.feed(t.side, { data: t.data, ts: 0n, tid: 0 });
  return n;
}

const rows: Array<{ workload: string; results: Result[]; bytes: string[] }> = [];
/** LOUPE_BENCH_ONLY=PostgreSQL runs the workloads whose title holds it (for a profile of one parser). */
const ONLY = process.env.LOUPE_BENCH_ONLY;
/** LOUPE_BENCH_PROFILE=300: Loupe's candidate only, this many passes, no table (with LOUPE_BENCH_ONLY, under `node --cpu-prof`). */
const PROFILE_PASSES = Number(process.env.LOUPE_BENCH_PROFILE ?? 0);
function run(workload: string, expected: number, candidates: Array<{ name: string; bytes: number; run: () => number }>): void {
  if (ONLY && !workload.includes(ONLY)) return;
  for (const c of candidates) {
    const got = c.run();
    if (got !== expected) throw new Error(`${workload}: ${c.name} counted ${got}, expected ${expected}`);
  }
  if (PROFILE_PASSES > 0) {
    // Loupe's parser alone, many passes: for `node --cpu-prof` (no table).
    for (let i = 0; i < PROFILE_PASSES; i++) candidates[0]!.run();
    return;
  }
  rows.push({ workload, results: compare(candidates[0]!.bytes, candidates), bytes: candidates.map((c) => `${(c.bytes / 1e6).toFixed(2)} MB`) });
}

// ---- HTTP/1: a browser's page loads (14 request headers), answered with a 2 KB page (9 response headers).
const EXCHANGES = 2000;
const httpTurns: Turn[] = [];
for (let i = 0; i < EXCHANGES; i++) {
  const request =
    `GET /products/${1000 + (i % 97)}?ref=home&utm_source=mail HTTP/1.1\r\n` +
    'Host: shop.example.com\r\n' +
    'Connection: keep-alive\r\n' +
    'Cache-Control: max-age=0\r\n' +
    'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n' +
    'sec-ch-ua-mobile: ?0\r\n' +
    'sec-ch-ua-platform: "Linux"\r\n' +
    'Upgrade-Insecure-Requests: 1\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n' +
    'Sec-Fetch-Site: same-origin\r\n' +
    'Sec-Fetch-Mode: navigate\r\n' +
    'Referer: https://shop.example.com/\r\n' +
    'Accept-Encoding: gzip, deflate, br, zstd\r\n' +
    `Cookie: session=${(0x1f3a5c + i).toString(16)}a9e8d7b4c6a9e5f0a1b2c3d4e5f; theme=dark; consent=1\r\n\r\n`;
  const body = `<!doctype html><html><head><title>Product ${i}</title></head><body>${'<p>lorem ipsum dolor sit amet</p>'.repeat(58)}</body></html>`;
  const response =
    'HTTP/1.1 200 OK\r\n' +
    'Server: nginx/1.22.1\r\n' +
    'Date: Mon, 07 Dec 2026 02:20:00 GMT\r\n' +
    'Content-Type: text/html; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    'Connection: keep-alive\r\n' +
    'Cache-Control: private, max-age=0\r\n' +
    'Vary: Accept-Encoding\r\n' +
    'X-Request-Id: 3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f\r\n' +
    `ETag: "${i.toString(16)}-5f0a1b2c"\r\n\r\n` +
    body;
  httpTurns.push({ side: 'client', data: Buffer.from(request) }, { side: 'server', data: Buffer.from(response) });
}
function nodeParsers(Parser: any): () => number {
  return () => {
    const make = (kind: number) => {
      const p = new Parser(kind);
      if (p.initialize) p.initialize(kind, {});
      p[Parser.kOnHeaders] = () => {};
      p[Parser.kOnHeadersComplete] = () => 0;
      p[Parser.kOnBody] = () => {};
      return p;
    };
    const req = make(Parser.REQUEST);
    const res = make(Parser.RESPONSE);
    let n = 0;
    res[Parser.kOnMessageComplete] = () => void n++;
    req[Parser.kOnMessageComplete] = () => {};
    for (const t of httpTurns) {
      const r = (t.side === 'client' ? req : res).execute(t.data);
      if (r instanceof Error) throw r;
    }
    return n;
  };
}
run(`HTTP/1: ${EXCHANGES} browser page loads (14 request headers, 2 KB page with 9 headers), one message per chunk`, EXCHANGES, [
  ...loupe('loupe Http1Parser (both directions)', Http1Parser, httpTurns, (m) => m.kind === 'response'),
  { name: "Node's llhttp binding (a parser per direction)", bytes: bytesOf(httpTurns), run: nodeParsers(LlhttpParser) },
  { name: 'http-parser-js (a parser per direction)', bytes: bytesOf(httpTurns), run: nodeParsers(PeerJsParser) },
]);

// ---- PostgreSQL: pgbench's TPC-B transaction (BEGIN; 3 UPDATEs, a SELECT, an INSERT; END), simple and prepared protocols.
const TRANSACTIONS = 1000;
const cstr = (s: string) => Buffer.from(`${s}\0`);
const pgReady = pgMsg('Z', Buffer.from('T'));
const pgDone = (tag: string) => pgMsg('C', cstr(tag));
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const pgRow = (value: string) => pgMsg('D', Buffer.concat([Buffer.from([0, 1]), int32(value.length), Buffer.from(value)]));
const pgDescription = pgMsg(
  'T',
  Buffer.concat([Buffer.from([0, 1]), cstr('abalance'), int32(16397), Buffer.from([0, 3]), int32(23), Buffer.from([0, 4]), int32(-1), Buffer.from([0, 0])]),
);
function pgbench(prepared: boolean): Turn[] {
  const turns: Turn[] = [];
  const statements = (i: number) => {
    const [aid, tid, bid, delta] = [1 + ((i * 7919) % 100000), 1 + (i % 10), 1, ((i * 37) % 10000) - 5000];
    return [
      { sql: `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`, params: [delta, aid], tag: 'UPDATE 1' },
      { sql: `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`, params: [aid], tag: 'SELECT 1', row: String(delta * 3) },
      { sql: `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};`, params: [delta, tid], tag: 'UPDATE 1' },
      { sql: `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid};`, params: [delta, bid], tag: 'UPDATE 1' },
      {
        sql: `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`,
        params: [tid, bid, aid, delta],
        tag: 'INSERT 0 1',
      },
    ];
  };
  if (prepared)
    statements(0).forEach((s, k) => {
      turns.push({ side: 'client', data: Buffer.concat([serialize.parse({ name: `P0_${k + 1}`, text: s.sql.replace(/-?\d+/g, '$1'), types: [] }), serialize.sync()]) });
      turns.push({ side: 'server', data: Buffer.concat([pgMsg('1', Buffer.alloc(0)), pgReady]) });
    });
  for (let i = 0; i < TRANSACTIONS; i++) {
    const simple = (sql: string, answer: Buffer) => {
      turns.push({ side: 'client', data: serialize.query(sql) });
      turns.push({ side: 'server', data: Buffer.concat([answer, pgReady]) });
    };
    simple('BEGIN;', pgDone('BEGIN'));
    statements(i).forEach((s, k) => {
      const answer = Buffer.concat([...(s.row !== undefined && !prepared ? [pgDescription] : []), ...(s.row !== undefined ? [pgRow(s.row)] : []), pgDone(s.tag)]);
      if (!prepared) simple(s.sql, answer);
      else {
        turns.push({
          side: 'client',
          data: Buffer.concat([serialize.bind({ statement: `P0_${k + 1}`, values: s.params.map(String) }), serialize.execute(), serialize.sync()]),
        });
        turns.push({ side: 'server', data: Buffer.concat([pgMsg('2', Buffer.alloc(0)), answer, pgReady]) });
      }
    });
    simple('END;', pgDone('COMMIT'));
  }
  return turns;
}
for (const prepared of [false, true]) {
  const turns = pgbench(prepared);
  const server = turns.filter((t) => t.side === 'server');
  run(
    `PostgreSQL: ${TRANSACTIONS} pgbench TPC-B transactions, ${prepared ? 'prepared (-M prepared)' : 'simple (-M simple)'} protocol ("messages" = statements)`,
    TRANSACTIONS * 7,
    [
      ...loupe('loupe PostgresParser (both directions)', PostgresParser, turns, (m) => m.kind === 'response'),
      {
        name: 'pg-protocol Parser (server side)',
        bytes: bytesOf(turns, 'server'),
        run: () => {
          const p = new PgProtocolParser();
          let n = 0;
          for (const t of server)
            p.parse(t.data, (m) => {
              if (m.name === 'commandComplete') n++;
            });
          return n;
        },
      },
    ],
  );
}

// ---- MySQL: sysbench oltp_read_only (BEGIN; 10 point selects, 4 ranges of 100 rows; COMMIT), text protocol with EOF packets.
const myOk = myPacket(1, Buffer.from([0, 0, 0, 2, 0, 0, 0]));
const myEof = (seq: number) => myPacket(seq, Buffer.from([0xfe, 0, 0, 2, 0]));
function myResult(columns: string[], values: string[][]): Buffer {
  let seq = 1;
  const out = [myPacket(seq++, Buffer.from([columns.length]))];
  for (const name of columns)
    out.push(
      myPacket(
        seq++,
        Buffer.concat([
          lenenc('def'),
          lenenc('sbtest'),
          lenenc('sbtest1'),
          lenenc('sbtest1'),
          lenenc(name),
          lenenc(name),
          Buffer.from([0x0c, 0x21, 0, 0xe0, 1, 0, 0, 0xfe, 0, 0, 0, 0, 0]),
        ]),
      ),
    );
  out.push(myEof(seq++));
  for (const row of values) out.push(myPacket(seq++, Buffer.concat(row.map(lenenc))));
  out.push(myEof(seq++));
  return Buffer.concat(out);
}
const cValue = (id: number) => `${String(id).padStart(11, '0')}-`.repeat(10).slice(0, 119);
const myLogin: Turn[] = [
  {
    side: 'server',
    data: myGreeting('8.0.36'),
  },
  { side: 'client', data: myPacket(1, Buffer.concat([Buffer.from([0x0d, 0xa2, 0x0a, 0x00]), Buffer.alloc(28), Buffer.from('sbtest\0'), Buffer.from([0])])) },
  { side: 'server', data: myPacket(2, Buffer.from([0, 0, 0, 2, 0, 0, 0])) },
];
const myTurns: Turn[] = [...myLogin];
const MY_TRANSACTIONS = 200;
let myStatements = 0;
for (let i = 0; i < MY_TRANSACTIONS; i++) {
  const query = (sql: string, answer: Buffer) => {
    myTurns.push({ side: 'client', data: myPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from(sql)])) }, { side: 'server', data: answer });
    myStatements++;
  };
  query('BEGIN', myOk);
  for (let k = 0; k < 10; k++) {
    const id = 1 + (((i * 10 + k) * 7919) % 10000);
    query(`SELECT c FROM sbtest1 WHERE id=${id}`, myResult(['c'], [[cValue(id)]]));
  }
  const from = 1 + ((i * 131) % 9900);
  const range = Array.from({ length: 100 }, (_, k) => [cValue(from + k)]);
  query(`SELECT c FROM sbtest1 WHERE id BETWEEN ${from} AND ${from + 99}`, myResult(['c'], range));
  query(`SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ${from} AND ${from + 99}`, myResult(['SUM(k)'], [[String(from * 4999)]]));
  query(`SELECT c FROM sbtest1 WHERE id BETWEEN ${from} AND ${from + 99} ORDER BY c`, myResult(['c'], range));
  query(`SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ${from} AND ${from + 99} ORDER BY c`, myResult(['c'], range));
  query('COMMIT', myOk);
}
const myServer = myTurns.filter((t) => t.side === 'server').slice(2);
run(`MySQL: ${MY_TRANSACTIONS} sysbench oltp_read_only transactions (10 point selects, 4 ranges of 100 rows), text protocol ("messages" = statements)`, myStatements, [
  // The login's OK is a response too: one more than the statements.
  ...loupe(
    'loupe MysqlParser (both directions)',
    MysqlParser,
    myTurns,
    (m) => m.kind === 'response',
    (all) => all - 1,
  ),
  {
    name: 'mysql2 PacketParser (server side; frames packets)',
    bytes: bytesOf(myServer),
    run: () => {
      // A statement's answer ends with its last packet: an OK, or the second EOF of a result set.
      let n = 0;
      let eofs = 0;
      const p = new Mysql2PacketParser((packet: any) => {
        const first = packet.peekByte();
        if (first === 0x00 && eofs === 0) n++;
        else if (first === 0xfe && ++eofs === 2) {
          eofs = 0;
          n++;
        }
      });
      for (const t of myServer) p.execute(t.data);
      return n;
    },
  },
]);

// ---- Redis: pipelines of 16 commands (SET and GET of 100-byte values, INCR, LPUSH, LRANGE of 10), one write each way.
const PIPELINES = 1000;
const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
const redisTurns: Turn[] = [];
let replies = 0;
for (let i = 0; i < PIPELINES; i++) {
  const value = `v${i}`.padEnd(100, 'x');
  let out = '';
  let back = '';
  for (let k = 0; k < 4; k++) {
    out +=
      resp('SET', `key:${i}:${k}`, value) + resp('GET', `key:${i}:${k}`) + resp('INCR', 'counter') + resp(k % 2 ? 'LRANGE' : 'LPUSH', 'list', ...(k % 2 ? ['0', '9'] : [value]));
    back += `+OK\r\n$${value.length}\r\n${value}\r\n:${i * 4 + k + 1}\r\n` + (k % 2 ? `*10\r\n${`$${value.length}\r\n${value}\r\n`.repeat(10)}` : `:${i * 2 + k + 1}\r\n`);
    replies += 4;
  }
  redisTurns.push({ side: 'client', data: Buffer.from(out) }, { side: 'server', data: Buffer.from(back) });
}
const redisServer = redisTurns.filter((t) => t.side === 'server');
run(`Redis: ${PIPELINES} pipelines of 16 commands (SET/GET of 100-byte values, INCR, LPUSH, LRANGE of 10), one write each way ("messages" = replies)`, replies, [
  ...loupe('loupe RedisParser (both directions)', RedisParser, redisTurns, (m) => m.kind === 'response'),
  {
    name: 'redis-parser (ioredis, node-redis 3; server side)',
    bytes: bytesOf(redisServer),
    run: () => {
      let n = 0;
      const p = new RedisReplyParser({ returnReply: () => void n++, returnError: () => void n++, returnBuffers: true });
      for (const t of redisServer) p.execute(t.data);
      return n;
    },
  },
]);

console.log(`\nParsers on realistic traffic, one message per chunk (node ${process.version}); goal: loupe at least 1x the peer (issue 23)`);
console.log('| workload | parser | bytes given | messages/s | median ms per pass | loupe faster by |');
console.log('|---|---|---:|---:|---:|---:|');
for (const { workload, results, bytes } of rows) {
  results.forEach((r, i) => {
    const perSecond = Math.round(r.messages / (r.medianMs / 1000)).toLocaleString('en-US');
    console.log(`| ${i === 0 ? workload : ''} | ${r.name} | ${bytes[i]} | ${perSecond} | ${r.medianMs.toFixed(2)} | ${(r.medianMs / results[0]!.medianMs).toFixed(2)}x |`);
  });
}
