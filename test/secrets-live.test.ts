/**
 * The secrets matrix, live: servers and clients nobody on the project wrote
 * (curl and Python's http.server, psql and PostgreSQL with password
 * authentication, redis-cli and redis-server with a password, grpc-js) send
 * twelve kinds of secret while the agent records with its defaults. None may
 * be in the capture's bytes or in any output made from it — the OTLP export
 * over the wire included; and recorded with --no-redact, the capture holds
 * them all, so the check can fail. (test/secrets.test.ts runs the outputs on
 * a capture that holds them, as a --no-redact recording would.)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { daemon, listening, stopDaemons } from './daemons';
import { DEFAULT_MAX_PAYLOAD } from '../src/discovery/config';
import { LiveSession } from '../src/pipeline/live';
import { liveSupport } from '../src/sources/live/system';
import { freePort, ROOT, spansRawAndMasked, tempDir } from './helpers';
import { httpReceiver } from './otlp-receiver';

afterAll(stopDaemons);

const CLI = path.join(ROOT, 'dist/cli/main.js');
const PG_BIN = '/usr/lib/postgresql/15/bin';
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
  authorization: 'bsecret9',
  jsonPassword: 'jsecret10',
  formPassword: 'fsecret11',
  grpcMessage: 'gsecret12',
};

const support = liveSupport();
const gone = ['curl', 'python3', 'psql', 'runuser', 'redis-server', 'redis-cli', `${PG_BIN}/initdb`].filter((b) => !fs.existsSync(b) && spawnSync('which', [b]).status !== 0);
const skip = !support.ok ? support.reason : gone.length ? `not installed: ${gone.join(', ')}` : '';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const GRPC = (port: number, name?: string) => `
  const grpc = require('@grpc/grpc-js');
  const def = require('@grpc/proto-loader').loadSync(${JSON.stringify(path.join(ROOT, 'test/fixtures/greeter.proto'))});
  const Greeter = grpc.loadPackageDefinition(def).demo.v1.Greeter;
  ${
    name === undefined
      ? `const s = new grpc.Server();
       s.addService(Greeter.service, { SayHello: (call, cb) => cb(null, { message: 'hello ' + call.request.name }) });
       s.bindAsync('127.0.0.1:${port}', grpc.ServerCredentials.createInsecure(), (e) => { if (e) { console.error(e); process.exit(1); } });`
      : `const c = new Greeter('127.0.0.1:${port}', grpc.credentials.createInsecure());
       c.SayHello({ name: ${JSON.stringify(name)} }, (e, r) => { if (e) { console.error(e); process.exit(1); } console.log(r.message); c.close(); });`
  }`;

describe.skipIf(Boolean(skip))(`secrets matrix, live${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('a recording with the defaults keeps none of 13 secrets in its bytes or in any output, the OTLP export included; with --no-redact it keeps them all', async () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o777);
    // Servers, on loopback.
    const [httpPort, pgPort, redisPort, grpcPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    fs.writeFileSync(path.join(dir, 'page.txt'), 'a page\n');
    const web = daemon('python3', ['-m', 'http.server', String(httpPort), '--bind', '127.0.0.1'], { cwd: dir });
    const pwfile = path.join(dir, 'pw');
    fs.writeFileSync(pwfile, SECRETS.pgPassword, { mode: 0o644 });
    // Password authentication: the client sends the password itself ('p' message), the case masking must cover.
    expect(
      spawnSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-A', 'password', `--pwfile=${pwfile}`, '--no-sync', '-U', 'postgres', '-D', path.join(dir, 'pg')]).status,
    ).toBe(0);
    const pg = daemon('runuser', ['-u', 'postgres', '--', `${PG_BIN}/postgres`, '-D', path.join(dir, 'pg'), '-k', dir, '-h', '127.0.0.1', '-p', String(pgPort), '-F']);
    const redis = daemon('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', SECRETS.redisAuth]);
    const grpcServer = daemon(process.execPath, ['-e', GRPC(grpcPort)], { cwd: ROOT });
    for (const [port, child] of [
      [httpPort, web],
      [pgPort, pg],
      [redisPort, redis],
      [grpcPort, grpcServer],
    ] as const)
      await listening(port, child);

    const traffic = async () => {
      const curl = (...args: string[]) => run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args]);
      // A file, not a directory listing (which would echo the query back in its HTML, as data).
      const get = await curl(
        `http://127.0.0.1:${httpPort}/page.txt?token=${SECRETS.query}`,
        '-H',
        `X-Access-Token: ${SECRETS.accessToken}`,
        '-H',
        `Referer: https://a/?k=${SECRETS.referer}`,
        '-H',
        `Cookie: id=${SECRETS.cookie}`,
        '-H',
        `Authorization: Bearer ${SECRETS.authorization}`,
        '-H',
        `X-Custom: ${SECRETS.customHeader}`,
      );
      expect(get.stdout).toBe('200');
      // http.server answers POST with 501: the request's bytes are what matters.
      expect((await curl(`http://127.0.0.1:${httpPort}/login`, '-H', 'Content-Type: application/json', '-d', `{"user":"ann","password":"${SECRETS.jsonPassword}"}`)).stdout).toBe(
        '501',
      );
      expect((await curl(`http://127.0.0.1:${httpPort}/form`, '-d', `user=ann&password=${SECRETS.formPassword}`)).stdout).toBe('501');
      // Literals in a statement whose rows do not echo them (rows are data, not masked).
      const psql = await run(
        'psql',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(pgPort),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-X',
          '-A',
          '-t',
          '-c',
          `SELECT count(*) FROM pg_class WHERE relname = '${SECRETS.sqlString}' OR relpages = ${SECRETS.sqlNumber}`,
        ],
        { ...process.env, PGPASSWORD: SECRETS.pgPassword, PGSSLMODE: 'disable' },
      );
      expect(psql.status, psql.stderr).toBe(0);
      expect(psql.stdout.trim()).toBe('0');
      const cli = await run('redis-cli', ['-p', String(redisPort), '--no-auth-warning', '-a', SECRETS.redisAuth, 'PING']);
      expect(cli.stdout.trim()).toBe('PONG');
      const call = await run(process.execPath, ['-e', GRPC(grpcPort, SECRETS.grpcMessage)], process.env, ROOT);
      expect(call.stdout.trim(), call.stderr).toBe(`hello ${SECRETS.grpcMessage}`);
    };

    const record = async (redact: boolean) => {
      const capture = path.join(dir, redact ? 'masked.loupe' : 'kept.loupe');
      let text = '';
      const session = new LiveSession({
        ports: [httpPort, pgPort, redisPort, grpcPort],
        maxPayload: DEFAULT_MAX_PAYLOAD,
        ringBytes: 16 << 20,
        tlsLibraries: [],
        redact,
        format: 'jsonl',
        goProbes: false,
        goInject: false,
        write: (t) => (text += t),
        capturePath: capture,
      });
      session.start();
      try {
        await traffic();
      } finally {
        await session.stop();
      }
      return { capture, text };
    };

    const found = (outputs: Record<string, string>) =>
      Object.entries(outputs).flatMap(([name, text]) => Object.entries(SECRETS).flatMap(([kind, secret]) => (text.includes(secret) ? [`${kind} in ${name}`] : [])));

    // The control: recorded with --no-redact, every secret is in the capture's bytes.
    const kept = await record(false);
    const keptBytes = fs.readFileSync(kept.capture).toString('latin1');
    expect(
      Object.entries(SECRETS)
        .filter(([, s]) => !keptBytes.includes(s))
        .map(([k]) => k),
    ).toEqual([]);
    // A live run that records nothing does not mask payloads (span attributes are masked on their own):
    // the spans of these bytes and of the same bytes masked as a recording masks them are the same.
    const invariance = spansRawAndMasked(kept.capture);
    expect(invariance.bytesChanged).toBeGreaterThan(Object.values(SECRETS).join('').length);
    expect(invariance.raw.trim().split('\n').length).toBeGreaterThanOrEqual(5);
    expect(invariance.masked).toBe(invariance.raw);

    const masked = await record(true);
    const outputs: Record<string, string> = { capture: fs.readFileSync(masked.capture).toString('latin1'), 'live jsonl': masked.text };
    for (const [name, args] of [
      ['capture as jsonl', ['convert', masked.capture, path.join(dir, 'masked.jsonl'), '--to', 'jsonl']],
      ['replay tree', ['replay', masked.capture, '--format', 'tree']],
      ['replay jsonl', ['replay', masked.capture, '--format', 'jsonl']],
      ['replay otlp-json', ['replay', masked.capture, '--format', 'otlp-json']],
      ['parse jsonl', ['parse', masked.capture, '--format', 'jsonl']],
      ['parse table', ['parse', masked.capture, '--format', 'table']],
      ['view', ['view', masked.capture]],
      ['diff', ['diff', masked.capture, kept.capture]],
      ['report', ['report', masked.capture, '-o', path.join(dir, 'report.html')]],
    ] as const) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      outputs[name] = r.stdout + r.stderr;
    }
    outputs['capture as jsonl'] += fs.readFileSync(path.join(dir, 'masked.jsonl'), 'utf8');
    outputs.report += fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    const rx = await httpReceiver();
    try {
      // Not spawnSync: the receiver answers from this process's event loop.
      const r = await run('node', [CLI, 'replay', masked.capture, '--format', 'jsonl', '--quiet', '--otlp'], { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: rx.url });
      expect(r.status, r.stderr).toBe(0);
      outputs['OTLP export'] = JSON.stringify(rx.received);
    } finally {
      await rx.close();
    }
    expect(outputs['OTLP export']).toContain('demo.v1.Greeter');
    expect(found(outputs)).toEqual([]);
    // And what happened is still said: every exchange is a span.
    const spans = masked.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; kind: string });
    const names = new Set(spans.map((s) => s.name));
    for (const n of ['GET', 'POST', 'SELECT', 'PING', 'demo.v1.Greeter/SayHello'])
      expect(
        [...names].some((x) => x.startsWith(n)),
        `${n} in ${[...names].join(', ')}`,
      ).toBe(true);
  }, 180_000);
});
