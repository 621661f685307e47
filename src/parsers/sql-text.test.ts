import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { obfuscateSql, sqlOperation, sqlTable } from './sql-text';

describe('SQL text', () => {
  it("takes a number's sign with it, so a negative and a positive literal give one statement, and keeps a minus that subtracts", () => {
    const texts = ['UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 7', 'UPDATE pgbench_accounts SET abalance = abalance + 4321 WHERE aid = 7'];
    expect(new Set(texts.map(obfuscateSql))).toEqual(new Set(['UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?']));
    expect(obfuscateSql('SELECT a - 3, (b)-2, -5, x*-1 FROM t WHERE y IN (-1, +2) AND z = -.5 LIMIT -1')).toBe(
      'SELECT a - ?, (b)-?, ?, x*? FROM t WHERE y IN (?, ?) AND z = ? LIMIT ?',
    );
  });

  it('names the operation past comments, and the main statement of a CTE', () => {
    expect(sqlOperation('  -- hi\n/* x */ select 1')).toBe('SELECT');
    expect(sqlOperation('WITH a AS (SELECT 1) UPDATE t SET x = 1')).toBe('UPDATE');
    expect(sqlOperation('begin')).toBe('BEGIN');
    expect(sqlOperation('')).toBe('');
  });

  it('names the table when one is plain', () => {
    const cases: Array<[string, string | undefined]> = [
      ['SELECT * FROM users WHERE id = 1', 'users'],
      ['select a from public.orders o join items i on o.id = i.o', 'public.orders'],
      ['INSERT INTO "My Table"(a) VALUES (1)', 'My Table'],
      ['UPDATE ONLY accounts SET x = 1', 'accounts'],
      ['DELETE FROM `shop`.`carts`', 'shop.carts'],
      ['CREATE TABLE IF NOT EXISTS t2 (a int)', 't2'],
      ['SELECT 1', undefined],
      ['SELECT * FROM (SELECT 1) s', undefined],
      ['BEGIN', undefined],
    ];
    for (const [sql, table] of cases) expect(sqlTable(sql), sql).toBe(table);
  });

  it('replaces literals with ? and keeps identifiers', () => {
    expect(obfuscateSql("SELECT * FROM t WHERE name = 'O''Brien' AND age > 42 AND x = -3.5e10")).toBe('SELECT * FROM t WHERE name = ? AND age > ? AND x = ?');
    expect(obfuscateSql('SELECT "col1", t2.c3 FROM t2 WHERE a IN (1, 2, 0x1F) -- secret 99\n')).toBe('SELECT "col1", t2.c3 FROM t2 WHERE a IN (?, ?, ?)');
    expect(obfuscateSql("SELECT $$dollar 'quoted' 7$$, $tag$x$tag$, E'\\'esc', $1")).toBe('SELECT ?, ?, ?, $1');
    expect(obfuscateSql('INSERT INTO t VALUES (/* pii: bob */ 12)')).toBe('INSERT INTO t VALUES ( ?)');
  });

  it('never lets a string or number literal through', () => {
    const secret = fc.string({ minLength: 3, maxLength: 20 }).filter((s) => /^[A-Za-z0-9 @.]+$/.test(s) && !/SELECT|FROM|WHERE/i.test(s));
    fc.assert(
      fc.property(secret, fc.integer({ min: 1000, max: 1e9 }), (s, n) => {
        const out = obfuscateSql(`SELECT id FROM people WHERE email = '${s.replace(/'/g, "''")}' OR phone = ${n}`);
        expect(out).toBe('SELECT id FROM people WHERE email = ? OR phone = ?');
      }),
    );
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        obfuscateSql(s);
        sqlTable(s);
        sqlOperation(s);
      }),
    );
  });
});
