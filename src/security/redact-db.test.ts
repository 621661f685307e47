import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamMasker, type SocketMasking } from './redact-payload';
import { allSeeds, syntheticSeeds } from '../../test/fuzz/seeds';
import { runTurns, type Turn } from '../../test/parser-harness';
import { createParser } from '../parsers/protocols';
import type { DbMessage } from '../parsers/db';

/** A conversation masked as the live agent masks it: one masker per direction, sharing what they learn; turns cut at `cuts`. */
function masked(turns: Turn[], cuts: number[] = []): Turn[] & { perRecord?: boolean } {
  const socket: SocketMasking = {};
  const maskers = { client: new StreamMasker(socket), server: new StreamMasker(socket) };
  let c = 0;
  const out: Turn[] & { perRecord?: boolean } = turns.map((t) => {
    const out = Buffer.from(t.bytes);
    const points = [...new Set(cuts.slice(c, c + 3).map((x) => (out.length ? x % out.length : 0)))].filter((p) => p > 0).sort((a, b) => a - b);
    c += 3;
    let prev = 0;
    for (const p of [...points, out.length]) {
      if (p > prev) maskers[t.side].mask(out.subarray(prev, p));
      prev = p;
    }
    return { side: t.side, bytes: out };
  });
  out.perRecord = maskers.client.decidedPerRecord || maskers.server.decidedPerRecord;
  return out;
}

const text = (turns: Turn[]) => Buffer.concat(turns.map((t) => t.bytes)).toString('latin1');
const synthetic = syntheticSeeds();

describe('database secrets in captured bytes', () => {
  it('masks a PostgreSQL password message and Bind values, and SQL literals in Parse', () => {
    const conv = synthetic.get('postgres')![0]!;
    expect(text(conv)).toContain('secret-password');
    const out = text(masked(conv));
    expect(out).not.toContain('secret-password');
    expect(out).toContain('SELECT $1::int'); // no literal in it: unchanged
    // the Bind's one value ('7') is masked; the statement name is not
    expect(out).toContain('s1');
  });

  it('masks Redis AUTH and HELLO … AUTH passwords, leaving the commands readable', () => {
    const conv = synthetic.get('redis')![0]!;
    const out = text(masked(conv));
    expect(text(conv)).toContain('sekret');
    expect(out).not.toContain('sekret');
    expect(out).toContain('AUTH');
    const hello: Turn[] = [{ side: 'client', bytes: Buffer.from('*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$9\r\nhunter2!!\r\n') }];
    expect(text(masked(hello))).toBe('*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$9\r\n*********\r\n');
    // Inline, as typed into redis-cli or telnet: the arguments after AUTH are masked.
    const inline: Turn[] = [{ side: 'client', bytes: Buffer.from('AUTH admin s3cr3t\r\nGET k\r\n') }];
    expect(text(masked(inline))).toBe('AUTH ***** ******\r\nGET k\r\n');
  });

  it('masks the MySQL login scramble (recognised by the server greeting the other way) and statement literals', () => {
    const conv = synthetic.get('mysql')![0]!;
    const scramble = 'c'.repeat(20);
    expect(text(conv)).toContain(scramble);
    const out = text(masked(conv));
    expect(out).not.toContain(scramble);
    expect(out).toContain('root'); // the user name is not a secret
    const shop = allSeeds()
      .get('mysql')!
      .find((t) => text(t).includes("VALUES ('pen', 12)"))!;
    const shopOut = text(masked(shop));
    expect(shopOut).toContain("VALUES ('***', 00), ('***', 0)");
  });

  it('masks literals inside MySQL compressed packets: re-deflated in place when a record holds the packet, masked whole when records cut it', () => {
    const conv = synthetic.get('mysql')!.find((t) => t.some((x) => x.bytes.length > 7 && x.bytes[6] === 0 && x.bytes[7] === 0x78))!; // a zlib header after a 7-byte one
    const statementOf = (bytes: Buffer) => {
      const plain = bytes.readUIntLE(4, 3) === 0 ? bytes.subarray(7) : zlib.inflateSync(bytes.subarray(7), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      return plain.subarray(5).toString('latin1');
    };
    expect(statementOf(conv[3]!.bytes)).toBe("SELECT * FROM users WHERE email = 'ann@example.com' AND pin = 4321");
    const whole = masked(conv);
    expect(whole.perRecord).toBe(true);
    expect(statementOf(whole[3]!.bytes)).toBe("SELECT * FROM users WHERE email = '***************' AND pin = 0000");
    expect(statementOf(whole[5]!.bytes)).toBe("SELECT '*'");
    expect(whole[3]!.bytes.length).toBe(conv[3]!.bytes.length);
    const parse = (t: Turn[]) =>
      (runTurns(() => createParser('mysql')! as never, t) as DbMessage[]).map((m) => [m.kind, m.command, m.kind === 'request' ? (m.query ?? null) : null]);
    expect(parse(whole)).toEqual(
      parse(conv).map(([k, c, q]) => [k, c, q === null ? null : String(q).replace('ann@example.com', '*'.repeat(15)).replace('4321', '0000').replace("'x'", "'*'")]),
    );
    // The header in a record of its own (as mariadbd reads it): the payload is still one record's, masked in place.
    const apart = masked(conv, [0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
    expect(statementOf(apart[3]!.bytes)).toBe("SELECT * FROM users WHERE email = '***************' AND pin = 0000");
    // Cut inside the deflated statement: it cannot be read whole before its first bytes are recorded, so it is masked whole.
    const cut = masked(conv, [0, 0, 0, 0, 0, 0, 0, 0, 0, 30]);
    expect(cut[3]!.bytes.subarray(7).every((b) => b === 0x2a)).toBe(true);
    expect(cut[3]!.bytes.subarray(0, 7)).toEqual(conv[3]!.bytes.subarray(0, 7));
    const read = parse(cut);
    expect(read.filter(([k]) => k === 'request').map(([, c, q]) => [c, q])).toEqual([
      ['Handshake', null],
      ['Unreadable', null],
      ['COM_QUERY', "SELECT '*'"],
    ]);
  });

  it('masks SQL literals in PostgreSQL simple queries: strings to *, numbers to 0, identifiers kept', () => {
    const q = (sql: string): Turn => {
      const body = Buffer.from(`${sql}\0`);
      const h = Buffer.alloc(5);
      h.write('Q');
      h.writeUInt32BE(body.length + 4, 1);
      return { side: 'client', bytes: Buffer.concat([h, body]) };
    };
    const out = text(masked([q("SELECT id, col2 FROM t1 WHERE name = 'O''Brien' AND age > 42 AND x = 3.5")])).slice(5, -1);
    // A doubled quote inside the string stays (it says only that there was one).
    expect(out).toBe("SELECT id, col2 FROM t1 WHERE name = '*''*****' AND age > 00 AND x = 0.0");
  });

  it('masks the same bytes however the records cut them, and the parsers read the same messages from the masked bytes', () => {
    const seeds = [...allSeeds()].filter(([p]) => ['postgres', 'mysql', 'redis'].includes(p));
    const conversations = seeds.flatMap(([p, list]) => list.map((turns) => [p, turns] as const));
    fc.assert(
      fc.property(fc.constantFrom(...conversations), fc.array(fc.nat(), { maxLength: 60 }), ([protocol, turns], cuts) => {
        const whole = masked(turns);
        // A compressed MySQL packet is masked in place only when one record holds it whole: per record (tested below).
        if (!whole.perRecord) expect(text(masked(turns, cuts))).toBe(text(whole));
        const shape = (ms: DbMessage[]) => ms.map((m) => `${m.kind} ${m.command}`);
        const parse = (t: Turn[]) => shape(runTurns(() => createParser(protocol)! as never, t) as DbMessage[]);
        expect(parse(whole)).toEqual(parse(turns));
      }),
      { numRuns: 300 },
    );
  });
});
