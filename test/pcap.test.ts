import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { PROTOCOLS } from '../src/parsers/protocols';
import { describe, expect, it } from 'vitest';
import { parseFile } from '../src/pipeline/parse';
import { replayFile } from '../src/pipeline/replay';
import { importPcap, streamPcapFile } from '../src/sources/pcap/import';
import { conversation, pcapFile, pcapngFile, type Seg } from './pcap-writer';
import { ROOT, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const FIXTURES = path.join(ROOT, 'test/fixtures');

interface Rec {
  kind: string;
  method?: string;
  target?: string;
  status?: number;
  bodyBytes: number;
  lostBytes?: number;
  error?: string;
  conn: string;
  headers: Array<[string, string]>;
}

function parse(file: string): Rec[] {
  let out = '';
  parseFile(file, 'jsonl', (s) => (out += s));
  return out.trim() === ''
    ? []
    : out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Rec);
}

function parseBytes(bytes: Buffer): Rec[] {
  const file = path.join(tempDir(), 'x.pcap');
  fs.writeFileSync(file, bytes);
  return parse(file);
}

const brief = (r: Rec) =>
  (r.kind === 'request' ? `${r.method} ${r.target} ${r.bodyBytes}` : `${r.status} ${r.bodyBytes}`) + (r.lostBytes ? ` lost=${r.lostBytes}` : '') + (r.error ? ' ERR' : '');

// What scripts/make-pcap-fixtures.sh sent with curl, and what the server answered.
const CURL_SESSION = [
  'GET /hello?user=REDACTED 0',
  '200 6',
  'GET /chunked 0',
  '200 30',
  'POST /echo 3000',
  '200 15',
  'GET /big 0',
  '200 30000',
  'HEAD /hello 0',
  '200 0',
  'GET /missing 0',
  '404 9',
];

describe('pcap import of real traffic (curl -> node http on loopback)', () => {
  it('reads tcpdump pcap (Ethernet) and dumpcap pcapng (Linux cooked v2) into the same messages', () => {
    for (const f of ['http-loopback.pcap', 'http-any.pcapng']) {
      const recs = parse(path.join(FIXTURES, f));
      expect(recs.map(brief), f).toEqual(CURL_SESSION);
      const post = recs.find((r) => r.method === 'POST')!;
      expect(post.headers).toContainEqual(['Authorization', 'REDACTED']);
      expect(post.headers).toContainEqual(['Content-Type', 'application/octet-stream']);
      expect(recs.filter((r) => r.method === 'GET' && r.target !== '/big').every((r) => r.conn.startsWith('127.0.0.1:') && r.conn.includes('->127.0.0.1:1808'))).toBe(true);
    }
  });

  it('reports bytes the snap length cut as loss, never glued, and keeps messages whose length is known', () => {
    const recs = parse(path.join(FIXTURES, 'http-snaplen.pcap'));
    const big = recs.find((r) => r.status === 200 && (r.lostBytes ?? 0) > 20000)!;
    expect(big).toMatchObject({ bodyBytes: 8, lostBytes: 29992 });
    expect(big.error).toBeUndefined();
    const post = recs.find((r) => r.method === 'POST')!;
    expect(post.error).toMatch(/^byte \d+: \d+ bytes lost inside the message$/);
    expect(recs.map((r) => (r.kind === 'request' ? r.method : r.status))).toEqual(['GET', 200, 'GET', 200, 'POST', 200, 'GET', 200, 'HEAD', 200, 'GET', 404]);
  });

  it('imports into a capture whose replay pairs client and server spans into one trace per request', () => {
    const dir = tempDir();
    const out = path.join(dir, 'fixture.loupe');
    const r = spawnSync('node', [CLI, 'import', path.join(FIXTURES, 'http-loopback.pcap'), '-o', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('54 TCP segments, 5 flows');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    let jsonl = '';
    replayFile(out, 'jsonl', (s) => (jsonl += s));
    const spans = jsonl
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { traceId: string; kind: string; parentSpanId: string; spanId: string; service: string });
    expect(spans).toHaveLength(12);
    const traces = new Map<string, typeof spans>();
    for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    expect(traces.size).toBe(6);
    for (const t of traces.values()) {
      const client = t.find((s) => s.kind === 'client')!;
      const server = t.find((s) => s.kind === 'server')!;
      expect(server.parentSpanId).toBe(client.spanId);
      expect(server.service).toBe('127.0.0.1:18081');
      expect(client.service).toBe('127.0.0.1');
    }
  });
});

const C = '10.1.0.1:40000';
const S = '10.1.0.2:8080';
const REQ = 'POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 2500\r\n\r\n' + 'o'.repeat(2500);
const RES = 'HTTP/1.1 201 Created\r\nContent-Length: 1800\r\n\r\n' + 'r'.repeat(1800);
const EXPECTED = ['POST /orders 2500', '201 1800'];

describe('TCP reassembly', () => {
  it('gives the same messages whatever the segment order, retransmissions included', () => {
    const base = conversation(C, S, [[REQ, RES]], 700);
    const handshake = base.slice(0, 3);
    const data = base.slice(3, -2);
    const fin = base.slice(-2);
    fc.assert(
      fc.property(fc.array(fc.nat(data.length - 1), { maxLength: 6 }), fc.infiniteStream(fc.nat()), (dups, order) => {
        // Reorder segments within each direction (a response cannot overtake its request on the
        // wire, but segments of one direction arrive in any order), and repeat some (retransmissions).
        const withDups: Seg[] = [...data, ...dups.map((i) => data[i]!)].sort((a, b) => (a.src === b.src ? 0 : a.src === C ? -1 : 1));
        const it = order[Symbol.iterator]();
        const shuffle = (list: Seg[]) =>
          list
            .map((x) => ({ x, k: it.next().value as number }))
            .sort((a, b) => a.k - b.k)
            .map((y) => y.x);
        const shuffled = [...shuffle(withDups.filter((x) => x.src === C)), ...shuffle(withDups.filter((x) => x.src !== C))];
        expect(parseBytes(pcapFile([...handshake, ...shuffled, ...fin])).map(brief)).toEqual(EXPECTED);
      }),
      { numRuns: 60 },
    );
  });

  it('trims overlapping retransmissions that start before the next expected byte', () => {
    const segs = conversation(C, S, [[REQ, RES]], 700);
    const first = segs[3]!;
    const overlap: Seg = { ...first, seq: first.seq + 300, payload: Buffer.from(String(first.payload)).subarray(300) };
    expect(parseBytes(pcapFile([...segs.slice(0, 4), overlap, ...segs.slice(4)])).map(brief)).toEqual(EXPECTED);
  });

  it('reports a hole that never fills as lost bytes, and the message around it is kept when its length is known', () => {
    const segs = conversation(C, S, [[REQ, RES]], 700);
    const withoutSecond = segs.filter((_, i) => i !== 4); // the client's second data segment never arrives
    const recs = parseBytes(pcapFile(withoutSecond));
    expect(recs.map(brief)).toEqual(['POST /orders 1800 lost=700', '201 1800']);
  });

  it('joins a connection mid-stream: no handshake, first bytes in the middle of a body', () => {
    const segs = conversation(
      C,
      S,
      [
        [REQ, RES],
        ['GET /next HTTP/1.1\r\nHost: shop\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
      ],
      700,
    );
    const late = segs.slice(5); // handshake and the first request's start are not in the capture
    const recs = parseBytes(pcapFile(late));
    expect(recs.map(brief)).toEqual(['201 1800', 'GET /next 0', '200 2']);
  });

  it('decodes IPv6 and VLAN-tagged frames, big-endian pcap and nanosecond pcapng', () => {
    const v6 = conversation('[fd00::1]:40000', '[fd00::2]:80', [['GET /v6 HTTP/1.1\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n']]);
    expect(parseBytes(pcapFile(v6)).map(brief)).toEqual(['GET /v6 0', '204 0']);
    const v4 = conversation(C, S, [[REQ, RES]], 700);
    expect(parseBytes(pcapFile(v4, { vlan: true })).map(brief)).toEqual(EXPECTED);
    expect(parseBytes(pcapFile(v4, { bigEndian: true })).map(brief)).toEqual(EXPECTED);
    const ng = pcapngFile(v4.map((s, i) => ({ ...s, ts: 1_700_000_000_123_456_789n + BigInt(i) })));
    const file = path.join(tempDir(), 'x.pcapng');
    fs.writeFileSync(file, ng);
    let out = '';
    parseFile(file, 'jsonl', (s) => (out += s));
    expect(JSON.parse(out.split('\n')[0]!).ts).toBe('1700000000123456792'); // exact ns from if_tsresol=9
  });

  it('reads Linux cooked, BSD loopback and raw IP link layers', () => {
    const segs = conversation(C, S, [[REQ, RES]], 700);
    for (const link of ['sll', 'null', 'raw'] as const) expect(parseBytes(pcapFile(segs, { link })).map(brief), link).toEqual(EXPECTED);
  });

  it('does not call a packet truncated when only bytes after the IP packet were not captured', () => {
    const segs = conversation(C, S, [[REQ, RES]], 700);
    const { stats } = importPcap(pcapFile(segs, { trailerNotCaptured: 4 }), 'fcs.pcap');
    expect(stats.truncatedBytes).toBe(0);
    expect(parseBytes(pcapFile(segs, { trailerNotCaptured: 4 })).map(brief)).toEqual(EXPECTED);
  });

  it('treats a new SYN on the same ports after FIN as a new connection', () => {
    const one = conversation(C, S, [['GET /1 HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']]);
    const two = conversation(C, S, [['GET /2 HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']]);
    const { stats } = importPcap(pcapFile([...one, ...two]), 'x.pcap');
    expect(stats.flows).toBe(2);
    expect(parseBytes(pcapFile([...one, ...two])).map(brief)).toEqual(['GET /1 0', '200 0', 'GET /2 0', '200 0']);
  });
});

describe('pcap read as a stream', () => {
  it('gives the same events read through the file window as from the whole file, records straddling its 1 MiB reads', () => {
    // 48 connections interleaved, each a 90 KB upload and answer: 4.6 MB, records cut by each window edge, more than one batch of events.
    const body = 'x'.repeat(90_000);
    const convs = Array.from({ length: 48 }, (_, i) =>
      conversation(`10.1.0.${i + 1}:4${1000 + i}`, S, [[`POST /u${i} HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`, RES]], 1400),
    );
    const interleaved: Seg[] = [];
    for (let at = 0; convs.some((c) => at < c.length); at++) for (const c of convs) if (at < c.length) interleaved.push(c[at]!);
    const show = (evs: unknown[]) =>
      JSON.stringify(evs, (_k, v) => (typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) || v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
    for (const [name, bytes] of [
      ['x.pcap', pcapFile(interleaved)],
      ['x.pcapng', pcapngFile(interleaved)],
    ] as const) {
      expect(bytes.length).toBeGreaterThan(4 << 20);
      const whole = importPcap(bytes, name);
      const file = path.join(tempDir(), name);
      fs.writeFileSync(file, bytes);
      const fd = fs.openSync(file, 'r');
      try {
        const stream = streamPcapFile(fd, file);
        const batches = [...stream.batches];
        expect(batches.length).toBeGreaterThan(1);
        expect(show(batches.flat())).toBe(show(whole.events));
        expect(stream.header).toEqual(whole.header);
        expect(stream.stats).toEqual(whole.stats);
      } finally {
        fs.closeSync(fd);
      }
      const recs = parse(file);
      expect(
        recs
          .filter((r) => r.kind === 'request')
          .map((r) => `${r.target} ${r.bodyBytes}`)
          .sort(),
      ).toEqual(convs.map((_, i) => `/u${i} 90000`).sort());
    }
  });
});

describe('bad pcap input', () => {
  it('reads every packet before a record the file ends inside, and warns with its byte offset (a capture cut short), exit 0', () => {
    const segments = conversation(C, S, [[REQ, RES]], 700);
    const whole = pcapFile(segments);
    const file = path.join(tempDir(), 'cut.pcap');
    // Two requests' worth: the second exchange's last packet is cut, the first exchange is whole.
    const two = pcapFile([...segments, ...conversation('10.1.0.1:40001', S, [['GET /second HTTP/1.1\r\n\r\n', RES]], 700)]);
    for (const [bytes, cut] of [
      [whole, 10],
      [whole, whole.length - 24 - 5],
      [two, 3],
    ] as const) {
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - cut));
      const r = spawnSync('node', [CLI, 'parse', file, '--format', 'jsonl'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/loupe: warning: the file ends inside its last record \(byte \d+: truncated: .+\); every packet before it was read/);
    }
    // pcapng, from tcpdump on this machine: the same.
    const ng = fs.readFileSync(path.join(ROOT, 'test/fixtures/http-any.pcapng'));
    const ngFile = path.join(tempDir(), 'cut.pcapng');
    fs.writeFileSync(ngFile, ng.subarray(0, ng.length - 7));
    const ngCut = spawnSync('node', [CLI, 'parse', ngFile, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(ngCut.status, ngCut.stderr).toBe(0);
    expect(ngCut.stderr).toMatch(/loupe: warning: the file ends inside its last record \(byte \d+: truncated: the pcapng block needs \d+ bytes/);
    expect(ngCut.stdout.trim().split('\n').length).toBeGreaterThan(0);
    // The first cut leaves the whole exchange (the last packet is the closing handshake's).
    fs.writeFileSync(file, whole.subarray(0, whole.length - 10));
    const r = spawnSync('node', [CLI, 'parse', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((m) => m.protocol === 'http1')
        .map((m) => m.kind),
    ).toEqual(['request', 'response']);
  });

  it('stops at a corrupt record with its byte offset and exit 2, having written every message before it', () => {
    // 30 exchanges (more than a batch of events apart), then a record claiming 1 GB, then one more exchange.
    const before = Array.from({ length: 30 }, (_, i) => conversation(`10.1.1.${i + 1}:40000`, S, [[`GET /before/${i} HTTP/1.1\r\n\r\n`, RES]], 700)).flat();
    const good = pcapFile(before);
    const corrupt = Buffer.alloc(16);
    corrupt.writeUInt32LE(1_000_000_000, 8);
    corrupt.writeUInt32LE(1_000_000_000, 12);
    const after = pcapFile(conversation('10.1.2.1:40000', S, [['GET /after HTTP/1.1\r\n\r\n', RES]], 700)).subarray(24);
    const file = path.join(tempDir(), 'corrupt.pcap');
    fs.writeFileSync(file, Buffer.concat([good, corrupt, after]));
    const r = spawnSync('node', [CLI, 'parse', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`byte ${good.length}: packet record claims 1000000000 captured bytes: the file is corrupt`);
    const targets = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Rec)
      .filter((m) => m.kind === 'request')
      .map((m) => m.target);
    expect(targets).toEqual(Array.from({ length: 30 }, (_, i) => `/before/${i}`));
  });

  it('counts malformed packets with their offsets instead of failing', () => {
    const segs = conversation(C, S, [[REQ, RES]], 700);
    const bytes = pcapFile(segs);
    const bad = Buffer.from(bytes);
    bad[24 + 16 + 14] = 0x41; // first packet: IPv4 version nibble 4 -> header length 4 bytes
    const { stats } = importPcap(bad, 'bad.pcap');
    expect(stats.malformedCount).toBe(1);
    expect(stats.malformed[0]).toEqual({ offset: 24, reason: 'IPv4 header length 4 is below 20' });
  });

  it('never throws anything but a capture error on random bytes after a valid header', () => {
    const header = pcapFile([]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (junk) => {
        try {
          importPcap(Buffer.concat([header, junk]), 'junk.pcap');
        } catch (e) {
          expect((e as Error).constructor.name).toBe('CaptureError');
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('loupe parse', () => {
  it('forces a protocol with --port where detection cannot tell', () => {
    const junkFirst = conversation(C, S, [['garbage\r\nGET /late HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']]);
    const file = path.join(tempDir(), 'junk.pcap');
    fs.writeFileSync(file, pcapFile(junkFirst));
    const plain = spawnSync('node', [CLI, 'parse', file], { encoding: 'utf8' });
    expect(
      plain.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).kind),
    ).toEqual(['response']);
    const forced = spawnSync('node', [CLI, 'parse', file, '--port', '8080=http1'], { encoding: 'utf8' });
    const recs = forced.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Rec);
    expect(recs.map((r) => [r.kind, r.target ?? r.status, r.error])).toEqual([
      ['request', '', 'byte 0: invalid request line "garbage"'],
      ['request', '/late', undefined],
      ['response', 200, undefined],
    ]);
    const bad = spawnSync('node', [CLI, 'parse', file, '--port', '8080=gopher'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`--port takes PORT=PROTO with PROTO one of ${PROTOCOLS.join(', ')}, got "8080=gopher"`);
  });

  it('prints a table, one row per message, and keeps secrets out unless --no-redact', () => {
    const fixture = path.join(FIXTURES, 'http-loopback.pcap');
    const table = spawnSync('node', [CLI, 'parse', fixture, '--format', 'table'], { encoding: 'utf8' });
    const rows = table.stdout.trim().split('\n');
    expect(rows).toHaveLength(13);
    expect(rows[1]).toMatch(/^0\.000\s+127\.0\.0\.1:\d+->127\.0\.0\.1:18081\s+http1\s+request\s+GET \/hello\?user=REDACTED HTTP\/1\.1\s+0/);
    expect(table.stdout).not.toContain('alice');
    const raw = spawnSync('node', [CLI, 'parse', fixture, '--no-redact'], { encoding: 'utf8' });
    expect(raw.stdout).toContain('/hello?user=alice');
    expect(raw.stdout).toContain('Bearer s3cret');
  });
});
