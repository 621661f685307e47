import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemcachedParser } from './parser';
import { detectMemcached } from './detect';
import { MemcachedMasker } from './masker';
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';
import { Pipeline } from '../../pipeline/pipeline';
import { HEADER } from '../../../test/helpers';
import type { Span } from '../../correlator/span';
import { Script } from '../../../test/script';
import { memcachedPacket } from '../../../test/fuzz/seeds';

type Message = DbMessage<'memcached'>;
const text = (side: 'client' | 'server', s: string): Turn => ({ side, bytes: Buffer.from(s, 'latin1') });
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new MemcachedParser(), turns, cuts) as Message[];
const requests = (ms: Message[]) => ms.filter((m): m is DbRequest<'memcached'> => m.kind === 'request');
const responses = (ms: Message[]) => ms.filter((m): m is DbResponse<'memcached'> => m.kind === 'response');

const packet = memcachedPacket;

const conversation: Turn[] = [
  text('client', 'set user:1 0 3600 12\r\nsecret-value\r\nget user:1 user:2\r\nincr hits 1 noreply\r\ndelete gone\r\n'),
  text('server', 'STORED\r\nVALUE user:1 0 12\r\nsecret-value\r\nEND\r\nNOT_FOUND\r\n'),
  text('client', 'ms k 2 T0 q\r\nhi\r\nmg k v q\r\nmg miss v q\r\nmn\r\n'),
  text('server', 'VA 2\r\nhi\r\nMN\r\n'),
];

describe('MemcachedParser, text protocol', () => {
  it('reads commands with their keys, never a value, and pairs replies in order; noreply is one-way', () => {
    const ms = parse(conversation);
    expect(requests(ms).map((r) => [r.command, r.query, r.oneWay ?? false])).toEqual([
      ['set', 'set user:1', false],
      ['get', 'get user:1 user:2', false],
      ['incr', 'incr hits', true],
      ['delete', 'delete gone', false],
      ['ms', 'ms k', false],
      ['mg', 'mg k', false],
      ['mg', 'mg miss', false],
      ['mn', 'mn', false],
    ]);
    expect(JSON.stringify(ms, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('secret-value');
    // Quiet meta commands: ms's HD and the miss's EN were left out, and are reported for them in order.
    expect(responses(ms).map((r) => [r.command, r.rows, r.note !== undefined])).toEqual([
      ['STORED', undefined, false],
      ['END', 1, false],
      ['NOT_FOUND', undefined, false],
      ['HD', undefined, true],
      ['VA', 1, false],
      ['EN', 0, true],
      ['MN', undefined, false],
    ]);
  });

  it('gives the same messages however the bytes are cut', () => {
    const whole = JSON.stringify(shape(parse(conversation)));
    fc.assert(
      fc.property(fc.array(fc.nat(400), { maxLength: 12 }), (cuts) => {
        expect(JSON.stringify(shape(parse(conversation, cuts)))).toBe(whole);
      }),
    );
  });

  it('reports a failure reply as the error code of its request, and an unknown command as one memcached answers with ERROR', () => {
    const ms = parse([text('client', 'incr n 1\r\nbogus x\r\n'), text('server', 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\nERROR\r\n')]);
    expect(requests(ms)[1]).toMatchObject({ command: 'bogus', parseErrorCode: 'MEMCACHED_UNKNOWN_COMMAND' });
    expect(responses(ms).map((r) => [r.errorCode, r.errorMessage])).toEqual([
      ['CLIENT_ERROR', 'cannot increment or decrement non-numeric value'],
      ['ERROR', undefined],
    ]);
  });

  it('frames over bytes the kernel did not copy inside a value', () => {
    const big = 'x'.repeat(10_000);
    // Each message its own write, of which 4096 bytes are copied: the data blocks' lengths frame the rest.
    const turns = [
      text('client', `set big 0 0 ${big.length}\r\n${big}\r\n`),
      text('server', 'STORED\r\n'),
      text('client', 'get big\r\n'),
      text('server', `VALUE big 0 ${big.length}\r\n${big}\r\n`),
      text('server', 'END\r\n'),
    ];
    const ms = runCopied(() => new MemcachedParser(), turns, 4096) as Message[];
    expect(requests(ms).map((r) => r.command)).toEqual(['set', 'get']);
    expect(responses(ms).map((r) => [r.command, r.rows])).toEqual([
      ['STORED', undefined],
      ['END', 1],
    ]);
  });
});

describe('MemcachedParser, binary protocol', () => {
  const binary: Turn[] = [
    { side: 'client', bytes: Buffer.concat([packet(0x80, 0x01, 1, 'k', 'value', 8), packet(0x80, 0x0d, 2, 'miss'), packet(0x80, 0x0d, 3, 'k'), packet(0x80, 0x0a, 4)]) },
    { side: 'server', bytes: Buffer.concat([packet(0x81, 0x01, 1), packet(0x81, 0x0d, 3, 'k', 'value', 4), packet(0x81, 0x0a, 4)]) },
    { side: 'client', bytes: packet(0x80, 0x05, 5, 'n', '', 20) },
    { side: 'server', bytes: packet(0x81, 0x05, 5, '', 'Non-numeric server-side value for incr or decr', 0, 0x06) },
  ];

  it('pairs by order and opaque: a quiet GETKQ that missed got its answer left out, the hit its value', () => {
    const ms = parse(binary);
    expect(requests(ms).map((r) => r.query)).toEqual(['set k', 'getkq miss', 'getkq k', 'noop', 'incr n']);
    expect(responses(ms).map((r) => [r.command, r.rows, r.errorCode])).toEqual([
      ['NO_ERROR', undefined, undefined],
      ['KEY_NOT_FOUND', 0, undefined],
      ['NO_ERROR', 1, undefined],
      ['NO_ERROR', undefined, undefined],
      ['NON_NUMERIC_VALUE', undefined, 'NON_NUMERIC_VALUE'],
    ]);
    const whole = JSON.stringify(shape(ms));
    fc.assert(
      fc.property(fc.array(fc.nat(200), { maxLength: 12 }), (cuts) => {
        expect(JSON.stringify(shape(parse(binary, cuts)))).toBe(whole);
      }),
    );
  });

  it('is detected from its packets, also a first write larger than detection waits for', () => {
    const many = Buffer.concat(Array.from({ length: 200 }, (_, i) => packet(0x80, 0x0d, i, `key:${i}`)));
    expect(detectMemcached(many.subarray(0, 1024))).toEqual({ sender: 'client', connectionStart: false });
    expect(detectMemcached(packet(0x81, 0x01, 1))).toEqual({ sender: 'server', connectionStart: false });
    expect(detectMemcached(Buffer.from('set k 0 0 2\r\nhi\r\n'))).toEqual({ sender: 'client', connectionStart: false });
    // memcslap's first set had a 4885-byte value, and memcached's first read of the connection 2048 bytes of it.
    expect(detectMemcached(Buffer.from(`set k 0 0 4885\r\n${'v'.repeat(2030)}`))).toEqual({ sender: 'client', connectionStart: false });
    expect(detectMemcached(Buffer.from('GET / HTTP/1.1\r\n'))).toBeUndefined();
  });

  it('masks a SASL PLAIN password in the bytes, however they are cut, and nothing else', () => {
    const auth = Buffer.concat([packet(0x80, 0x21, 1, 'PLAIN', '\0ann\0sekret'), packet(0x80, 0x00, 2, 'k')]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: auth.length - 1 }), { maxLength: 6 }), (cuts) => {
        const bytes = Buffer.from(auth);
        const masker = new MemcachedMasker();
        let prev = 0;
        for (const at of [...new Set(cuts)].sort((a, b) => a - b).concat(bytes.length)) {
          masker.mask(bytes.subarray(prev, at));
          prev = at;
        }
        expect(bytes.toString('latin1')).not.toContain('sekret');
        expect(bytes.toString('latin1')).toContain('PLAIN');
        expect(bytes.subarray(auth.length - 25)).toEqual(auth.subarray(auth.length - 25)); // the GET after it, untouched
      }),
    );
  });
});

describe('memcached spans', () => {
  it('a noreply store is a one-way CLIENT span ended with its request; the next command still pairs with its reply', () => {
    const spans: Span[] = [];
    const p = new Pipeline({ ...HEADER, processes: [{ pid: 1, exe: '/srv/app' }] }, [{ onSpan: (x) => spans.push(x) }]);
    const s = new Script();
    const [app] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 11211 });
    s.send(app, 'set a 0 0 1 noreply\r\nx\r\nget a\r\n', { at: 2000n });
    s.recv(app, 'VALUE a 0 1\r\nx\r\nEND\r\n', { at: 5000n });
    p.push(s.events);
    p.finish();
    expect(spans.map((s) => [s.name, s.kind, s.attributes['db.system.name'], s.attributes['db.response.returned_rows'], Number(s.endNs - s.startNs)])).toEqual([
      ['set', 'client', 'memcached', undefined, 0],
      ['get', 'client', 'memcached', 1, 3000],
    ]);
    expect(spans.every((s) => s.status.code === 'unset' && s.attributes['loupe.incomplete'] === undefined)).toBe(true);
  });
});
