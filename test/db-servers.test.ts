/**
 * Real database servers from Debian packages, started on loopback in a temp
 * dir, driven by real clients through a recording proxy; the recorded traffic
 * is parsed and replayed into spans, and every statement sent is checked.
 *
 * Start commands (documented in README):
 *   PostgreSQL 15: runuser -u postgres -- initdb -A trust --no-sync -D DIR;
 *                  runuser -u postgres -- postgres -D DIR -k DIR -h 127.0.0.1 -p PORT -F
 *   MariaDB:       mariadb-install-db --no-defaults --datadir=DIR --user=root;
 *                  mariadbd --no-defaults --datadir=DIR --user=root --bind-address=127.0.0.1 --port=PORT --socket=DIR/s --skip-grant-tables
 *   Redis:         redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, spansRawAndMasked, tempDir, type SpanLine } from './helpers';
import { recordingProxy } from './recording-proxy';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const PG_BIN = '/usr/lib/postgresql/15/bin';

function missing(...binaries: string[]): string | undefined {
  const gone = binaries.filter((b) => !fs.existsSync(b) && spawnSync('which', [b]).status !== 0);
  return gone.length ? `not installed: ${gone.join(', ')}` : undefined;
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  while (!ok()) {
    if (process.hrtime.bigint() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A client run while the in-process proxy forwards its bytes: it must not block the event loop. */
function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.stdin.end(opts.input ?? '');
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const canConnect = (port: number) =>
  spawnSync(process.execPath, ['-e', `require('net').connect(${port},'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`]).status === 0;

interface Parsed {
  protocol: string;
  kind: string;
  command: string;
  query?: string;
  operation?: string;
  table?: string;
  database?: string;
  rows?: number;
  errorCode?: string;
  note?: string;
}

function parseCapture(file: string, ...extra: string[]): Parsed[] {
  const r = spawnSync('node', [CLI, 'parse', file, '--quiet', ...extra], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Parsed);
}

function spansOf(file: string): SpanLine[] {
  const r = spawnSync('node', [CLI, 'replay', file, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SpanLine);
}

const postgresMissing =
  missing(`${PG_BIN}/initdb`, `${PG_BIN}/postgres`, 'psql', 'runuser') ?? (process.getuid?.() !== 0 ? 'initdb must run as user postgres: needs root to switch' : undefined);
if (postgresMissing) console.warn(`PostgreSQL tests skipped: ${postgresMissing}`);

describe.skipIf(Boolean(postgresMissing))(`PostgreSQL 15, psql and node-postgres${postgresMissing ? ` (skipped: ${postgresMissing})` : ''}`, () => {
  const dir = tempDir();
  let server: ChildProcess;
  let port = 0;
  let capture = '';

  beforeAll(async () => {
    fs.chmodSync(dir, 0o777);
    const data = path.join(dir, 'data');
    execFileSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-A', 'trust', '--no-sync', '-U', 'postgres', '-D', data], { stdio: 'ignore' });
    port = await freePort();
    // Its own process group: killing runuser alone leaves postgres running.
    server = spawn('runuser', ['-u', 'postgres', '--', `${PG_BIN}/postgres`, '-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), '-F'], {
      stdio: 'ignore',
      detached: true,
    });
    await until(
      'postgres to accept connections',
      () => spawnSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', 'select 1'], { stdio: 'ignore' }).status === 0,
    );
    const proxy = await recordingProxy(port, 4242, '/usr/bin/psql');
    const psql = (sql: string) =>
      run('psql', ['-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'postgres', '-d', 'postgres', '-X', '-v', 'ON_ERROR_STOP=0', '-c', sql], {
        env: { ...process.env, PGSSLMODE: 'disable' },
      });
    expect((await psql('CREATE TABLE accounts (id int primary key, owner text, balance int)')).status).toBe(0);
    expect((await psql("INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 250)")).status).toBe(0);
    expect((await psql('SELECT owner FROM accounts WHERE balance > 50 ORDER BY id')).stdout).toMatch(/ann[\s\S]*bob/);
    await psql('SELECT missing_column FROM accounts');
    // node-postgres: the extended protocol (Parse/Bind/Execute/Sync), a named prepared statement reused.
    const script = `
      const { Client } = require('pg');
      (async () => {
        const c = new Client({ host: '127.0.0.1', port: ${proxy.port}, user: 'postgres', database: 'postgres' });
        await c.connect();
        await c.query({ name: 'by-id', text: 'SELECT owner FROM accounts WHERE id = $1', values: [1] });
        await c.query({ name: 'by-id', text: 'SELECT owner FROM accounts WHERE id = $1', values: [2] });
        await c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [5, 1]);
        await c.query('SELECT 1/0').catch(() => {});
        await c.end();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = await run(process.execPath, ['-e', script], { cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    capture = path.join(dir, 'pg.loupe');
    await proxy.close(capture);
  }, 90_000);

  afterAll(() => {
    if (server?.pid) process.kill(-server.pid, 'SIGINT');
  });

  it('parses every statement psql and node-postgres sent, with rows and errors', () => {
    const ms = parseCapture(capture);
    const queries = ms.filter((m) => m.kind === 'request' && (m.command === 'Query' || m.command === 'Execute')).map((m) => [m.command, m.query]);
    expect(queries).toEqual([
      ['Query', 'CREATE TABLE accounts (id int primary key, owner text, balance int)'],
      ['Query', 'INSERT INTO accounts VALUES (?, ?, ?), (?, ?, ?)'],
      ['Query', 'SELECT owner FROM accounts WHERE balance > ? ORDER BY id'],
      ['Query', 'SELECT missing_column FROM accounts'],
      ['Execute', 'SELECT owner FROM accounts WHERE id = $1'],
      ['Execute', 'SELECT owner FROM accounts WHERE id = $1'],
      ['Execute', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2'],
      ['Query', 'SELECT ?/?'], // no parameters: node-postgres sends a simple Query
    ]);
    const answers = ms.filter((m) => m.kind === 'response' && m.command !== 'ReadyForQuery').map((m) => [m.command, m.rows ?? null, m.errorCode ?? null]);
    expect(answers).toEqual([
      ['CommandComplete', 0, null],
      ['CommandComplete', 2, null],
      ['CommandComplete', 2, null],
      ['ErrorResponse', null, '42703'],
      ['CommandComplete', 1, null],
      ['CommandComplete', 1, null],
      ['CommandComplete', 1, null],
      ['ErrorResponse', null, '22012'],
    ]);
    expect(ms.filter((m) => m.command === 'Startup').every((m) => m.database === 'postgres')).toBe(true);
  });

  it('gives the same spans from its bytes masked as a recording masks them', () => {
    const { raw, masked, bytesChanged } = spansRawAndMasked(capture);
    expect(bytesChanged).toBeGreaterThan(0);
    expect(raw.trim().split('\n').length).toBeGreaterThan(3);
    expect(masked).toBe(raw);
  });

  it('keeps literals only with --no-redact', () => {
    const raw = parseCapture(capture, '--no-redact')
      .filter((m) => m.command === 'Query')
      .map((m) => m.query);
    expect(raw).toContain("INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 250)");
  });

  it('replays into database client spans with OpenTelemetry attributes', () => {
    const spans = spansOf(capture);
    expect(spans.map((s) => s.name)).toEqual([
      'CREATE accounts',
      'INSERT accounts',
      'SELECT accounts',
      'SELECT accounts',
      'SELECT accounts',
      'SELECT accounts',
      'UPDATE accounts',
      'SELECT',
    ]);
    const insert = spans[1]!;
    expect(insert.kind).toBe('client');
    expect(insert.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.namespace': 'postgres',
      'db.operation.name': 'INSERT',
      'db.collection.name': 'accounts',
      'db.query.text': 'INSERT INTO accounts VALUES (?, ?, ?), (?, ?, ?)',
      'db.response.returned_rows': 2,
      'server.port': port,
    });
    const failed = spans[3]!;
    expect(failed.status.code).toBe('error');
    expect(failed.attributes['db.response.status_code']).toBe('42703');
    expect(spans[7]!.attributes['db.response.status_code']).toBe('22012');
  });
});

const mariadbMissing = missing('mariadb-install-db', 'mariadbd', 'mariadb');
if (mariadbMissing) console.warn(`MariaDB tests skipped: ${mariadbMissing}`);

describe.skipIf(Boolean(mariadbMissing))(`MariaDB, the mariadb client and mysql2${mariadbMissing ? ` (skipped: ${mariadbMissing})` : ''}`, () => {
  const dir = tempDir();
  let server: ChildProcess;
  let capture = '';

  beforeAll(async () => {
    const data = path.join(dir, 'data');
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
    const port = await freePort();
    server = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${data}`,
        '--user=root',
        '--bind-address=127.0.0.1',
        `--port=${port}`,
        `--socket=${path.join(dir, 's')}`,
        '--skip-grant-tables',
        '--skip-log-bin',
        '--innodb-flush-log-at-trx-commit=0',
      ],
      { stdio: 'ignore' },
    );
    await until('mariadbd to listen', () => canConnect(port));
    const proxy = await recordingProxy(port, 4343, '/usr/bin/mariadb');
    const cli = (sql: string) => run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(proxy.port), '-u', 'root', '--skip-ssl', '-e', sql]);
    expect((await cli('CREATE DATABASE shop')).status).toBe(0);
    expect((await cli("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink')")).status).toBe(0);
    expect((await cli('SELECT name FROM shop.items ORDER BY id')).stdout).toMatch(/pen\s+ink/);
    await cli('SELECT nope FROM shop.items');
    const script = `
      const mysql = require('mysql2/promise');
      (async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: ${proxy.port}, user: 'root', database: 'shop' });
        await c.execute('SELECT name FROM items WHERE id = ?', [2]);
        await c.execute('SELECT name FROM items WHERE id = ?', [1]);
        await c.query("UPDATE items SET name = 'quill' WHERE id = 1");
        await c.end();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = await run(process.execPath, ['-e', script], { cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    capture = path.join(dir, 'my.loupe');
    await proxy.close(capture);
  }, 120_000);

  afterAll(() => {
    server?.kill();
  });

  it('gives the same spans from its bytes masked as a recording masks them', () => {
    const { raw, masked, bytesChanged } = spansRawAndMasked(capture);
    expect(bytesChanged).toBeGreaterThan(0);
    expect(raw.trim().split('\n').length).toBeGreaterThan(3);
    expect(masked).toBe(raw);
  });

  it('parses every statement the mariadb client and mysql2 sent, with prepared statements stitched', () => {
    const ms = parseCapture(capture, '--no-redact');
    const sent = ms.filter((m) => m.kind === 'request' && ['COM_QUERY', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE'].includes(m.command)).map((m) => [m.command, m.query]);
    // The mariadb client adds its own session queries (select @@version_comment ...): check ours are there, in order.
    const ours = sent.filter(([, q]) => /shop|items|nope/.test(q ?? ''));
    expect(ours).toEqual([
      ['COM_QUERY', 'CREATE DATABASE shop'],
      ['COM_QUERY', 'CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20))'],
      ['COM_QUERY', "INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink')"],
      ['COM_QUERY', 'SELECT name FROM shop.items ORDER BY id'],
      ['COM_QUERY', 'SELECT nope FROM shop.items'],
      ['COM_STMT_PREPARE', 'SELECT name FROM items WHERE id = ?'],
      ['COM_STMT_EXECUTE', 'SELECT name FROM items WHERE id = ?'],
      ['COM_STMT_EXECUTE', 'SELECT name FROM items WHERE id = ?'],
      ['COM_QUERY', "UPDATE items SET name = 'quill' WHERE id = 1"],
    ]);
    const byQuery = (q: string) => {
      const i = ms.findIndex((m) => m.kind === 'request' && m.query === q);
      return ms.slice(i + 1).find((m) => m.kind === 'response');
    };
    expect(byQuery("INSERT INTO shop.items VALUES (1, 'pen'), (2, 'ink')")).toMatchObject({ command: 'OK', rows: 2 });
    expect(byQuery('SELECT name FROM shop.items ORDER BY id')).toMatchObject({ command: 'ResultSet', rows: 2 });
    expect(byQuery('SELECT nope FROM shop.items')).toMatchObject({ command: 'ERR', errorCode: '42S22' });
    expect(ms.filter((m) => m.command === 'COM_STMT_EXECUTE').every((m) => m.database === 'shop')).toBe(true);
  });

  it('replays into mysql client spans', () => {
    const spans = spansOf(capture).filter((s) => /items|shop/.test(String(s.attributes['db.query.text'] ?? '')));
    expect(spans.map((s) => s.name)).toContain('SELECT items');
    const update = spans.find((s) => s.name === 'UPDATE items')!;
    expect(update.attributes).toMatchObject({
      'db.system.name': 'mysql',
      'db.query.text': 'UPDATE items SET name = ? WHERE id = ?',
      'db.response.returned_rows': 1,
      'db.namespace': 'shop',
    });
    expect(spans.find((s) => s.attributes['db.query.text'] === 'SELECT nope FROM shop.items')!.status.code).toBe('error');
  });
});

const redisMissing = missing('redis-server', 'redis-cli');
if (redisMissing) console.warn(`Redis tests skipped: ${redisMissing}`);

describe.skipIf(Boolean(redisMissing))(`Redis and redis-cli${redisMissing ? ` (skipped: ${redisMissing})` : ''}`, () => {
  let server: ChildProcess;
  let capture = '';

  beforeAll(async () => {
    const port = await freePort();
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await until('redis to listen', () => canConnect(port));
    const proxy = await recordingProxy(port, 4444, '/usr/bin/redis-cli');
    const cli = (...args: string[]) => run('redis-cli', ['-h', '127.0.0.1', '-p', String(proxy.port), ...args]);
    expect((await cli('SET', 'session:9', 'token-value')).stdout.trim()).toBe('OK');
    expect((await cli('GET', 'session:9')).stdout.trim()).toBe('token-value');
    expect((await cli('INCRBY', 'visits', '3')).stdout.trim()).toBe('3');
    await cli('LPUSH', 'session:9', 'x');
    // A pipeline: several commands in one write, in RESP as clients send them.
    const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
    const pipe = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(proxy.port), '--pipe'], { input: resp('SET', 'a', '1') + resp('SET', 'b', '2') + resp('MGET', 'a', 'b') });
    expect(pipe.status).toBe(0);
    capture = path.join(tempDir(), 'redis.loupe');
    await proxy.close(capture);
  }, 60_000);

  afterAll(() => {
    server?.kill();
  });

  it('parses every command and reply, without the values', () => {
    const ms = parseCapture(capture);
    const commands = ms.filter((m) => m.kind === 'request' && m.command !== 'COMMAND' && m.command !== 'ECHO').map((m) => m.query);
    expect(commands).toEqual(['SET session:9 ?', 'GET session:9', 'INCRBY visits ?', 'LPUSH session:9 ?', 'SET a ?', 'SET b ?', 'MGET a ?']);
    const wrongType = ms.find((m) => m.kind === 'response' && m.errorCode !== undefined);
    expect(wrongType?.errorCode).toBe('WRONGTYPE');
    expect(fs.readFileSync(capture).includes('token-value')).toBe(true); // the capture has the bytes (mode 0600) ...
    expect(JSON.stringify(ms)).not.toContain('token-value'); // ... the records do not
  });

  it('replays into redis client spans', () => {
    const spans = spansOf(capture);
    const lpush = spans.find((s) => s.attributes['db.operation.name'] === 'LPUSH')!;
    expect(lpush).toMatchObject({ name: 'LPUSH', kind: 'client', status: { code: 'error' } });
    expect(lpush.attributes).toMatchObject({ 'db.system.name': 'redis', 'db.query.text': 'LPUSH session:9 ?', 'db.response.status_code': 'WRONGTYPE' });
  });
});
