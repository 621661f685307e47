/**
 * MySQL 8's query attributes (CLIENT_QUERY_ATTRIBUTES, 8.0.23+) as MySQL's own
 * Python driver, mysql-connector-python (pure Python), sends them. No MySQL 8
 * server is packaged here (Debian has MariaDB, which does not offer them), so
 * the server is a stub that offers the capability and answers OK: the client's
 * bytes are the real ones. Its recorded conversation goes through the parser,
 * and through the masker as the live agent would record it.
 * `LOUPE_WRITE_FIXTURE=test/fixtures/mysql-query-attributes.jsonl` rewrites the
 * recording the fuzz targets start from (test/fuzz/seeds.ts).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MysqlParser } from '../src/parsers/mysql/parser';
import type { DbMessage, DbRequest } from '../src/parsers/db';
import { StreamMasker } from '../src/security/redact-payload';
import { Pipeline } from '../src/pipeline/pipeline';
import type { Span } from '../src/correlator/span';
import { HEADER, ROOT } from './helpers';
import { Script } from './script';
import { runTurns, type Turn } from './parser-harness';

const PYTHON = path.join(ROOT, 'build/venv/bin/python');
const missing = fs.existsSync(PYTHON) && fs.existsSync(path.join(ROOT, 'build/venv/.loupe-installed')) ? '' : 'build/venv has no mysql-connector-python (make py-deps; needs PyPI)';

// LONG_PASSWORD, LONG_FLAG, CONNECT_WITH_DB, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, PLUGIN_AUTH_LENENC, QUERY_ATTRIBUTES
const CAPS = 0x1 | 0x4 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000 | 0x8000000;
const packet = (seq: number, p: Buffer) => {
  const h = Buffer.alloc(4);
  h.writeUIntLE(p.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, p]);
};
const ok = (seq: number) => packet(seq, Buffer.from([0, 0, 0, 2, 0, 0, 0]));

function greeting(): Buffer {
  const g = Buffer.alloc(200);
  let at = 0;
  g[at++] = 10;
  at += g.write('8.0.36\0', at);
  g.writeUInt32LE(7, at);
  at += 4;
  g.fill(0x61, at, at + 8);
  at += 9;
  g.writeUInt16LE(CAPS & 0xffff, at);
  at += 2;
  g[at++] = 255;
  g.writeUInt16LE(2, at);
  at += 2;
  g.writeUInt16LE(CAPS >>> 16, at);
  at += 2;
  g[at++] = 21;
  at += 10;
  g.fill(0x62, at, at + 12);
  at += 13;
  at += g.write('mysql_native_password\0', at);
  return packet(0, g.subarray(0, at));
}

/** A server that says OK to everything (a prepare gets its parameter definitions), recording both sides as they were written. */
async function recordConversation(script: string): Promise<{ turns: Turn[]; stdout: string }> {
  const turns: Turn[] = [];
  const server = net.createServer((s) => {
    const send = (b: Buffer) => {
      s.write(b);
      turns.push({ side: 'server', bytes: b });
    };
    send(greeting());
    let buf = Buffer.alloc(0);
    let loggedIn = false;
    s.on('data', (d) => {
      turns.push({ side: 'client', bytes: Buffer.from(d) });
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUIntLE(0, 3)) {
        const p = buf.subarray(4, 4 + buf.readUIntLE(0, 3));
        buf = buf.subarray(4 + p.length);
        if (!loggedIn) {
          loggedIn = true;
          send(ok(2));
        } else if (p[0] === 0x16) {
          const params = (p.toString('latin1').match(/\?/g) ?? []).length;
          const h = Buffer.alloc(12);
          h.writeUInt32LE(1, 1);
          h.writeUInt16LE(params, 7);
          const parts = [packet(1, h)];
          for (let i = 0; i < params; i++) parts.push(packet(2 + i, Buffer.from('\x03def\x00\x00\x00\x01?\x00\x0c\x3f\x00\x00\x00\x00\x00\xfd\x80\x00\x00\x00\x00', 'latin1')));
          if (params) parts.push(packet(2 + params, Buffer.from([0xfe, 0, 0, 2, 0])));
          send(Buffer.concat(parts));
        } else if (p[0] === 0x01) s.end();
        else if (p[0] !== 0x19) send(ok(1));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(PYTHON, ['-c', script, String(port)], { encoding: 'utf8', timeout: 60_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    return { turns, stdout };
  } finally {
    server.close();
  }
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const CLIENT = `
import sys, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(sys.argv[1]), user='app', password='pw', use_pure=True, ssl_disabled=True)
cur = c.cursor()
cur.add_attribute('traceparent', '${TRACEPARENT}')
cur.add_attribute('tenant', 'acme-secret-tenant')
cur.execute("SELECT name FROM users WHERE email = 'ann@example.com'")
cur.clear_attributes()
cur.execute('SELECT 2')
pc = c.cursor(prepared=True)
pc.add_attribute('traceparent', '${TRACEPARENT}')
pc.add_attribute('api_key', 'k-12345-secret')
pc.execute('SELECT ? + 1', (41,))
c.close()
print('done')
`;

const parse = (turns: Turn[]) => runTurns(() => new MysqlParser(), turns) as DbMessage[];
const statements = (ms: DbMessage[]) =>
  ms
    .filter((m): m is DbRequest => m.kind === 'request' && ['COM_QUERY', 'COM_STMT_EXECUTE'].includes(m.command))
    .map((m) => [m.command, m.query, m.note ?? null, m.params ?? null]);

describe.skipIf(Boolean(missing))(`MySQL query attributes from mysql-connector-python${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it("reads each statement after its attributes, names the attributes, and counts an execute's parameters apart from them", async () => {
    const { turns, stdout } = await recordConversation(CLIENT);
    expect(stdout.trim()).toBe('done');
    if (process.env.LOUPE_WRITE_FIXTURE)
      fs.writeFileSync(process.env.LOUPE_WRITE_FIXTURE, `${turns.map((t) => JSON.stringify({ side: t.side, hex: t.bytes.toString('hex') })).join('\n')}\n`);
    const ms = parse(turns);
    expect(statements(ms).filter(([, q]) => !String(q).startsWith('SET '))).toEqual([
      ['COM_QUERY', "SELECT name FROM users WHERE email = 'ann@example.com'", 'query attributes: traceparent, tenant', null],
      ['COM_QUERY', 'SELECT 2', null, null],
      ['COM_STMT_EXECUTE', 'SELECT ? + 1', 'query attributes: traceparent, api_key', 1],
    ]);
    // Every request answered, in order.
    expect(ms.filter((m) => m.kind === 'response').length).toBe(ms.filter((m) => m.kind === 'request' && !(m as DbRequest).noResponse).length);
  });

  it("masks attribute values but trace context, keeps their names, and masks the statement's literals, as the agent records them", async () => {
    const { turns } = await recordConversation(CLIENT);
    const socket = {};
    const maskers = { client: new StreamMasker(socket), server: new StreamMasker(socket) };
    const masked = turns.map((t) => {
      const bytes = Buffer.from(t.bytes);
      maskers[t.side].mask(bytes);
      return { side: t.side, bytes };
    });
    const clientBytes = Buffer.concat(masked.filter((t) => t.side === 'client').map((t) => t.bytes)).toString('latin1');
    for (const secret of ['acme-secret-tenant', 'k-12345-secret', 'ann@example.com']) expect(clientBytes.includes(secret), secret).toBe(false);
    expect(clientBytes.includes(String.fromCharCode(41)), "the execute's parameter, 41 as a TINY byte").toBe(false);
    expect(clientBytes).toContain(TRACEPARENT);
    expect(clientBytes).toContain('tenant');
    expect(clientBytes).toContain('api_key');
    expect(statements(parse(masked)).filter(([, q]) => !String(q).startsWith('SET '))).toEqual([
      ['COM_QUERY', "SELECT name FROM users WHERE email = '***************'", 'query attributes: traceparent, tenant', null],
      ['COM_QUERY', 'SELECT 0', null, null],
      ['COM_STMT_EXECUTE', 'SELECT ? + 0', 'query attributes: traceparent, api_key', 1],
    ]);
  });

  it("makes the statement that carried a traceparent attribute the child of the span it names, the server's span the client's child in that trace, where the other statements start traces of their own", async () => {
    const { turns } = await recordConversation(CLIENT);
    // The recorded bytes as the kernel would show them to the two processes: the driver (pid 1) and a server (pid 2).
    const script = new Script();
    const [client, server] = script.connection({ pid: 1, tid: 11, fd: 5, port: 40000 }, { pid: 2, tid: 21, fd: 7, port: 3306 });
    for (const t of turns) {
      script.data(t.side === 'client' ? client : server, 'egress', t.bytes);
      script.data(t.side === 'client' ? server : client, 'ingress', t.bytes);
    }
    const spans: Span[] = [];
    const pipeline = new Pipeline(
      {
        ...HEADER,
        processes: [
          { pid: 1, exe: '/usr/bin/python3' },
          { pid: 2, exe: '/usr/sbin/mysqld' },
        ],
      },
      [{ onSpan: (x) => spans.push(x) }],
    );
    pipeline.push(script.events);
    pipeline.finish();
    const [traceId, parentId] = TRACEPARENT.split('-').slice(1, 3);
    const withContext = spans.filter((x) => x.traceId === traceId);
    // Two statements carried it (the query and the execute), each seen by both ends: the driver's span is the
    // child of the span the attribute names, and the server's span, which read the same bytes, the driver's.
    const clientOf = (name: string) => withContext.find((x) => x.kind === 'client' && x.name === name)!.spanId;
    expect(withContext.map((x) => [x.kind, x.name, x.parentSpanId, x.parentIsRemote, x.attributes['loupe.context']]).sort()).toEqual([
      ['client', 'SELECT users', parentId, true, 'traceparent'],
      ['client', 'SELECT', parentId, true, 'traceparent'],
      ['server', 'SELECT users', clientOf('SELECT users'), false, 'connection-pair'],
      ['server', 'SELECT', clientOf('SELECT'), false, 'connection-pair'],
    ]);
    const plain = spans.filter((x) => x.traceId !== traceId && String(x.attributes['db.query.text']) === 'SELECT ?');
    expect(plain.map((x) => x.kind).sort()).toEqual(['client', 'server']);
    expect(plain.find((x) => x.kind === 'server')!.parentSpanId).toBe(plain.find((x) => x.kind === 'client')!.spanId);
  });
});
