import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MysqlParser } from './parser';
import { StreamMasker, type SocketMasking } from '../../security/redact-payload';
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';

/** MySQL packets as a server and a client put them on the wire. */
const my = {
  packet(seq: number, payload: Buffer): Buffer {
    const parts: Buffer[] = [];
    let at = 0;
    do {
      const n = Math.min(0xffffff, payload.length - at);
      const h = Buffer.alloc(4);
      h.writeUIntLE(n, 0, 3);
      h[3] = seq++ & 0xff;
      parts.push(h, payload.subarray(at, at + n));
      at += n;
      if (n < 0xffffff) break;
    } while (true);
    return Buffer.concat(parts);
  },
  lenenc(n: number): Buffer {
    if (n < 0xfb) return Buffer.from([n]);
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  },
  greeting(caps: number): Buffer {
    const p = Buffer.concat([
      Buffer.from([10]),
      Buffer.from('10.11.6-MariaDB\0'),
      Buffer.alloc(4),
      Buffer.alloc(8, 1),
      Buffer.alloc(1),
      Buffer.alloc(2),
      Buffer.alloc(1),
      Buffer.alloc(2),
      Buffer.alloc(2),
      Buffer.from([21]),
      Buffer.alloc(10),
      Buffer.alloc(13, 2),
      Buffer.from('mysql_native_password\0'),
    ]);
    const capsAt = 1 + 16 + 4 + 8 + 1;
    p.writeUInt16LE(caps & 0xffff, capsAt);
    p.writeUInt16LE(caps >>> 16, capsAt + 5);
    return my.packet(0, p);
  },
  handshakeResponse(caps: number, user: string, db?: string): Buffer {
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps >>> 0, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45;
    return my.packet(
      1,
      Buffer.concat([head, Buffer.from(`${user}\0`), Buffer.from([20]), Buffer.alloc(20, 3), ...(db ? [Buffer.from(`${db}\0`)] : []), Buffer.from('mysql_native_password\0')]),
    );
  },
  ok: (seq: number, affected = 0, status = 2) =>
    my.packet(seq, Buffer.concat([Buffer.from([0]), my.lenenc(affected), my.lenenc(0), Buffer.from([status & 0xff, status >> 8, 0, 0])])),
  err: (seq: number, code: number, state: string, message: string) => {
    const b = Buffer.alloc(3);
    b[0] = 0xff;
    b.writeUInt16LE(code, 1);
    return my.packet(seq, Buffer.concat([b, Buffer.from(`#${state}${message}`)]));
  },
  eof: (seq: number, status = 2) => my.packet(seq, Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8])),
  /** A text result set: column count, definitions, rows, and its end. */
  resultSet(seq: number, columns: number, rows: string[][], deprecateEof: boolean, status = 2): Buffer {
    const out = [my.packet(seq++, my.lenenc(columns))];
    for (let i = 0; i < columns; i++) out.push(my.packet(seq++, Buffer.from(`\x03def\x00\x01t\x01t\x01c\x01c\x0c\x21\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00`, 'latin1')));
    if (!deprecateEof) out.push(my.eof(seq++));
    for (const row of rows) out.push(my.packet(seq++, Buffer.concat(row.map((v) => Buffer.concat([my.lenenc(Buffer.byteLength(v)), Buffer.from(v)])))));
    out.push(deprecateEof ? my.packet(seq++, Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8, 0, 0])) : my.eof(seq++, status));
    return Buffer.concat(out);
  },
  query: (sql: string) => my.packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)])),
  prepare: (sql: string) => my.packet(0, Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)])),
  prepareOk(id: number, columns: number, params: number, deprecateEof: boolean): Buffer {
    const p = Buffer.alloc(12);
    p.writeUInt32LE(id, 1);
    p.writeUInt16LE(columns, 5);
    p.writeUInt16LE(params, 7);
    let seq = 1;
    const out = [my.packet(seq++, p)];
    for (let i = 0; i < params; i++) out.push(my.packet(seq++, Buffer.from('\x03def\x00\x00\x00\x01?\x00\x0c\x3f\x00\x00\x00\x00\x00\xfd\x80\x00\x00\x00\x00', 'latin1')));
    if (params && !deprecateEof) out.push(my.eof(seq++));
    for (let i = 0; i < columns; i++) out.push(my.packet(seq++, Buffer.from('\x03def\x00\x01t\x01t\x01c\x01c\x0c\x3f\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00', 'latin1')));
    if (columns && !deprecateEof) out.push(my.eof(seq++));
    return Buffer.concat(out);
  },
  execute(id: number): Buffer {
    const p = Buffer.alloc(10);
    p[0] = 0x17;
    p.writeUInt32LE(id, 1);
    p.writeUInt32LE(1, 6);
    return my.packet(0, p);
  },
  close(id: number): Buffer {
    const p = Buffer.alloc(5);
    p[0] = 0x19;
    p.writeUInt32LE(id, 1);
    return my.packet(0, p);
  },
};

const CAPS = 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000;
const DEPRECATE_EOF = 0x1000000;
const client = (bytes: Buffer): Turn => ({ side: 'client', bytes });
const server = (...parts: Buffer[]): Turn => ({ side: 'server', bytes: Buffer.concat(parts) });
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new MysqlParser(), turns, cuts) as DbMessage[];
const requests = (ms: DbMessage[]) => ms.filter((m): m is DbRequest => m.kind === 'request');
const responses = (ms: DbMessage[]) => ms.filter((m): m is DbResponse => m.kind === 'response');
const login = (caps: number): Turn[] => [server(my.greeting(caps | DEPRECATE_EOF)), client(my.handshakeResponse(caps, 'app', 'shop')), server(my.ok(2))];

describe('MysqlParser', () => {
  it("reads query attributes (MySQL 8.0.23+, CLIENT_QUERY_ATTRIBUTES) before a COM_QUERY's statement, and the statement clean", () => {
    const ATTRS = 0x8000000;
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const withAttribute = Buffer.concat([
      Buffer.from([0x03, 1, 1, 0x00, 1, 0xfe, 0x00]),
      my.lenenc(11),
      Buffer.from('traceparent'),
      my.lenenc(tp.length),
      Buffer.from(tp),
      Buffer.from('SELECT name FROM users WHERE id = 7'),
    ]);
    const turns: Turn[] = [
      ...login(CAPS | ATTRS),
      client(my.packet(0, withAttribute)),
      server(my.resultSet(1, 1, [['ann']], false)),
      client(my.packet(0, Buffer.concat([Buffer.from([0x03, 0, 1]), Buffer.from('SELECT 2')]))),
      server(my.resultSet(1, 1, [['2']], false)),
    ];
    const ms = parse(turns);
    expect(
      requests(ms)
        .slice(1)
        .map((m) => [m.query, m.note ?? null]),
    ).toEqual([
      ['SELECT name FROM users WHERE id = 7', 'query attributes: traceparent'],
      ['SELECT 2', null],
    ]);
    expect(
      responses(ms)
        .slice(1)
        .map((m) => m.rows),
    ).toEqual([1, 1]);
    for (let cut = 1; cut < 80; cut += 9) expect(shape(parse(turns, [cut, cut * 3]))).toEqual(shape(ms));
  });

  it('reads a COM_FIELD_LIST answer (definitions and an EOF, no column count) without losing the pairing of what follows', () => {
    const column = (seq: number) =>
      my.packet(seq, Buffer.from('\x03def\x04shop\x05items\x05items\x02id\x02id\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x03\x42\x00\x00\x00\x00', 'latin1'));
    const turns: Turn[] = [
      ...login(CAPS),
      client(my.packet(0, Buffer.from('\x04items\x00', 'latin1'))),
      server(column(1), column(2), column(3), my.eof(4)),
      client(my.query('SELECT 1')),
      server(my.resultSet(1, 1, [['1']], false)),
      client(my.packet(0, Buffer.from('\x04missing\x00', 'latin1'))),
      server(my.err(1, 1146, '42S02', "Table 'shop.missing' doesn't exist")),
      client(my.query('SELECT 2')),
      server(my.resultSet(1, 1, [['2']], false)),
    ];
    const ms = parse(turns);
    expect(requests(ms).map((m) => [m.command, m.note ?? m.query ?? null])).toEqual([
      ['Handshake', null],
      ['COM_FIELD_LIST', 'table items'],
      ['COM_QUERY', 'SELECT 1'],
      ['COM_FIELD_LIST', 'table missing'],
      ['COM_QUERY', 'SELECT 2'],
    ]);
    expect(responses(ms).map((m) => [m.command, m.rows ?? m.note ?? m.errorCode ?? null])).toEqual([
      ['OK', null],
      ['FieldList', '3 columns'],
      ['ResultSet', 1],
      ['ERR', '42S02'],
      ['ResultSet', 1],
    ]);
    for (let cut = 1; cut < 60; cut += 7) expect(shape(parse(turns, [cut, cut * 2, cut * 5]))).toEqual(shape(ms));
  });

  for (const deprecateEof of [false, true]) {
    it(`reads the handshake, queries, result sets and errors (${deprecateEof ? 'CLIENT_DEPRECATE_EOF' : 'EOF packets'})`, () => {
      const caps = CAPS | (deprecateEof ? DEPRECATE_EOF : 0);
      const ms = parse([
        ...login(caps),
        client(my.query('SELECT name FROM users WHERE id = 7')),
        server(my.resultSet(1, 1, [['ann'], ['bob'], ['cy']], deprecateEof)),
        client(my.query("UPDATE users SET name = 'x'")),
        server(my.ok(1, 3)),
        client(my.query('SELECT nope')),
        server(my.err(1, 1054, '42S22', "Unknown column 'nope' in 'field list'")),
      ]);
      expect(requests(ms).map((r) => [r.command, r.query ?? null, r.database, r.user])).toEqual([
        ['Handshake', null, 'shop', 'app'],
        ['COM_QUERY', 'SELECT name FROM users WHERE id = 7', 'shop', 'app'],
        ['COM_QUERY', "UPDATE users SET name = 'x'", 'shop', 'app'],
        ['COM_QUERY', 'SELECT nope', 'shop', 'app'],
      ]);
      expect(responses(ms).map((r) => [r.command, r.rows ?? null, r.errorCode ?? null])).toEqual([
        ['OK', null, null],
        ['ResultSet', 3, null],
        ['OK', 3, null],
        ['ERR', null, '42S22'],
      ]);
      expect(responses(ms)[3]!.errorMessage).toBe("Unknown column 'nope' in 'field list'");
    });

    it(`stitches COM_STMT_EXECUTE to its prepared text and reads the binary result (${deprecateEof ? 'no EOF' : 'EOF'})`, () => {
      const caps = CAPS | (deprecateEof ? DEPRECATE_EOF : 0);
      const ms = parse([
        ...login(caps),
        client(my.prepare('SELECT c FROM t WHERE id = ?')),
        server(my.prepareOk(42, 1, 1, deprecateEof)),
        client(my.execute(42)),
        server(my.resultSet(1, 1, [['\x00\x00\x01a']], deprecateEof)),
        client(my.close(42)),
        client(my.execute(42)),
        server(my.err(1, 1243, 'HY000', 'Unknown prepared statement handler')),
      ]);
      expect(
        requests(ms)
          .slice(1)
          .map((r) => [r.command, r.query ?? r.note]),
      ).toEqual([
        ['COM_STMT_PREPARE', 'SELECT c FROM t WHERE id = ?'],
        ['COM_STMT_EXECUTE', 'SELECT c FROM t WHERE id = ?'],
        ['COM_STMT_CLOSE', undefined],
        ['COM_STMT_EXECUTE', 'statement 42 was prepared before the capture began: its text is unknown'],
      ]);
      expect(
        responses(ms)
          .slice(1)
          .map((r) => [r.command, r.rows ?? null]),
      ).toEqual([
        ['PrepareOK', null],
        ['ResultSet', 1],
        ['ERR', null],
      ]);
    });
  }

  it('frames packets larger than the kernel copies: a long statement and wide rows keep their real result, with the bytes lost', () => {
    const long = `INSERT INTO t VALUES ('${'x'.repeat(6000)}')`;
    const wide = my.resultSet(1, 1, [['w'.repeat(20_000)], ['v'.repeat(5_000)], ['short']], true);
    const turns: Turn[] = [
      ...login(CAPS | DEPRECATE_EOF),
      client(my.query(long)),
      server(my.ok(1, 1)),
      client(my.query('SELECT body FROM t')),
      // Wide rows end the first write; the last row and the end come in a write of their own.
      server(wide.subarray(0, wide.length - 21)),
      server(wide.subarray(wide.length - 21)),
      client(my.query('SELECT 1')),
      server(my.resultSet(1, 1, [['1']], true)),
    ];
    // The server writes its 16 KiB net buffer at a time; each write copied up to 4096 bytes.
    const ms = runCopied(() => new MysqlParser(), turns, 4096, 16_384) as DbMessage[];
    const reqs = requests(ms);
    const res = responses(ms);
    expect(reqs.map((r) => r.command)).toEqual(['Handshake', 'COM_QUERY', 'COM_QUERY', 'COM_QUERY']);
    expect(reqs[1]!.lostBytes).toBe(my.query(long).length - 4096);
    expect(long.startsWith(reqs[1]!.query!)).toBe(true);
    expect(res.map((r) => [r.command, r.rows, r.error])).toEqual([
      ['OK', undefined, undefined],
      ['OK', 1, undefined],
      ['ResultSet', 3, undefined],
      ['ResultSet', 1, undefined],
    ]);
    expect(res[2]!.lostBytes).toBeGreaterThan(15_000);
    expect(res[3]!.lostBytes).toBeUndefined();
  });

  it('keeps no trailing NUL of a statement in its text (mysqlslap ends its queries with one)', () => {
    const ms = parse([...login(CAPS), client(my.packet(0, Buffer.from('\x03SELECT 1\x00', 'latin1'))), server(my.ok(1))]);
    expect(requests(ms)[1]!.query).toBe('SELECT 1');
  });

  it('keeps a command open while SERVER_MORE_RESULTS_EXISTS says another result follows', () => {
    const ms = parse([
      ...login(CAPS),
      client(my.query('SELECT 1; SELECT 2; UPDATE t SET a = 1')),
      server(my.resultSet(1, 1, [['1']], false, 0x0a), my.resultSet(5, 1, [['2']], false, 0x0a), my.ok(9, 4)),
    ]);
    expect(
      responses(ms)
        .slice(1)
        .map((r) => [r.command, r.rows]),
    ).toEqual([['OK', 6]]);
  });

  it('reads a statement longer than 16 MiB sent in several packets', () => {
    const big = `SELECT '${'x'.repeat(0xffffff + 10)}'`;
    const ms = parse([...login(CAPS), client(my.query(big)), server(my.resultSet(1, 1, [['x']], false))]);
    const q = requests(ms)[1]!;
    expect(q.command).toBe('COM_QUERY');
    expect(q.query!.length).toBe(big.length);
    expect(responses(ms)[1]).toMatchObject({ command: 'ResultSet', rows: 1 });
  });

  it('stops and says so on TLS', () => {
    const sslRequest = Buffer.alloc(32);
    sslRequest.writeUInt32LE(CAPS | 0x800, 0);
    const tls = parse([server(my.greeting(CAPS | 0x800)), client(my.packet(1, sslRequest)), client(Buffer.from([0x16, 3, 1, 0, 1, 0]))]);
    expect(requests(tls).map((r) => [r.command, r.note])).toEqual([['SSLRequest', 'the client asked for TLS: the rest of the connection is encrypted and not parsed']]);
  });

  describe('the compressed protocol', () => {
    /** Plain packets in compressed packets as the client library sends them: under 50 bytes as is, larger ones deflated; `pieces` cuts the plain bytes into compressed packets. */
    const zipped = (plain: Buffer, pieces: number[] = []): Buffer => {
      const out: Buffer[] = [];
      let prev = 0;
      let seq = 0;
      for (const cut of [...pieces, plain.length]) {
        const part = plain.subarray(prev, cut);
        prev = cut;
        const body = part.length < 50 ? part : zlib.deflateSync(part);
        const h = Buffer.alloc(7);
        h.writeUIntLE(body.length, 0, 3);
        h[3] = seq++;
        h.writeUIntLE(part.length < 50 ? 0 : part.length, 4, 3);
        out.push(h, body);
      }
      return Buffer.concat(out);
    };
    const COMPRESS = 0x20;
    const plainTurns = (): Turn[] => [
      client(my.query(`SELECT * FROM orders WHERE note = '${'n'.repeat(200)}'`)),
      server(
        my.resultSet(
          1,
          3,
          [
            ['a'.repeat(300), 'b', 'c'],
            ['d', 'e', 'f'],
          ],
          false,
        ),
      ),
      client(my.query('SELECT 1')),
      server(my.ok(1)),
      client(Buffer.concat([my.prepare('INSERT INTO t VALUES (?, ?)')])),
      server(my.prepareOk(1, 0, 2, false)),
      client(my.execute(1)),
      server(my.ok(1, 1)),
    ];
    const compressedTurns = (): Turn[] => {
      const [q1, r1, q2, r2, q3, r3, q4, r4] = plainTurns();
      return [
        ...login(CAPS | COMPRESS),
        client(zipped(q1!.bytes)),
        server(zipped(r1!.bytes, [40, 41, 200])), // a result cut across compressed packets anywhere
        client(zipped(q2!.bytes)),
        server(zipped(r2!.bytes)),
        client(zipped(q3!.bytes)),
        server(zipped(r3!.bytes)),
        client(zipped(q4!.bytes)),
        server(zipped(r4!.bytes)),
      ];
    };

    it('reads the statements and answers inside compressed packets as in plain ones, however the bytes are cut', () => {
      const plain = parse([...login(CAPS), ...plainTurns()]);
      const compressed = parse(compressedTurns());
      const brief = (ms: DbMessage[]) => ms.map((m) => [m.kind, m.command, m.kind === 'request' ? m.query : m.rows, m.error ?? null]);
      expect(brief(compressed)).toEqual(brief(plain));
      expect(brief(compressed).slice(2)).toEqual([
        ['request', 'COM_QUERY', `SELECT * FROM orders WHERE note = '${'n'.repeat(200)}'`, null],
        ['response', 'ResultSet', 2, null],
        ['request', 'COM_QUERY', 'SELECT 1', null],
        ['response', 'OK', 0, null],
        ['request', 'COM_STMT_PREPARE', 'INSERT INTO t VALUES (?, ?)', null],
        ['response', 'PrepareOK', undefined, null],
        ['request', 'COM_STMT_EXECUTE', 'INSERT INTO t VALUES (?, ?)', null],
        ['response', 'OK', 1, null],
      ]);
      const whole = shape(compressed);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
          expect(shape(parse(compressedTurns(), cuts))).toEqual(whole);
        }),
        { numRuns: 200 },
      );
    });

    it('counts a compressed packet that does not inflate (masked in a capture) as lost bytes, and reads on', () => {
      const turns = compressedTurns();
      const q1 = Buffer.from(turns[3]!.bytes);
      q1.fill(0x2a, 7); // the payload masked whole: the header still frames it
      turns[3] = client(q1);
      const ms = parse(turns);
      expect(ms.map((m) => [m.kind, m.command, m.error ?? null, m.lostBytes ?? 0]).slice(2, 3)).toEqual([
        ['request', 'Unreadable', expect.stringContaining('did not inflate'), 4 + 1 + 236],
      ]); // the plain packet: header, COM_QUERY, the statement
      expect(
        requests(ms)
          .slice(2)
          .map((r) => r.query),
      ).toEqual(['SELECT 1', 'INSERT INTO t VALUES (?, ?)', 'INSERT INTO t VALUES (?, ?)']);
      // Its answer is passed over; the next answers pair with their statements.
      expect(
        responses(ms)
          .slice(1)
          .map((r) => r.command),
      ).toEqual(['OK', 'PrepareOK', 'OK']);
    });

    it('says why it stops on zstd compression and on bytes lost in the compressed stream', () => {
      const zstd = parse([...login(CAPS | 0x4000000), client(Buffer.from([9, 0, 0, 0, 4, 0, 0, 1, 2, 3, 4]))]);
      expect(zstd.map((m) => m.command)).toEqual(['Handshake', 'OK', 'Unreadable']);
      expect(zstd[2]!.note).toContain('zstd');
      const p = new MysqlParser();
      const out: DbMessage[] = [];
      p.onMessage = (m) => out.push(m);
      for (const t of compressedTurns().slice(0, 4)) p.feed(t.side, { data: t.bytes, ts: 1n, tid: 1 });
      p.gap('server', 100, 2n);
      p.feed('client', { data: compressedTurns()[5]!.bytes, ts: 3n, tid: 1 });
      expect(out.map((m) => m.command).slice(2)).toEqual(['COM_QUERY', 'Lost', 'Unreadable']);
    });
  });

  it('joins a connection mid-way at a command', () => {
    const ms = parse([server(Buffer.from('leftover row bytes')), client(my.query('SELECT 1')), server(my.resultSet(1, 1, [['1']], false))]);
    expect(ms.map((m) => (m as DbRequest).command)).toEqual(['COM_QUERY', 'ResultSet']);
  });

  it('gives the same messages however the bytes are cut', () => {
    const turns: Turn[] = [
      ...login(CAPS),
      client(my.query('SELECT * FROM orders')),
      server(
        my.resultSet(
          1,
          3,
          [
            ['a'.repeat(300), 'b', 'c'],
            ['d', 'e', 'f'],
          ],
          false,
        ),
      ),
      client(my.prepare('INSERT INTO t VALUES (?, ?)')),
      server(my.prepareOk(1, 0, 2, false)),
      client(my.execute(1)),
      server(my.ok(1, 1)),
      client(my.query('x')),
      server(my.err(1, 1064, '42000', 'syntax')),
    ];
    const whole = shape(parse(turns));
    expect(whole.length).toBe(10);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        expect(shape(parse(turns, cuts))).toEqual(whole);
      }),
    );
  });

  it('round-trips generated queries and result sets', () => {
    const stmt = fc.record({
      text: fc.string({ maxLength: 80 }),
      rows: fc.array(fc.array(fc.string({ maxLength: 10 }), { minLength: 2, maxLength: 2 }), { maxLength: 5 }),
      ok: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(stmt, { maxLength: 8 }), fc.boolean(), (stmts, deprecateEof) => {
        const turns: Turn[] = login(CAPS | (deprecateEof ? DEPRECATE_EOF : 0));
        for (const s of stmts) {
          turns.push(client(my.query(s.text)));
          turns.push(server(s.ok ? my.ok(1, s.rows.length) : my.resultSet(1, 2, s.rows, deprecateEof)));
        }
        const ms = parse(turns);
        expect(
          requests(ms)
            .slice(1)
            .map((r) => r.query),
        ).toEqual(stmts.map((s) => s.text));
        expect(
          responses(ms)
            .slice(1)
            .map((r) => [r.command, r.rows]),
        ).toEqual(stmts.map((s) => [s.ok ? 'OK' : 'ResultSet', s.rows.length]));
      }),
    );
  });

  it('never throws or hangs on random bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ side: fc.constantFrom('client' as const, 'server' as const), bytes: fc.uint8Array({ maxLength: 200 }) }), { maxLength: 10 }), (turns) => {
        parse(turns.map((t) => ({ side: t.side, bytes: Buffer.from(t.bytes) })));
      }),
    );
  });

  it('masks query attributes only where the server offered them: MariaDB does not, and mysql2 asks regardless', () => {
    const ATTRS = 0x8000000;
    const statement = "UPDATE items SET name = 'quill' WHERE id = 1";
    const maskedStatement = (serverCaps: number) => {
      const socket: SocketMasking = {};
      const maskers = { client: new StreamMasker(socket), server: new StreamMasker(socket) };
      const turns: Turn[] = [...login(CAPS | ATTRS), client(my.packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(statement)])))];
      turns[0] = server(my.greeting(serverCaps | DEPRECATE_EOF));
      for (const t of turns) maskers[t.side].mask(t.bytes);
      const ms = parse(turns);
      return { bytes: turns[3]!.bytes.subarray(5).toString('latin1'), parsed: requests(ms)[1]?.query };
    };
    // Not offered: a plain statement, its literals masked and the rest kept; the parser reads it as the server does.
    expect(maskedStatement(CAPS)).toEqual({ bytes: "UPDATE items SET name = '*****' WHERE id = 0", parsed: "UPDATE items SET name = '*****' WHERE id = 0" });
    // Offered: its first byte is the attribute count (85, more than any block has), so all of it is masked, as the server would take it.
    expect(maskedStatement(CAPS | ATTRS).bytes).toBe(`U${'*'.repeat(statement.length - 1)}`);
  });
});
