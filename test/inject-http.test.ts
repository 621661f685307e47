/**
 * traceparent injection into the HTTP/1 requests of programs that are not Go
 * (bpf/inject.bpf.c's plain_request), byte for byte. A server that keeps
 * every byte it receives (test/fixtures/raw-http-server.py, not watched) is
 * the oracle; a client process (test/fixtures/http-client-cases.py: CPython's
 * http.client, curl, raw sockets where the shape is the point) makes the same
 * requests twice, once unwatched and once watched by `loupe run --pid`. What
 * the server got the second time must be what it got the first time plus one
 * well-formed header line after each request line the kernel could touch, and
 * exactly the same bytes where it must not (own traceparent, AWS SigV4, a head
 * in many small writes, a request line longer than a write buffer). The ids on
 * the wire are the client spans' own.
 *
 * On kernels with the sockhash FIONREAD regression injection into other
 * programs is off unless asked (--inject-despite-fionread): these clients
 * never ask FIONREAD, so the test asks. Skipped with the reason where the
 * live agent or curl cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, tempDir, until, waitFor } from './helpers';
import { exited, runAgent, skipReason } from './live-agent';

const PYTHON = '/usr/bin/python3';
const SERVER = path.join(ROOT, 'test/fixtures/raw-http-server.py');
const CLIENT = path.join(ROOT, 'test/fixtures/http-client-cases.py');
const TRACEPARENT = /traceparent: 00-([0-9a-f]{32})-([0-9a-f]{16})-01\r\n/g;

/** Each case, with the headers the kernel puts on it: one per request whose head is whole in one write. */
const CASES: Array<[string, number]> = [
  ['keepalive', 2], // two requests, one connection: the second's offset leaves the first's header out
  ['post', 1],
  ['big-body', 1], // 200 KiB of body in the head's write
  ['chunked', 1], // head, then each chunk, in writes of their own
  ['pipelined', 1], // two requests in one write: the header goes on the first
  ['http10', 1],
  ['curl-get', 1],
  ['curl-http10', 1],
  ['curl-chunked', 1],
  ['small-writes', 0], // the head in four writes: not whole in the first
  ['own-traceparent', 0],
  ['sigv4', 0],
  ['long-line', 0], // a request line of 5000 bytes, past the 4 KiB the kernel reads
];
const INSERTED = CASES.reduce((n, [, k]) => n + k, 0);

describe.skipIf(Boolean(skipReason))(`traceparent injection into other programs' HTTP/1 requests${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const dir = tempDir();
  const log = path.join(dir, 'server.jsonl');
  const children: ChildProcess[] = [];
  let port = 0;

  /** What the server has logged: each connection's bytes, in the order connections ended. */
  const received = (): Buffer[] =>
    fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => Buffer.from((JSON.parse(l) as { bytes: string }).bytes, 'base64'))
      : [];

  async function startClient(): Promise<ChildProcess & { run: (name: string) => Promise<Buffer> }> {
    const child = spawn(PYTHON, [CLIENT, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c));
    await until(() => out.includes('ready\n'), 'the client to start');
    /** Run a case; its connection's bytes as the server got them (none for `hold`, which leaves it open). */
    const run = async (name: string) => {
      const before = received().length;
      const ends = name === 'hold' ? 0 : 1;
      child.stdin!.write(`${name}\n`);
      await until(() => out.includes(`done ${name}\n`) && received().length === before + ends, `case ${name} to finish`);
      out = out.replace(`done ${name}\n`, '');
      return received()[before] ?? Buffer.alloc(0);
    };
    return Object.assign(child, { run });
  }

  /** The bytes with each traceparent line right after a request line taken out (where the kernel puts one), and their ids. */
  function withoutInserted(bytes: Buffer): { rest: Buffer; ids: Array<[string, string]> } {
    const text = bytes.toString('latin1');
    const ids: Array<[string, string]> = [];
    const rest = text.replace(TRACEPARENT, (line, trace: string, span: string, at: number) => {
      const previous = text.lastIndexOf('\r\n', at - 3);
      const lineBefore = text.slice(previous < 0 ? 0 : previous + 2, at);
      if (!/^[A-Z]{3,8} \S+ HTTP\/1\.[01]\r\n$/.test(lineBefore)) return line; // a client's own, further down its head
      ids.push([trace, span]);
      return '';
    });
    return { rest: Buffer.from(rest, 'latin1'), ids };
  }

  const baseline = new Map<string, Buffer>();

  beforeAll(async () => {
    port = await freePort();
    const server = spawn(PYTHON, [SERVER, String(port), log], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await waitFor(server, 'stdout', /listening/);
    // The bytes each case sends with no agent: what the server must get again, plus the header lines.
    const plain = await startClient();
    for (const [name] of CASES) baseline.set(name, await plain.run(name));
    await plain.run('hold');
    baseline.set('held', await plain.run('release'));
    plain.kill();
  }, 120_000);

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  it(`adds exactly one traceparent line after each request line it may touch (${INSERTED} in ${CASES.length} connections), and not a byte more; the client spans carry the ids`, async () => {
    const client = await startClient();
    const agent = runAgent(['--pid', String(client.pid), '--inject-despite-fionread', '--no-tcp-options']);
    children.push(agent.child);
    await until(() => /context across hosts/.test(agent.stderr()), 'the agent to attach', 60_000);
    expect(agent.stderr()).toMatch(/header in other programs' HTTP\/1 calls: on \(/);
    const wire: Array<[string, string]> = [];
    for (const [name, headers] of CASES) {
      const got = await client.run(name);
      const before = baseline.get(name)!;
      const { rest, ids } = withoutInserted(got);
      expect(ids.length, `${name}: header lines`).toBe(headers);
      expect(rest.equals(before), `${name}: the bytes besides the header lines`).toBe(true);
      if (headers === 0) expect(got.equals(before), `${name}: untouched`).toBe(true);
      else expect(got.length).toBe(before.length + 70 * headers);
      wire.push(...ids);
    }
    // 15 requests: keep-alive and pipelining send two each.
    await until(() => agent.spans().filter((s) => s.kind === 'client').length === 15, 'the agent to report 15 client spans', 60_000);
    agent.child.kill('SIGINT');
    await exited(agent.child, 60_000);
    const spans = agent.spans().filter((s) => s.kind === 'client');
    const ids = new Set(spans.map((s) => `${s.traceId}-${s.spanId}`));
    for (const [trace, span] of wire) expect(ids.has(`${trace}-${span}`), `a client span ${trace}-${span}`).toBe(true);
    // The request with its own traceparent keeps it, and its span is in that trace.
    expect(spans.some((s) => s.traceId === '0af7651916cd43dd8448eb211c80319c')).toBe(true);
    expect(agent.stderr()).toContain(
      `traceparent put on ${INSERTED} requests; 1 left as they were for want of a place (no request line where expected, or a head not whole in one write), 2 because they carry a traceparent or a signature of their own`,
    );
  }, 300_000);

  it('changes no byte with --no-inject, nor with a service rule propagate: false, and says so at start', async () => {
    const config = path.join(dir, 'no-propagation.yaml');
    fs.writeFileSync(config, 'services:\n  - { exe: "/python3[.0-9]*$", name: cases, propagate: false }\n');
    for (const args of [['--no-inject'], ['--config', config]]) {
      const client = await startClient();
      const agent = runAgent(['--pid', String(client.pid), '--inject-despite-fionread', '--no-tcp-options', ...args]);
      children.push(agent.child);
      await until(() => /context across hosts/.test(agent.stderr()), 'the agent to attach', 60_000);
      if (args[0] === '--no-inject') expect(agent.stderr()).toMatch(/header in other programs' HTTP\/1 calls: off \(turned off by configuration\)/);
      for (const name of ['keepalive', 'post', 'curl-get']) expect((await client.run(name)).equals(baseline.get(name)!), `${args.join(' ')}: ${name}`).toBe(true);
      await until(() => agent.spans().filter((s) => s.kind === 'client').length === 4, 'the agent to see the 4 requests', 60_000);
      agent.child.kill('SIGINT');
      await exited(agent.child, 60_000);
      client.kill();
    }
  }, 300_000);

  it('puts no header in the request of a program --exe has not decided on yet, unless it runs a file --exe matches', async () => {
    const agent = runAgent(['--exe', '/curl$', '--inject-despite-fionread', '--no-tcp-options']);
    children.push(agent.child);
    await until(() => /context across hosts/.test(agent.stderr()), 'the agent to attach', 60_000);
    // curl's own bytes under another name: --exe does not match it, so until the agent says no, it is only pending.
    const renamed = path.join(dir, 'kurl');
    fs.copyFileSync(spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim(), renamed);
    fs.chmodSync(renamed, 0o755);
    const headersOf = async (program: string, item: string) => {
      const before = received().length;
      const call = spawnSync(program, ['-sS', '-o', '/dev/null', `http://127.0.0.1:${port}/${item}`], { encoding: 'utf8', timeout: 30_000 });
      expect(call.status, call.stderr).toBe(0);
      await until(() => received().length > before, `the server to log ${item}`);
      return withoutInserted(received()[before]!).ids.length;
    };
    // Stopped, the agent decides on nothing: both programs write their request while pending.
    agent.child.kill('SIGSTOP');
    let counts: number[];
    try {
      counts = [await headersOf(renamed, 'kiwi'), await headersOf('curl', 'lime')];
    } finally {
      agent.child.kill('SIGCONT');
    }
    expect(counts, "headers in the renamed program's request, then in curl's").toEqual([0, 1]);
    agent.child.kill('SIGINT');
    await exited(agent.child, 60_000);
  }, 300_000);

  it('leaves traffic flowing and unmodified after the agent is killed with SIGKILL, also on a connection that was in its sockhash', async () => {
    const client = await startClient();
    const agent = runAgent(['--pid', String(client.pid), '--inject-despite-fionread', '--no-tcp-options']);
    children.push(agent.child);
    await until(() => /context across hosts/.test(agent.stderr()), 'the agent to attach', 60_000);
    expect(withoutInserted(await client.run('post')).ids.length).toBe(1);
    await client.run('hold'); // its first request goes out with the header
    agent.child.kill('SIGKILL');
    await exited(agent.child, 60_000);
    // The held connection's second request, and every case after, as the client wrote them.
    const held = withoutInserted(await client.run('release'));
    expect(held.ids.length).toBe(1);
    expect(held.rest.equals(baseline.get('held')!)).toBe(true);
    for (const [name] of CASES) expect((await client.run(name)).equals(baseline.get(name)!), `${name} after SIGKILL`).toBe(true);
    client.kill();
  }, 300_000);
});
