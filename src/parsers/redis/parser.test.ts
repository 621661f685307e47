import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RedisParser } from './parser';
import type { DbMessage, DbRequest, DbResponse } from '../db';
import { runCopied, runTurns, shape, type Turn } from '../../../test/parser-harness';

const cmd = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
const client = (...parts: Buffer[]): Turn => ({ side: 'client', bytes: Buffer.concat(parts) });
const server = (text: string): Turn => ({ side: 'server', bytes: Buffer.from(text) });
const parse = (turns: Turn[], cuts?: number[]) => runTurns(() => new RedisParser(), turns, cuts) as DbMessage[];
const requests = (ms: DbMessage[]) => ms.filter((m): m is DbRequest => m.kind === 'request');
const responses = (ms: DbMessage[]) => ms.filter((m): m is DbResponse => m.kind === 'response');

/** Generated RESP3 replies, encoded. */
const reply: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .string({ maxLength: 20 })
      .filter((s) => !/[\r\n]/.test(s))
      .map((s) => `+${s}\r\n`),
    fc.integer().map((n) => `:${n}\r\n`),
    fc.string({ maxLength: 30 }).map((s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`),
    fc.constant('$-1\r\n'),
    fc.constant('_\r\n'),
    fc.constant('#t\r\n'),
    fc.constant(',3.14\r\n'),
    fc.array(tie('v'), { maxLength: 4 }).map((xs) => `*${xs.length}\r\n${xs.join('')}`),
    fc.array(fc.tuple(tie('v'), tie('v')), { maxLength: 3 }).map((xs) => `%${xs.length}\r\n${xs.map(([k, v]) => k + v).join('')}`),
  ),
})).v;

describe('RedisParser', () => {
  it('pairs pipelined commands with their replies in order, keeping keys but no values', () => {
    const ms = parse([
      client(cmd('SET', 'user:1', 'secret-value'), cmd('GET', 'user:1'), cmd('INCR', 'n'), cmd('HGET', 'h', 'f'), cmd('LPOP', 'empty')),
      server('+OK\r\n$12\r\nsecret-value\r\n:5\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$-1\r\n'),
    ]);
    expect(requests(ms).map((r) => [r.command, r.query, r.params])).toEqual([
      ['SET', 'SET user:1 ?', 2],
      ['GET', 'GET user:1', 1],
      ['INCR', 'INCR n', 1],
      ['HGET', 'HGET h ?', 2],
      ['LPOP', 'LPOP empty', 1],
    ]);
    expect(responses(ms).map((r) => [r.command, r.errorCode ?? null])).toEqual([
      ['SimpleString', null],
      ['BulkString', null],
      ['Integer', null],
      ['Error', 'WRONGTYPE'],
      ['Null', null],
    ]);
    expect(JSON.stringify(shape(ms))).not.toContain('secret-value');
  });

  it('reads inline commands and RESP3 aggregates, attributes and pushes', () => {
    const ms = parse([
      client(Buffer.from('PING\r\n'), cmd('HELLO', '3'), cmd('HGETALL', 'h')),
      server('+PONG\r\n%1\r\n+server\r\n+redis\r\n|1\r\n+ttl\r\n:3\r\n%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n>3\r\n+message\r\n+ch\r\n+hi\r\n'),
    ]);
    expect(responses(ms).map((r) => [r.command, r.rows ?? null, r.push ?? false])).toEqual([
      ['SimpleString', null, false],
      ['Map', 1, false],
      ['Map', 2, false],
      ['Push', 3, true],
    ]);
  });

  it('after SUBSCRIBE everything the server sends is a push', () => {
    const ms = parse([client(cmd('SUBSCRIBE', 'news')), server('*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n')]);
    expect(requests(ms)[0]).toMatchObject({ command: 'SUBSCRIBE', noResponse: true });
    expect(responses(ms).every((r) => r.push)).toBe(true);
  });

  it('reports broken framing with the offset and resumes at the next syscall boundary', () => {
    const ms = parse([client(cmd('GET', 'a')), server('?garbage\r\n'), server('$1\r\nx\r\n')]);
    expect(responses(ms).map((r) => [r.command, r.error ?? null])).toEqual([
      ['Unparsable', 'byte 0: 0x3f starts no RESP value'],
      ['BulkString', null],
    ]);
  });

  it('frames values larger than the kernel copies: a 20 KB SET and its GET are paired, with the bytes lost', () => {
    const value = 'v'.repeat(20_000);
    const turns: Turn[] = [
      client(cmd('SET', 'big', value)),
      server('+OK\r\n'),
      client(cmd('GET', 'big')),
      server(`$${value.length}\r\n${value}\r\n`),
      client(cmd('MGET', 'big', 'other')),
      server(`*2\r\n$${value.length}\r\n${value}\r\n$-1\r\n`),
      client(cmd('GET', 'small')),
      server('$1\r\nx\r\n'),
    ];
    const ms = runCopied(() => new RedisParser(), turns, 4096);
    expect(requests(ms).map((r) => [r.query, r.lostBytes])).toEqual([
      ['SET big ?', cmd('SET', 'big', value).length - 4096],
      ['GET big', undefined],
      ['MGET big ?', undefined],
      ['GET small', undefined],
    ]);
    expect(responses(ms).map((r) => [r.command, r.rows, r.error, r.lostBytes])).toEqual([
      ['SimpleString', undefined, undefined, undefined],
      ['BulkString', undefined, undefined, 20_010 - 4096],
      // The array's last element fell in the lost bytes, past its bulk string: not framed, so the loss is said.
      ['Lost', undefined, expect.stringMatching(/not captured/), 5],
      ['BulkString', undefined, undefined, undefined],
    ]);
  });

  it('after bytes lost inside a reply, takes the rest of its writes for what they are, not replies, while nothing is asked (but a push)', () => {
    const p = new RedisParser();
    const out: DbMessage[] = [];
    p.onMessage = (m) => out.push(m);
    let ts = 0n;
    const feed = (side: 'client' | 'server', text: string | Buffer) => p.feed(side, { data: Buffer.from(text), ts: ts++, tid: 1 });
    feed('client', cmd('COMMAND', 'DOCS'));
    feed('server', '%300\r\n$3\r\nget\r\n%2\r\n');
    p.gap('server', 70_000, ts++);
    // The reply's later writes: each starts like a value.
    feed('server', '$7\r\nsummary\r\n$20\r\nGet the value of key\r\n');
    feed('server', '*2\r\n$1\r\na\r\n$1\r\nb\r\n');
    feed('server', '>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n');
    feed('client', cmd('PING'));
    feed('server', '+PONG\r\n');
    expect(responses(out).map((r) => [r.command, r.push ?? false])).toEqual([
      ['Lost', false],
      ['Push', true],
      ['SimpleString', false],
    ]);
  });

  it('reads a 4,000-element reply fed a byte at a time and a 1 MiB string in 4 KiB pieces as it reads them whole', () => {
    const many = `*4000\r\n${':1\r\n'.repeat(4000)}`;
    const big = `$${1 << 20}\r\n${'y'.repeat(1 << 20)}\r\n`;
    const ms = parse([client(cmd('LRANGE', 'l', '0', '-1'), cmd('GET', 'big')), { side: 'server', bytes: Buffer.from(many + big) }], []);
    // Same messages, a byte at a time for the array and 4 KiB pieces for the 1 MiB string.
    const p = new RedisParser();
    const out: DbMessage[] = [];
    p.onMessage = (m) => out.push(m);
    p.feed('client', { data: Buffer.concat([cmd('LRANGE', 'l', '0', '-1'), cmd('GET', 'big')]), ts: 1n, tid: 1 });
    const bytes = Buffer.from(many + big);
    let at = 0;
    for (; at < many.length; at++) p.feed('server', { data: bytes.subarray(at, at + 1), ts: 2n, tid: 1 });
    for (; at < bytes.length; at += 4096) p.feed('server', { data: bytes.subarray(at, at + 4096), ts: 2n, tid: 1 });
    expect(shape(out)).toEqual(shape(ms));
    expect(responses(out).map((r) => [r.command, r.rows])).toEqual([
      ['Array', 4000],
      ['BulkString', undefined],
    ]);
  });

  it('gives the same messages however the bytes are cut', () => {
    const turns: Turn[] = [
      client(cmd('SET', 'k', 'v'.repeat(500)), cmd('MGET', 'a', 'b', 'c')),
      server(`+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$${600}\r\n${'z'.repeat(600)}\r\n`),
      client(Buffer.from('PING\r\n')),
      server('+PONG\r\n'),
    ];
    const whole = shape(parse(turns));
    expect(whole.length).toBe(6);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
        expect(shape(parse(turns, cuts))).toEqual(whole);
      }),
    );
  });

  it('round-trips generated commands and replies', () => {
    const command = fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(fc.array(fc.tuple(command, reply), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), (pairs, cuts) => {
        const turns: Turn[] = [client(...pairs.map(([args]) => cmd(...args))), server(pairs.map(([, r]) => r).join(''))];
        const ms = parse(turns, cuts);
        expect(requests(ms).map((r) => [r.command, r.params])).toEqual(pairs.map(([args]) => [args[0]!.toUpperCase(), args.length - 1]));
        expect(responses(ms).length).toBe(pairs.length);
        expect(ms.every((m) => m.error === undefined)).toBe(true);
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
});
