/**
 * Every parser must take time linear in its input at any chunking (a 1.3 MiB
 * Redis reply in 4 KiB pieces once took 3 s). Each parser reads its seed
 * conversations (test/fuzz/seeds.ts) repeated to about S and to 4·S bytes,
 * fed whole, in 4 KiB pieces and one byte at a time; the time ratio of 4·S to
 * S should be near 4 (2 to 6 here), never near 16. Exits 1 on a ratio over 8.
 * No peer: the check is against the parser itself at another size.
 *
 * Wall clock is fine here: this is not the core.
 */
import { createParser } from '../src/parsers/protocols';
import type { Turn } from '../test/parser-harness';
import { allSeeds } from '../test/fuzz/seeds';

const BASE = Number(process.argv[2] ?? 256 * 1024);

function grown(turns: Turn[], bytes: number): Turn[] {
  const size = turns.reduce((n, t) => n + t.bytes.length, 0);
  const copies = Math.max(1, Math.ceil(bytes / Math.max(1, size)));
  return Array.from({ length: copies }, () => turns).flat();
}

function time(protocol: string, turns: Turn[], piece: number): number {
  const parser = createParser(protocol)!;
  parser.onMessage = () => {};
  const t0 = process.hrtime.bigint();
  let ts = 0n;
  for (const t of turns) {
    const step = piece === Infinity ? t.bytes.length : piece;
    for (let at = 0; at < t.bytes.length; at += step) parser.feed(t.side, { data: t.bytes.subarray(at, at + step), ts: ts++, tid: 1 });
  }
  parser.end(ts);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** One message that grows with the input (the quadratic cases hide in these): a Redis reply of many elements, one chunked HTTP/1 body, one PostgreSQL result of many rows. */
function oneLarge(protocol: string, bytes: number): Turn[] | undefined {
  if (protocol === 'redis') {
    const n = Math.ceil(bytes / 20);
    return [
      { side: 'client', bytes: Buffer.from('*2\r\n$6\r\nLRANGE\r\n$1\r\nk\r\n') },
      { side: 'server', bytes: Buffer.from(`*${n}\r\n${'$10\r\n0123456789\r\n'.repeat(n)}`) },
    ];
  }
  if (protocol === 'http1') {
    const n = Math.ceil(bytes / 16);
    return [
      { side: 'client', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
      { side: 'server', bytes: Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'a\r\n0123456789\r\n'.repeat(n)}0\r\n\r\n`) },
    ];
  }
  if (protocol === 'postgres') {
    const msg = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeUInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    const row = msg('D', Buffer.from([0, 1, 0, 0, 0, 4, 0x31, 0x32, 0x33, 0x34]));
    const n = Math.ceil(bytes / row.length);
    return [
      { side: 'client', bytes: msg('Q', Buffer.from('SELECT x FROM t\0')) },
      { side: 'server', bytes: Buffer.concat([...Array.from({ length: n }, () => row), msg('C', Buffer.from('SELECT 1\0')), msg('Z', Buffer.from('I'))]) },
    ];
  }
  return undefined;
}

let worst = 0;
console.log(`| parser | chunking | ms at ${BASE >> 10} KiB | ms at ${(4 * BASE) >> 10} KiB | ratio |`);
console.log('|---|---|---|---|---|');
const cases: Array<[string, (bytes: number) => Turn[]]> = [];
for (const [protocol, conversations] of allSeeds()) {
  const seed = conversations.reduce((a, b) => (b.reduce((n, t) => n + t.bytes.length, 0) > a.reduce((n, t) => n + t.bytes.length, 0) ? b : a));
  cases.push([protocol, (bytes) => grown(seed, bytes)]);
  if (oneLarge(protocol, 1)) cases.push([`${protocol} (one message)`, (bytes) => oneLarge(protocol, bytes)!]);
}
for (const [name, make] of cases) {
  const protocol = name.split(' ')[0]!;
  for (const [label, piece] of [
    ['whole', Infinity],
    ['4 KiB', 4096],
    ['1 byte', 1],
  ] as const) {
    const small = make(BASE);
    const large = make(4 * BASE);
    time(protocol, small, piece); // warm up
    const a = Math.min(time(protocol, small, piece), time(protocol, small, piece));
    const b = Math.min(time(protocol, large, piece), time(protocol, large, piece));
    const ratio = b / Math.max(a, 0.001);
    worst = Math.max(worst, ratio);
    console.log(`| ${name} | ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${ratio.toFixed(1)} |`);
  }
}
process.exitCode = worst > 8 ? 1 : 0;
