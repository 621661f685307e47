/**
 * The secrets matrix: a capture that holds secrets of every kind in its raw
 * bytes (as a --no-redact recording would), through every output. By default
 * none may appear: query values, header values off the allowlist, database
 * passwords, Redis AUTH, SQL literals. (Masking in the captured bytes
 * themselves: src/security/*.test.ts and the live tests.)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeEvent } from '../src/events/codec';
import { headerToJsonLine, recordToJsonLine } from '../src/events/jsonl';
import { HEADER, ROOT, spansRawAndMasked, tempDir } from './helpers';
import { allSeeds } from './fuzz/seeds';
import { Script } from './script';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const SECRETS = {
  query: 'qsecret1',
  accessToken: 'hsecret2',
  referer: 'rsecret3',
  cookie: 'csecret4',
  pgPassword: 'psecret5',
  sqlString: 'ssecret6',
  sqlNumber: '987654321',
  redisAuth: 'asecret7',
  customHeader: 'xsecret8',
};

function pg(type: string, body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}

function secretCapture(): { file: string; bytes: string } {
  const s = new Script();
  const [c, srv] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 1, fd: 5, port: 8080 });
  const req = `GET /items?token=${SECRETS.query} HTTP/1.1\r\nHost: shop\r\nX-Access-Token: ${SECRETS.accessToken}\r\nReferer: https://a/?k=${SECRETS.referer}\r\nCookie: id=${SECRETS.cookie}\r\nX-Custom: ${SECRETS.customHeader}\r\n\r\n`;
  s.send(c, req);
  s.recv(srv, req);
  const res = `HTTP/1.1 302 Found\r\nLocation: /next?t=${SECRETS.query}\r\nContent-Length: 0\r\n\r\n`;
  s.send(srv, res);
  s.recv(c, res);
  const [app, db] = s.connection({ pid: 1, tid: 2, fd: 6, port: 40001 }, { pid: 2, tid: 20, fd: 4, port: 5432 });
  const startup = Buffer.concat([Buffer.alloc(8), Buffer.from('user\0app\0database\0shop\0\0')]);
  startup.writeUInt32BE(startup.length, 0);
  startup.writeUInt32BE(196608, 4);
  const client = [startup, pg('p', `${SECRETS.pgPassword}\0`), pg('Q', `SELECT * FROM users WHERE name = '${SECRETS.sqlString}' AND id = ${SECRETS.sqlNumber}\0`)];
  const server = [pg('R', Buffer.from([0, 0, 0, 3])), pg('R', Buffer.alloc(4)), pg('Z', 'I'), pg('C', 'SELECT 0\0'), pg('Z', 'I')];
  s.send(app, client[0]!.toString('latin1'));
  s.send(db, server[0]!.toString('latin1'));
  for (const [from, to, bytes] of [
    [app, db, client[0]!],
    [db, app, server[0]!],
    [app, db, client[1]!],
    [db, app, Buffer.concat(server.slice(1, 3))],
    [app, db, client[2]!],
    [db, app, Buffer.concat(server.slice(3))],
  ] as const) {
    void from;
    s.recv(to, bytes.toString('latin1'));
  }
  const [rc, rs] = s.connection({ pid: 1, tid: 2, fd: 7, port: 40002 }, { pid: 4, tid: 40, fd: 4, port: 6379 });
  const auth = `*2\r\n$4\r\nAUTH\r\n$${SECRETS.redisAuth.length}\r\n${SECRETS.redisAuth}\r\n`;
  s.send(rc, auth);
  s.recv(rs, auth);
  s.send(rs, '+OK\r\n');
  s.recv(rc, '+OK\r\n');
  const file = path.join(tempDir(), 'secrets.jsonl');
  fs.writeFileSync(
    file,
    [
      headerToJsonLine({
        ...HEADER,
        processes: [
          { pid: 1, exe: '/srv/app' },
          { pid: 2, exe: '/usr/lib/postgresql/15/bin/postgres' },
          { pid: 3, exe: '/usr/bin/curl' },
          { pid: 4, exe: '/usr/bin/redis-server' },
        ],
      }),
      ...s.events.map((e) => recordToJsonLine(encodeEvent(e))),
    ].join('\n') + '\n',
  );
  const bytes = s.events.map((e) => (e.type === 'data' ? Buffer.from(e.data).toString('latin1') : '')).join('');
  return { file, bytes };
}

describe('secrets matrix: every kind, every output', () => {
  it('shows none of them by default, and the capture really holds them', () => {
    const { file: capture, bytes } = secretCapture();
    for (const secret of Object.values(SECRETS)) expect(bytes, `the capture holds ${secret}`).toContain(secret);
    const dir = tempDir();
    const outputs: Record<string, string> = {};
    for (const [name, args] of [
      ['replay tree', ['replay', capture, '--format', 'tree']],
      ['replay jsonl', ['replay', capture, '--format', 'jsonl']],
      ['replay otlp-json', ['replay', capture, '--format', 'otlp-json']],
      ['parse jsonl', ['parse', capture, '--format', 'jsonl']],
      ['parse table', ['parse', capture, '--format', 'table']],
      ['view', ['view', capture]],
      ['diff', ['diff', capture, capture]],
      ['diff json', ['diff', capture, capture, '--format', 'json']],
    ] as const) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      outputs[name] = r.stdout + r.stderr;
    }
    const report = path.join(dir, 'report.html');
    expect(spawnSync('node', [CLI, 'report', capture, '-o', report]).status).toBe(0);
    outputs.report = fs.readFileSync(report, 'utf8');
    const found: string[] = [];
    for (const [name, text] of Object.entries(outputs)) {
      expect(text.length, name).toBeGreaterThan(0);
      for (const [kind, secret] of Object.entries(SECRETS)) if (text.includes(secret)) found.push(`${kind} in ${name}`);
    }
    expect(found).toEqual([]);
    // The check can fail: asked to keep them, parse shows them.
    const kept = spawnSync('node', [CLI, 'parse', capture, '--format', 'jsonl', '--no-redact'], { encoding: 'utf8' }).stdout;
    expect([SECRETS.query, SECRETS.accessToken, SECRETS.customHeader].filter((x) => kept.includes(x))).toHaveLength(3);
    // And the outputs still say what happened.
    expect(outputs['replay jsonl']).toContain('"url.path":"/items"');
    expect(outputs['parse jsonl']).toContain('"command":"AUTH"');
  });

  it('gives the same spans from its bytes masked as a recording masks them, so a run that records nothing skips the masking', () => {
    const { raw, masked, bytesChanged } = spansRawAndMasked(secretCapture().file);
    // The masking did mask (every secret's bytes, and more), and the spans did not see it.
    expect(bytesChanged).toBeGreaterThan(Object.values(SECRETS).join('').length);
    expect(raw.trim().split('\n')).toHaveLength(5);
    expect(masked).toBe(raw);
  });

  it("gives the same spans from every protocol's seed conversations (real clients' and servers' bytes) masked as from them raw", () => {
    const s = new Script();
    let fd = 10;
    let port = 41000;
    const protocols: string[] = [];
    for (const [protocol, conversations] of allSeeds()) {
      protocols.push(protocol);
      for (const turns of conversations.slice(0, 40)) {
        const [c, srv] = s.connection({ pid: 3, tid: 3, fd: fd++, port: port++ }, { pid: 1, tid: 1, fd: fd++, port: 9000 });
        for (const t of turns) {
          const [from, to] = t.side === 'client' ? [c, srv] : [srv, c];
          // In records of at most 4 KiB, as the kernel side copies them.
          for (let at = 0; at < t.bytes.length; at += 4096) {
            s.send(from, t.bytes.subarray(at, at + 4096));
            s.recv(to, t.bytes.subarray(at, at + 4096));
          }
        }
        s.close(c);
        s.close(srv);
      }
    }
    const file = path.join(tempDir(), 'seeds.jsonl');
    fs.writeFileSync(
      file,
      [
        headerToJsonLine({
          ...HEADER,
          processes: [
            { pid: 1, exe: '/srv/server' },
            { pid: 3, exe: '/usr/bin/client' },
          ],
        }),
        ...s.events.map((e) => recordToJsonLine(encodeEvent(e))),
      ].join('\n') + '\n',
    );
    const { raw, masked, bytesChanged } = spansRawAndMasked(file);
    expect(protocols.length).toBeGreaterThanOrEqual(10);
    expect(bytesChanged).toBeGreaterThan(100);
    const lines = (t: string) => t.trim().split('\n');
    expect(lines(raw).length).toBeGreaterThan(300);
    // Which spans differ, if any, named by their first difference.
    const differing = lines(masked).flatMap((l, i) => (l === lines(raw)[i] ? [] : [`${i}: ${l.slice(0, 300)} (raw: ${lines(raw)[i]?.slice(0, 300)})`]));
    expect(differing.slice(0, 5)).toEqual([]);
    expect(masked).toBe(raw);
  });
});
