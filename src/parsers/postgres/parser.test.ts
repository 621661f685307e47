import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { PostgresParser } from './parser';
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';

/** Backend messages, encoded as a server would (the serializer only does frontend ones). */
const be = {
  msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
    const h = Buffer.alloc(5);
    h.write(type, 0, 'latin1');
    h.writeUInt32BE(body.length + 4, 1);
    return Buffer.concat([h, body]);
  },
  cstr: (s: string) => Buffer.from(`${s}\0`, 'utf8'),
  authOk() {
    const b = Buffer.alloc(4);
    return be.msg('R', b);
  },
  ready: (status = 'I') => be.msg('Z', Buffer.from(status, 'latin1')),
  rowDescription: (n: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    return be.msg('T', Buffer.concat([b, ...Array.from({ length: n }, (_, i) => Buffer.concat([be.cstr(`c${i}`), Buffer.alloc(18)]))]));
  },
  dataRow: (value: string) => {
    const b = Buffer.alloc(6);
    b.writeInt16BE(1, 0);
    b.writeInt32BE(Buffer.byteLength(value), 2);
    return be.msg('D', Buffer.concat([b, Buffer.from(value)]));
  },
  complete: (tag: string) => be.msg('C', be.cstr(tag)),
  error: (code: string, message: string, severity = 'ERROR') =>
    be.msg(
      'E',
      Buffer.concat([
        Buffer.from('S'),
        be.cstr(severity),
        Buffer.from('V'),
        be.cstr(severity),
        Buffer.from('C'),
        be.cstr(code),
        Buffer.from('M'),
        be.cstr(message),
        Buffer.alloc(1),
      ]),
    ),
  parseComplete: () => be.msg('1'),
  bindComplete: () => be.msg('2'),
  empty: () => be.msg('I'),
};

const client = (bytes: Buffer): Turn => ({ side: 'client', bytes });
const server = (...parts: Buffer[]): Turn => ({ side: 'server', bytes: Buffer.concat(parts) });
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new PostgresParser(), turns, cuts) as DbMessage[];
const requests = (ms: DbMessage[]) => ms.filter((m): m is DbRequest => m.kind === 'request');
const responses = (ms: DbMessage[]) => ms.filter((m): m is DbResponse => m.kind === 'response');

const STARTUP: Turn[] = [
  client(serialize.startup({ user: 'app', database: 'shop' })),
  server(be.authOk(), be.msg('S', Buffer.concat([be.cstr('server_version'), be.cstr('15.0')])), be.msg('K', Buffer.alloc(8)), be.ready()),
];

describe('PostgresParser', () => {
  it('reads start-up, a simple query with rows, and the database it ran against', () => {
    const ms = parse([
      ...STARTUP,
      client(serialize.query("SELECT id FROM users WHERE name = 'ann'")),
      server(be.rowDescription(1), be.dataRow('1'), be.dataRow('2'), be.complete('SELECT 2'), be.ready()),
    ]);
    expect(requests(ms).map((r) => [r.command, r.query, r.database, r.user, r.control])).toEqual([
      ['Startup', undefined, 'shop', 'app', true],
      ['Query', "SELECT id FROM users WHERE name = 'ann'", 'shop', 'app', undefined],
    ]);
    expect(responses(ms).map((r) => [r.command, r.rows, r.tag])).toEqual([
      ['ReadyForQuery', undefined, undefined],
      ['CommandComplete', 2, 'SELECT 2'],
    ]);
  });

  it('stitches Execute to the text of the statement its portal was bound to, named and unnamed', () => {
    const ms = parse([
      ...STARTUP,
      client(
        Buffer.concat([
          serialize.parse({ name: 'ins', text: 'INSERT INTO t(a) VALUES ($1)', types: [] }),
          serialize.bind({ statement: 'ins', values: ['x'] }),
          serialize.execute({}),
          serialize.parse({ text: 'SELECT $1::int', types: [] }),
          serialize.bind({ values: ['5'] }),
          serialize.execute({}),
          serialize.sync(),
        ]),
      ),
      server(be.parseComplete(), be.bindComplete(), be.complete('INSERT 0 1'), be.parseComplete(), be.bindComplete(), be.dataRow('5'), be.complete('SELECT 1'), be.ready()),
    ]);
    expect(
      requests(ms)
        .slice(1)
        .map((r) => [r.command, r.query, r.params]),
    ).toEqual([
      ['Execute', 'INSERT INTO t(a) VALUES ($1)', 1],
      ['Execute', 'SELECT $1::int', 1],
    ]);
    expect(
      responses(ms)
        .slice(1)
        .map((r) => [r.command, r.rows, r.tag]),
    ).toEqual([
      ['CommandComplete', 1, 'INSERT 0 1'],
      ['CommandComplete', 1, 'SELECT 1'],
    ]);
  });

  it('answers an error with its SQLSTATE, and the Executes the server skipped after it as not executed', () => {
    const ms = parse([
      ...STARTUP,
      client(
        Buffer.concat([
          serialize.parse({ text: 'SELECT 1/0', types: [] }),
          serialize.bind({}),
          serialize.execute({}),
          serialize.parse({ text: 'SELECT 2', types: [] }),
          serialize.bind({}),
          serialize.execute({}),
          serialize.sync(),
        ]),
      ),
      server(be.parseComplete(), be.bindComplete(), be.error('22012', 'division by zero'), be.ready('I')),
      client(serialize.query('SELECT nope')),
      server(be.error('42703', 'column "nope" does not exist'), be.ready()),
    ]);
    expect(
      responses(ms)
        .slice(1)
        .map((r) => [r.command, r.errorCode, r.errorMessage]),
    ).toEqual([
      ['ErrorResponse', '22012', 'division by zero'],
      ['NotExecuted', undefined, 'not executed: an earlier message of its batch failed'],
      ['ErrorResponse', '42703', 'column "nope" does not exist'],
    ]);
  });

  it('says when an Execute names a statement prepared before the capture began', () => {
    const ms = parse([
      client(Buffer.concat([serialize.bind({ statement: 'old' }), serialize.execute({}), serialize.sync()])),
      server(be.bindComplete(), be.complete('UPDATE 3'), be.ready()),
    ]);
    expect(requests(ms)[0]!.note).toMatch(/prepared before the capture began/);
    expect(responses(ms)[0]!.rows).toBe(3);
  });

  it('stops at an accepted SSLRequest and says the rest is encrypted', () => {
    const ms = parse([client(serialize.requestSsl()), server(Buffer.from('S')), client(Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]))]);
    expect(ms.map((m) => (m as DbRequest).command)).toEqual(['SSLRequest', 'EncryptionAccepted', 'Encrypted']);
    expect(ms[2]!.kind === 'response' && (ms[2] as DbResponse).note).toMatch(/encrypted and not parsed/);
  });

  it('after a refused SSLRequest reads the start-up that follows', () => {
    const ms = parse([client(serialize.requestSsl()), server(Buffer.from('N')), ...STARTUP]);
    expect(ms.map((m) => (m as DbRequest).command)).toEqual(['SSLRequest', 'EncryptionRefused', 'Startup', 'ReadyForQuery']);
  });

  it('counts COPY rows inside the Query and skips the copied data', () => {
    const ms = parse([
      ...STARTUP,
      client(serialize.query('COPY t FROM STDIN')),
      server(be.msg('G', Buffer.from([0, 0, 0]))),
      client(Buffer.concat([serialize.copyData(Buffer.from('1\n2\n')), serialize.copyDone()])),
      server(be.complete('COPY 2'), be.ready()),
    ]);
    expect(responses(ms)[1]).toMatchObject({ command: 'CommandComplete', tag: 'COPY 2' });
  });

  it('counts COPY TO STDOUT rows from its tag and says how many notices came', () => {
    const ms = parse([
      ...STARTUP,
      client(serialize.query('COPY t TO STDOUT')),
      server(be.msg('H', Buffer.from([0, 0, 0])), be.msg('d', Buffer.from('1\n')), be.msg('d', Buffer.from('2\n')), be.msg('c'), be.complete('COPY 2'), be.ready()),
      client(serialize.query('DROP TABLE IF EXISTS nope; SELECT 1')),
      server(
        be.msg('N', Buffer.concat([Buffer.from('S'), be.cstr('NOTICE'), Buffer.from('M'), be.cstr('table "nope" does not exist, skipping'), Buffer.alloc(1)])),
        be.complete('DROP TABLE'),
        be.dataRow('1'),
        be.complete('SELECT 1'),
        be.ready(),
      ),
    ]);
    expect(
      responses(ms)
        .slice(1)
        .map((r) => [r.rows, r.tag, r.note]),
    ).toEqual([
      [2, 'COPY 2', undefined],
      [1, 'SELECT 1', '1 notice from the server'],
    ]);
  });

  it('answers what was owed with the loss when bytes are lost, then resumes at the next message boundary', () => {
    const p = new PostgresParser();
    const out: DbMessage[] = [];
    p.onMessage = (m) => out.push(m);
    p.feed('client', { data: serialize.query('SELECT 1'), ts: 1n, tid: 1 });
    p.feed('server', { data: be.dataRow('1').subarray(0, 4), ts: 2n, tid: 1 });
    p.gap('server', 100, 3n);
    p.feed('client', { data: serialize.query('SELECT 2'), ts: 4n, tid: 1 });
    p.feed('server', { data: Buffer.concat([be.complete('SELECT 1'), be.ready()]), ts: 5n, tid: 1 });
    expect(out.map((m) => `${m.kind} ${(m as DbRequest).command}${m.error ? ' !' : ''}`)).toEqual([
      'request Query',
      'response Lost !',
      'request Query',
      'response CommandComplete',
    ]);
  });

  it('frames messages larger than the kernel copies: a long query and wide rows keep their real result, with the bytes lost', () => {
    const long = `SELECT '${'x'.repeat(6000)}' AS wide`;
    const turns: Turn[] = [
      ...STARTUP,
      client(serialize.query(long)),
      server(be.rowDescription(1), be.dataRow('w'.repeat(10_000)), be.dataRow('v'.repeat(9_000)), be.complete('SELECT 2'), be.ready()),
      client(serialize.query('SELECT 1')),
      server(be.rowDescription(1), be.dataRow('1'), be.complete('SELECT 1'), be.ready()),
    ];
    // PostgreSQL flushes its 8 KiB send buffer: each write copied up to 4096 bytes.
    const ms = runCopied(() => new PostgresParser(), turns, 4096, 8192) as DbMessage[];
    const [, query, second] = requests(ms);
    expect(query).toMatchObject({ command: 'Query', lostBytes: serialize.query(long).length - 4096 });
    expect(long.startsWith(query!.query!)).toBe(true);
    expect(second).toMatchObject({ command: 'Query', query: 'SELECT 1' });
    const [, wide, one] = responses(ms);
    expect(wide).toMatchObject({ command: 'CommandComplete', rows: 2, tag: 'SELECT 2' });
    expect(wide!.error).toBeUndefined();
    expect(wide!.lostBytes).toBeGreaterThan(8000);
    expect(one).toMatchObject({ command: 'CommandComplete', rows: 1 });
    expect(one!.lostBytes).toBeUndefined();
  });

  it('gives the same messages however the bytes are cut', () => {
    const turns: Turn[] = [
      ...STARTUP,
      client(serialize.query('SELECT * FROM orders WHERE total > 10')),
      server(be.rowDescription(2), be.dataRow('a'.repeat(300)), be.dataRow('b'), be.complete('SELECT 2'), be.ready()),
      client(Buffer.concat([serialize.parse({ text: 'DELETE FROM t WHERE id = $1', types: [] }), serialize.bind({ values: ['9'] }), serialize.execute({}), serialize.sync()])),
      server(be.parseComplete(), be.bindComplete(), be.complete('DELETE 1'), be.ready()),
      client(serialize.query('')),
      server(be.empty(), be.ready()),
    ];
    const whole = shape(parse(turns));
    expect(whole.length).toBe(8);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        expect(shape(parse(turns, cuts))).toEqual(whole);
      }),
    );
  });

  it('round-trips generated queries and results', () => {
    const statement = fc.record({ text: fc.string({ maxLength: 60 }).filter((s) => !s.includes('\0')), rows: fc.nat(5), extended: fc.boolean() });
    fc.assert(
      fc.property(fc.array(statement, { maxLength: 8 }), (stmts) => {
        const turns: Turn[] = [...STARTUP];
        for (const s of stmts) {
          const rows = Array.from({ length: s.rows }, (_, i) => be.dataRow(String(i)));
          if (s.extended) {
            turns.push(client(Buffer.concat([serialize.parse({ text: s.text, types: [] }), serialize.bind({}), serialize.execute({}), serialize.sync()])));
            turns.push(server(be.parseComplete(), be.bindComplete(), ...rows, be.complete(`SELECT ${s.rows}`), be.ready()));
          } else {
            turns.push(client(serialize.query(s.text)));
            turns.push(server(...rows, be.complete(`SELECT ${s.rows}`), be.ready()));
          }
        }
        const ms = parse(turns);
        expect(
          requests(ms)
            .slice(1)
            .map((r) => [r.command, r.query]),
        ).toEqual(stmts.map((s) => [s.extended ? 'Execute' : 'Query', s.text]));
        expect(
          responses(ms)
            .slice(1)
            .map((r) => r.rows),
        ).toEqual(stmts.map((s) => s.rows));
      }),
    );
  });

  it('never throws or hangs on random bytes, on either side', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ side: fc.constantFrom('client' as const, 'server' as const), bytes: fc.uint8Array({ maxLength: 200 }) }), { maxLength: 10 }), (turns) => {
        parse(turns.map((t) => ({ side: t.side, bytes: Buffer.from(t.bytes) })));
      }),
    );
  });
});
