/**
 * Database protocol decoding: Loupe's PostgreSQL and MySQL parsers against the
 * parsers node-postgres and mysql2 use, on the same bytes, in one run.
 *
 * The work is not identical and the table says so: the peers are client
 * libraries and materialise what they decode (pg-protocol makes a message
 * object per DataRow with its field values; mysql2's PacketParser frames
 * packets, joining payloads, and hands each to a callback), while Loupe frames
 * every message of both directions but only counts rows — an agent has no use
 * for the values and must not keep them. Each candidate must see every row.
 */
import { serialize } from 'pg-protocol';
import { PostgresParser } from '../src/parsers/postgres/parser';
import { MysqlParser } from '../src/parsers/mysql/parser';
import type { DbMessage } from '../src/parsers/db';
import { lenenc, myGreeting, myPacket, pgMsg } from './wire';
import { compare, report } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Parser: PgProtocolParser } = require('pg-protocol/dist/parser') as { Parser: new () => { parse(b: Buffer, cb: (m: { name: string }) => void): void } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Mysql2PacketParser = require(require('node:path').join(require.resolve('mysql2'), '../lib/packet_parser.js')) as new (onPacket: (p: unknown) => void) => {
  execute(b: Buffer): void;
};

const CHUNK = 16 * 1024;
const chunksOf = (b: Buffer) => Array.from({ length: Math.ceil(b.length / CHUNK) }, (_, i) => b.subarray(i * CHUNK, (i + 1) * CHUNK));
const QUERIES = 40;
const ROWS = 1000;

// PostgreSQL: each query answered with RowDescription, 1000 DataRows of 3 text columns, CommandComplete, ReadyForQuery.
function pgRow(i: number): Buffer {
  const cols = [String(i), `customer-${i}@example.com`, (i * 3.25).toFixed(2)];
  const parts = [Buffer.from([0, cols.length])];
  for (const c of cols) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(c.length);
    parts.push(len, Buffer.from(c));
  }
  return pgMsg('D', Buffer.concat(parts));
}
const pgDescription = pgMsg('T', Buffer.concat([Buffer.from([0, 3]), ...['id', 'email', 'total'].map((n) => Buffer.concat([Buffer.from(`${n}\0`), Buffer.alloc(18)]))]));
const pgAnswer = Buffer.concat([pgDescription, ...Array.from({ length: ROWS }, (_, i) => pgRow(i)), pgMsg('C', Buffer.from(`SELECT ${ROWS}\0`)), pgMsg('Z', Buffer.from('I'))]);
const pgServer = Buffer.concat(Array.from({ length: QUERIES }, () => pgAnswer));
const pgClient = serialize.query('SELECT id, email, total FROM orders WHERE total > 10');
const pgChunks = chunksOf(pgServer);

function loupePg(): number {
  const p = new PostgresParser();
  let rows = 0;
  p.onMessage = (m: DbMessage) => {
    if (m.kind === 'response') rows += m.rows ?? 0;
  };
  for (let q = 0; q < QUERIES; q++) p.feed('client', { data: pgClient, ts: 0n, tid: 0 });
  for (const c of pgChunks) p.feed('server', { data: c, ts: 0n, tid: 0 });
  return rows;
}

function peerPg(): number {
  const p = new PgProtocolParser();
  let rows = 0;
  for (const c of pgChunks)
    p.parse(c, (m) => {
      if (m.name === 'dataRow') rows++;
    });
  return rows;
}

// MySQL: each COM_QUERY answered with a text result set of 1000 rows (EOF packets).
function myAnswer(): Buffer {
  let seq = 1;
  const out = [myPacket(seq++, Buffer.from([3]))];
  for (const name of ['id', 'email', 'total']) {
    out.push(
      myPacket(
        seq++,
        Buffer.concat([
          lenenc('def'),
          lenenc('shop'),
          lenenc('orders'),
          lenenc('orders'),
          lenenc(name),
          lenenc(name),
          Buffer.from([0x0c, 0x21, 0, 0xff, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]),
        ]),
      ),
    );
  }
  out.push(myPacket(seq++, Buffer.from([0xfe, 0, 0, 2, 0])));
  for (let i = 0; i < ROWS; i++) {
    const cols = [String(i), `customer-${i}@example.com`, (i * 3.25).toFixed(2)];
    out.push(myPacket(seq++, Buffer.concat(cols.map((c) => Buffer.concat([Buffer.from([c.length]), Buffer.from(c)])))));
  }
  out.push(myPacket(seq++, Buffer.from([0xfe, 0, 0, 2, 0])));
  return Buffer.concat(out);
}
const myServer = Buffer.concat(Array.from({ length: QUERIES }, () => myAnswer()));
const myClient = myPacket(0, Buffer.concat([Buffer.from([3]), Buffer.from('SELECT id, email, total FROM orders WHERE total > 10')]));
const myChunks = chunksOf(myServer);
const myLogin = [
  myGreeting('10.11.6-MariaDB'),
  myPacket(1, Buffer.concat([Buffer.from([0x0d, 0xa2, 0x0a, 0x00]), Buffer.alloc(28), Buffer.from('app\0'), Buffer.from([0])])),
  myPacket(2, Buffer.from([0, 0, 0, 2, 0, 0, 0])),
];

function loupeMysql(): number {
  const p = new MysqlParser();
  let rows = 0;
  p.onMessage = (m: DbMessage) => {
    if (m.kind === 'response' && m.command === 'ResultSet') rows += m.rows ?? 0;
  };
  p.feed('server', { data: myLogin[0]!, ts: 0n, tid: 0 });
  p.feed('client', { data: myLogin[1]!, ts: 0n, tid: 0 });
  p.feed('server', { data: myLogin[2]!, ts: 0n, tid: 0 });
  for (let q = 0; q < QUERIES; q++) p.feed('client', { data: myClient, ts: 0n, tid: 0 });
  for (const c of myChunks) p.feed('server', { data: c, ts: 0n, tid: 0 });
  return rows;
}

function peerMysql(): number {
  let packets = 0;
  const p = new Mysql2PacketParser(() => packets++);
  for (const c of myChunks) p.execute(c);
  // Rows are the packets that are not column counts, definitions or EOFs.
  return packets - QUERIES * (1 + 3 + 2);
}

const expected = QUERIES * ROWS;
for (const [name, run] of [
  ['loupe pg', loupePg],
  ['pg-protocol', peerPg],
  ['loupe mysql', loupeMysql],
  ['mysql2', peerMysql],
] as const) {
  const got = run();
  if (got !== expected) throw new Error(`${name} saw ${got} rows, expected ${expected}`);
}

report(
  `PostgreSQL result sets: ${QUERIES} queries x ${ROWS} rows, ${(pgServer.length / 1e6).toFixed(2)} MB of server bytes in 16 KiB chunks ("messages" = rows)`,
  compare(pgServer.length, [
    { name: 'loupe PostgresParser (frames both sides, counts rows)', run: loupePg },
    { name: 'pg-protocol Parser (node-postgres; decodes every row)', run: peerPg },
  ]),
);
report(
  `MySQL text result sets: ${QUERIES} queries x ${ROWS} rows, ${(myServer.length / 1e6).toFixed(2)} MB of server bytes in 16 KiB chunks ("messages" = rows)`,
  compare(myServer.length, [
    { name: 'loupe MysqlParser (frames both sides, counts rows)', run: loupeMysql },
    { name: 'mysql2 PacketParser (frames packets)', run: peerMysql },
  ]),
);
