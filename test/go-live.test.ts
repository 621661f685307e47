/**
 * Traceparent injection on the wire: a real Go client (Debian's Go, probed
 * live) calls a Node server that prints the raw headers it received. What
 * the server read is checked against the spans the agent made — the header
 * the kernel put in names the client span — and against the switch: with
 * injection off, or when the program sets its own traceparent, no header is
 * added. Skipped with the reason where the live agent or Go cannot run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { liveSupport, loadAddon } from '../src/sources/live/system';
import { sockhashSafety } from '../src/sources/live/live-source';
import { goSession, heldGoLinks, lines, probeWhenGo, throughAgent, traceparentsOf } from './go-agent';
import { openCapture } from '../src/sources/capture-file';
import { decodeRecord } from '../src/events/codec';
import { freePort, ROOT, tempDir, type SpanLine } from './helpers';

const support = liveSupport();
const go = spawnSync('go', ['version']).status === 0;
const skipReason = !support.ok ? support.reason : !go ? 'go is not installed' : '';
if (skipReason) console.warn(`Go injection tests skipped: ${skipReason}`);
/** What this kernel does to a socket in a sockhash (the agent checks the same at start-up). */
const sockhash = skipReason ? undefined : sockhashSafety(loadAddon().sockhashCheck());
/** The propagation a session with injection on starts with here. */
const injectionOn = {
  ...(sockhash?.verdict === 'safe'
    ? { inject: true, reason: '' }
    : { inject: true, pureGoOnly: true, reason: expect.stringMatching(/^only into Go programs that call no C code of their own, because this kernel misreports FIONREAD/) }),
  // These sessions ask for Go's injection only (no httpInject).
  http: { on: false, reason: 'turned off by configuration' },
  tcpOptions: { on: true, reason: '' },
};

/** A Go HTTPS client (crypto/tls) through an agent session, against a Node HTTPS server with a self-signed certificate. */
async function httpsThroughAgent() {
  const dir = tempDir();
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const port = await freePort();
  const server = spawn(
    'node',
    [
      '-e',
      `require('https').createServer({ key: require('fs').readFileSync(${JSON.stringify(key)}), cert: require('fs').readFileSync(${JSON.stringify(cert)}) }, (q, s) => s.end('secret body')).listen(${port}, '127.0.0.1', () => console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  expect(await lines(server)()).toBe('ready');
  const client = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['get'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GOFACTORIAL_INSECURE: '1' } });
  const clientLine = lines(client);
  let spans = '';
  const session = goSession([port], (t) => (spans += t), true);
  session.start();
  try {
    await probeWhenGo(session, client.pid!);
    client.stdin!.write(`https://127.0.0.1:${port}/secure?token=abc\n`);
    expect(await clientLine()).toBe('200 OK');
  } finally {
    client.stdin!.end();
    await session.stop();
    server.kill();
  }
  return {
    spans: spans
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpanLine),
    clientPid: client.pid!,
  };
}

describe.skipIf(Boolean(skipReason))(`traceparent injection into a Go program's requests${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const OWN = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
  /** A request line of about 3 KiB: longer than a short scan would look, within net/http's 4 KiB write buffer. */
  const LONG = `/long/${'x'.repeat(3000)}`;
  // A request signed over its headers: one more header would be one the signature does not cover.
  const SIGV4 = {
    'X-Amz-Date': '20261207T081500Z',
    'X-Amz-Content-Sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    Authorization:
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
  };
  /**
   * Three headers of 1500 bytes: a head of about 4.6 KiB, which net/http writes in two pieces (its write
   * buffer is 4 KiB), in a header map small enough to be searched (so the kernel prepares a header for it).
   */
  const BIG_HEAD = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`X-Big-${i}`, 'v'.repeat(1500)]));
  const RFC9421 = { 'Signature-Input': 'sig1=("@method" "@authority" "@path");created=1765095300;keyid="test-key"', Signature: 'sig1=:d2hhdCBhIHNpZ25hdHVyZQ==:' };
  let on: Awaited<ReturnType<typeof throughAgent>>;
  let off: Awaited<ReturnType<typeof throughAgent>>;
  let pooled: Awaited<ReturnType<typeof throughAgent>>;
  let pie: Awaited<ReturnType<typeof throughAgent>>;
  let pullFails: Awaited<ReturnType<typeof throughAgent>>;

  beforeAll(async () => {
    // 26 more headers: the 27th key makes Go's map grow from 4 buckets to 8, and with no write
    // after it the old buckets are left half moved, where the header search does not look.
    on = await throughAgent(true, [
      ['/plain'],
      ['/own', OWN],
      [LONG],
      ...Array.from({ length: 8 }, (_, i): [string, string, number] => [`/grown/${i}`, OWN, 26]),
      ['POST /posted'],
      ['PUT /put'],
      ['DELETE /deleted'],
      ['/signed-sigv4', undefined, 0, SIGV4],
      ['/signed-rfc9421', undefined, 0, RFC9421],
      ['/amzn-trace', undefined, 0, { 'X-Amzn-Trace-Id': 'Root=1-67891233-abcdef012345678912345678' }],
      ['/big-head', undefined, 0, BIG_HEAD],
    ]);
    off = await throughAgent(false, [['/plain']]);
    pooled = await throughAgent(true, [['/later']], ['/earlier']);
    pie = await throughAgent(true, [['/pie']], [], 'pie');
    pullFails = await throughAgent(true, [['/plain'], [LONG]], [], 'exe', { injectObject: path.join(ROOT, 'build/bpf/inject-pull-fails.bpf.o') });
  }, 300_000);

  it('sends the request exactly as written when the header cannot be written into the room made for it', () => {
    // inject-pull-fails.bpf.o: bpf_msg_pull_data "fails" after bpf_msg_push_data made room for the header.
    expect(pullFails.received.map((r) => r.url)).toEqual(['/plain', LONG]);
    for (const r of pullFails.received) {
      expect(traceparentsOf(r.raw)).toEqual([]);
      // The header lines the program wrote, no more (bytes nobody wrote would have made the server answer 400, not log).
      expect(r.raw.filter((_, i) => i % 2 === 0)).toEqual(off.received[0]!.raw.filter((_, i) => i % 2 === 0));
    }
    expect(pullFails.injected).toEqual({ inserted: 0n, refused: 2n, kept: 0n });
  });

  it("checks a sockhash's reader at start-up: woken, reading every byte, and FIONREAD either right or the known regression", () => {
    const check = loadAddon().sockhashCheck();
    expect(check).toMatchObject({ readable: true, received: 100, expected: 100 });
    expect([0, 100]).toContain(check.fionread);
    // Kernels with commit 929e30f93125: 6.6.128+, 6.12.75+, 6.18.14+, 6.19+ (and backports).
    const [major, minor, patch] = (/^(\d+)\.(\d+)\.(\d+)/.exec(fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8')) ?? []).slice(1).map(Number);
    const listed = (major === 6 && ((minor === 6 && patch! >= 128) || (minor === 12 && patch! >= 75) || (minor === 18 && patch! >= 14) || minor! >= 19)) || major! > 6;
    if (listed) expect(check.fionread).toBe(0);
  });

  it('puts no header on a Go program that calls C code of its own where the kernel breaks FIONREAD, unless told to', async () => {
    const dir = tempDir();
    // Its C call is getpid, harmless; what counts is that C code runs in it and could read its sockets.
    fs.writeFileSync(
      path.join(dir, 'main.go'),
      [
        'package main',
        '',
        '// #include <unistd.h>',
        'import "C"',
        '',
        'import (',
        '\t"bufio"',
        '\t"fmt"',
        '\t"io"',
        '\t"net/http"',
        '\t"os"',
        ')',
        '',
        'func main() {',
        '\t_ = C.getpid()',
        '\tin := bufio.NewScanner(os.Stdin)',
        '\tfor in.Scan() {',
        '\t\tr, err := http.Get(in.Text())',
        '\t\tif err != nil {',
        '\t\t\tfmt.Println(err)',
        '\t\t\tcontinue',
        '\t\t}',
        '\t\tio.Copy(io.Discard, r.Body)',
        '\t\tr.Body.Close()',
        '\t\tfmt.Println(r.Status)',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
    const goCmd = fs.existsSync('/usr/lib/go-1.19/bin/go') ? '/usr/lib/go-1.19/bin/go' : 'go';
    const bin = path.join(dir, 'ccall');
    execFileSync(goCmd, ['build', '-o', bin, 'main.go'], { cwd: dir, env: { ...process.env, CGO_ENABLED: '1', GO111MODULE: 'off' } });
    const port = await freePort();
    const server = spawn(
      'node',
      ['-e', `require('http').createServer((q, s) => { console.log(JSON.stringify(q.rawHeaders)); s.end('ok'); }).listen(${port}, '127.0.0.1', () => console.log('ready'))`],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const serverLine = lines(server);
    try {
      expect(await serverLine()).toBe('ready');
      const headersWith = async (despite: boolean) => {
        const client = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
        const clientLine = lines(client);
        const session = goSession([port], () => {}, true, { goInjectDespiteFionread: despite });
        session.start();
        try {
          const probed = await probeWhenGo(session, client.pid!);
          client.stdin!.write(`http://127.0.0.1:${port}/ccall\n`);
          expect(await clientLine()).toBe('200 OK');
          return { probed, headers: JSON.parse(await serverLine()) as string[] };
        } finally {
          client.stdin!.end();
          await session.stop();
        }
      };
      const plain = await headersWith(false);
      if (sockhash?.verdict === 'fionread') {
        expect(plain.probed).toMatchObject({
          injects: false,
          skipped: expect.stringContaining('traceparent injection off for it: main calls C code, which may read its sockets by FIONREAD'),
        });
        expect(traceparentsOf(plain.headers)).toEqual([]);
      } else {
        expect(plain.probed).toMatchObject({ injects: true });
        expect(traceparentsOf(plain.headers)).toHaveLength(1);
      }
      const despite = await headersWith(true);
      expect(despite.probed).toMatchObject({ injects: true });
      expect(traceparentsOf(despite.headers)).toHaveLength(1);
    } finally {
      server.kill();
    }
  }, 180_000);

  it('puts one traceparent on a request that had none, naming the client span the agent reports', () => {
    expect(on.started.propagation).toEqual(injectionOn);
    const [plain] = on.received;
    expect(plain!.url).toBe('/plain');
    const headers = traceparentsOf(plain!.raw);
    expect(headers).toHaveLength(1);
    const [, traceId, spanId] = headers[0]!.split('-');
    const call = on.spans.find((s) => s.kind === 'client' && s.pid === on.clientPid && String(s.attributes['url.full']).endsWith('/plain'))!;
    expect(call).toBeDefined();
    expect({ traceId: call.traceId, spanId: call.spanId }).toEqual({ traceId, spanId });
    const served = on.spans.find((s) => s.kind === 'server' && s.pid === on.serverPid && s.attributes['url.path'] === '/plain')!;
    expect(served.parentSpanId).toBe(call.spanId);
    expect(served.attributes['loupe.context']).toBe('traceparent');
    expect(on.injected.inserted).toBeGreaterThanOrEqual(1n);
  });

  it('puts one traceparent on requests with a body (POST, PUT) and other methods, each naming its client span', () => {
    // net/http copies a request with a body before writing it: keyed by the *Request, these never got one.
    for (const [method, url] of [
      ['POST', '/posted'],
      ['PUT', '/put'],
      ['DELETE', '/deleted'],
    ]) {
      const r = on.received.find((x) => x.url === url)!;
      expect(r.method).toBe(method);
      expect(r.body).toBe(4); // gofactorial sends a body with every method but GET
      const headers = traceparentsOf(r.raw);
      expect(headers, method).toHaveLength(1);
      const [, traceId, spanId] = headers[0]!.split('-');
      const call = on.spans.find((s) => s.kind === 'client' && s.pid === on.clientPid && String(s.attributes['url.full']).endsWith(url!))!;
      expect({ traceId: call.traceId, spanId: call.spanId, method: call.attributes['http.request.method'] }).toEqual({ traceId, spanId, method });
      const served = on.spans.find((s) => s.kind === 'server' && s.pid === on.serverPid && s.attributes['url.path'] === url)!;
      expect(served.parentSpanId).toBe(call.spanId);
    }
  });

  it('puts traceparent on a request whose request line is 3 KiB long', () => {
    const long = on.received[2]!;
    expect(long.url).toBe(LONG);
    const headers = traceparentsOf(long.raw);
    expect(headers).toHaveLength(1);
    const served = on.spans.find((s) => s.kind === 'server' && s.pid === on.serverPid && String(s.attributes['url.path']).startsWith('/long/'))!;
    expect(served.attributes['loupe.context']).toBe('traceparent');
    expect(`00-${served.traceId}-${served.parentSpanId}-01`).toBe(headers[0]);
  });

  it('adds nothing to a request that signs its headers (AWS SigV4, RFC 9421), and adds it where a header only looks alike', () => {
    for (const [url, sent] of [
      ['/signed-sigv4', SIGV4],
      ['/signed-rfc9421', RFC9421],
    ] as const) {
      const r = on.received.find((x) => x.url === url)!;
      expect(traceparentsOf(r.raw), url).toEqual([]);
      // Exactly the headers the program set, as it set them.
      for (const [name, value] of Object.entries(sent)) expect(r.raw[r.raw.indexOf(name) + 1], `${url} ${name}`).toBe(value);
    }
    // X-Amzn-Trace-Id is AWS's trace header, not a signature: the request gets its traceparent.
    expect(traceparentsOf(on.received.find((x) => x.url === '/amzn-trace')!.raw)).toHaveLength(1);
  });

  it('adds nothing to a request whose head the program writes in two pieces, and every header it wrote arrives as written', () => {
    const r = on.received.find((x) => x.url === '/big-head')!;
    expect(traceparentsOf(r.raw)).toEqual([]);
    for (const [name, value] of Object.entries(BIG_HEAD)) expect(r.raw[r.raw.indexOf(name) + 1], name).toBe(value);
    expect(on.injected.refused).toBe(1n);
  });

  it('adds nothing to a request that carries its own traceparent, also when its header map is not searchable', () => {
    const own = on.received[1]!;
    expect(own.url).toBe('/own');
    expect(traceparentsOf(own.raw)).toEqual([OWN]);
    const grown = on.received.filter((r) => r.url.startsWith('/grown/'));
    expect(grown).toHaveLength(8);
    for (const r of grown) {
      expect(r.raw.filter((v, i) => i % 2 === 0 && v.startsWith('X-Extra-'))).toHaveLength(26);
      expect(traceparentsOf(r.raw), r.url).toEqual([OWN]);
    }
    const call = on.spans.find((s) => s.kind === 'client' && String(s.attributes['url.full']).endsWith('/own'))!;
    expect(call.traceId).toBe(OWN.split('-')[1]);
  });

  it('puts traceparent on a keep-alive connection the program opened before the agent started', () => {
    const [earlier, later] = pooled.received;
    expect(later!.peer).toBe(earlier!.peer); // the same connection, reused
    expect(traceparentsOf(earlier!.raw)).toEqual([]);
    expect(pooled.go).toMatchObject({ adoptedSockets: 1 });
    const [header] = traceparentsOf(later!.raw);
    const call = pooled.spans.find((s) => s.kind === 'client' && String(s.attributes['url.full']).endsWith('/later'))!;
    expect(header).toBe(`00-${call.traceId}-${call.spanId}-01`);
  });

  it('replays each recording into the very spans the live run printed', () => {
    for (const run of [on, off, pooled]) {
      expect(run.liveText.length).toBeGreaterThan(0);
      expect(run.replayText).toBe(run.liveText);
    }
  });

  it("finds a position-independent program's connection too (its itab at the load address), and puts the header on", () => {
    const call = pie.spans.find((s) => s.kind === 'client' && s.pid === pie.clientPid)!;
    expect(traceparentsOf(pie.received[0]!.raw)).toEqual([`00-${call.traceId}-${call.spanId}-01`]);
  });

  it("detaches a Go program's probes when it exits", () => {
    expect(on.linksWhileRunning).toBeGreaterThan(10);
    expect(on.linksAfterExit).toBe(0);
  });

  it('leaves every byte as the program wrote it when injection is off', () => {
    expect(off.started.propagation.inject).toBe(false);
    expect(off.started.propagation.reason).toMatch(/turned off by configuration/);
    expect(traceparentsOf(off.received[0]!.raw)).toEqual([]);
    const served = off.spans.find((s) => s.kind === 'server' && s.pid === off.serverPid)!;
    const call = off.spans.find((s) => s.kind === 'client' && s.pid === off.clientPid)!;
    // One kernel sees both ends: the connection pair still joins them.
    expect(served.attributes['loupe.context']).toBe('connection-pair');
    expect(served.parentSpanId).toBe(call.spanId);
  });

  it("reads a Go program's HTTPS in plaintext from crypto/tls, not its ciphertext", async () => {
    const { spans, clientPid } = await httpsThroughAgent();
    const call = spans.find((s) => s.kind === 'client' && s.pid === clientPid);
    expect(call, JSON.stringify(spans)).toBeDefined();
    expect(call!.attributes).toMatchObject({ 'url.full': expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/secure\?token=REDACTED$/), 'http.response.status_code': 200 });
  }, 120_000);

  it('stamps Go crypto/tls plaintext by its socket I/O: 30 HTTPS calls between two Go programs are 30 client spans, each over its server span and containing it', async () => {
    const dir = tempDir();
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const port = await freePort();
    const script = path.join(ROOT, 'scenarios/services/gofactorial.sh');
    const server = spawn(script, ['worker', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, GOFACTORIAL_TLS_CERT: cert, GOFACTORIAL_TLS_KEY: key },
    });
    const client = spawn(script, ['get'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GOFACTORIAL_INSECURE: '1' } });
    const clientLine = lines(client);
    let text = '';
    const capture = path.join(dir, 'tls.loupe');
    const session = goSession([port], (t) => (text += t), false, { capturePath: capture });
    const N = 30;
    try {
      expect(await lines(server)()).toBe('ready');
      session.start();
      expect(await probeWhenGo(session, server.pid!)).toBeDefined();
      expect(await probeWhenGo(session, client.pid!)).toBeDefined();
      for (let i = 0; i < N; i++) {
        client.stdin!.write(`https://127.0.0.1:${port}/multiply?from=1&to=${i + 2}\n`);
        expect(await clientLine()).toBe('200 OK');
      }
    } finally {
      client.stdin!.end();
      await session.stop();
      server.kill();
    }
    const spans = text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpanLine);
    const calls = spans.filter((s) => s.kind === 'client' && s.pid === client.pid);
    const served = spans.filter((s) => s.kind === 'server' && s.pid === server.pid);
    expect(calls).toHaveLength(N);
    expect(served).toHaveLength(N);
    const byId = new Map(calls.map((c) => [c.spanId, c]));
    for (const s of served) {
      const call = byId.get(s.parentSpanId);
      expect(call, `server span ${s.spanId} not under a client span`).toBeDefined();
      expect(call!.traceId).toBe(s.traceId);
      // The client's write is stamped at its start, the server's read when its ciphertext came in: never the other way round.
      expect(BigInt(s.startTimeUnixNano) >= BigInt(call!.startTimeUnixNano), `server started before its client: ${s.startTimeUnixNano} < ${call!.startTimeUnixNano}`).toBe(true);
      expect(BigInt(s.endTimeUnixNano) <= BigInt(call!.endTimeUnixNano), `server ended after its client: ${s.endTimeUnixNano} > ${call!.endTimeUnixNano}`).toBe(true);
    }
    const replayed = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    expect(replayed.stdout).toBe(text);
    // The records themselves (spans are kept within their client's whatever the stamps): the i-th request is
    // written before the server reads it, and the i-th response written before the client reads it.
    /** When each message that starts with `start` began to move in that direction: the stamp of the record holding its first byte. */
    const firsts = (pid: number, direction: string, start: string) => {
      const pieces: Array<{ at: number; ts: bigint }> = [];
      let stream = '';
      for (const batch of openCapture(capture).batches()) {
        for (const raw of batch) {
          const ev = decodeRecord(raw.bytes);
          if (ev.type !== 'data' || ev.pid !== pid || ev.direction !== direction || (ev.flags & 2) === 0) continue;
          pieces.push({ at: stream.length, ts: ev.ts });
          stream += Buffer.from(ev.data).toString('latin1');
        }
      }
      const out: bigint[] = [];
      let piece = 0;
      for (let k = stream.indexOf(start); k >= 0; k = stream.indexOf(start, k + 1)) {
        while (piece + 1 < pieces.length && pieces[piece + 1]!.at <= k) piece++;
        out.push(pieces[piece]!.ts);
      }
      return out;
    };
    const [written, read] = [firsts(client.pid!, 'egress', 'GET '), firsts(server.pid!, 'ingress', 'GET ')];
    const [answered, received] = [firsts(server.pid!, 'egress', 'HTTP/1.1 '), firsts(client.pid!, 'ingress', 'HTTP/1.1 ')];
    expect([written, read, answered, received].map((l) => l.length)).toEqual([N, N, N, N]);
    const late = (a: bigint[], b: bigint[]) => a.flatMap((t, i) => (t > b[i]! ? [`#${i}: ${t - b[i]!} ns`] : []));
    expect(late(written, read), 'a request read before it was written').toEqual([]);
    expect(late(answered, received), 'a response read before it was written').toEqual([]);
  }, 180_000);

  it('says at start what it probes and which propagation is on (loupe run)', async () => {
    const port = await freePort();
    const worker = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['worker', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      expect(await lines(worker)()).toBe('ready');
      const r = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'run', '--port', String(port), '--duration', '2'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Go probes: on; connection-pair matching: on; through NAT by connection tracking: on\n/);
      expect(r.stderr).toMatch(
        new RegExp(
          "context across hosts: header in Go programs' HTTP/1 calls: on, said when a Go program is watched; " +
            `header in other programs' HTTP/1 calls: ${sockhash?.verdict === 'safe' ? 'on \\(' : 'off \\(this kernel misreports FIONREAD'}.*; ` +
            "TCP header options: on \\(any TCP protocol; read where Loupe runs on the server's host\\)",
        ),
      );
      expect(r.stderr).toMatch(
        sockhash?.verdict === 'safe'
          ? /traceparent injection into Go programs' HTTP\/1 requests: on \(sk_msg \+ sock_ops\)/
          : /traceparent injection into Go programs' HTTP\/1 requests: on \(sk_msg \+ sock_ops; only into Go programs that call no C code of their own, because this kernel misreports FIONREAD for sockets in a sockhash \(0 of 100 bytes, checked at start-up; kernel commit 929e30f93125\)/,
      );
      expect(r.stderr).toMatch(
        new RegExp(
          `Go probes in place on \\S+/gofactorial \\(pid ${worker.pid}, go1\\.\\d+[.\\d]*\\): goroutines, http\\.serverHandler\\.ServeHTTP, .*\\d+ uprobes, struct offsets from dwarf`,
        ),
      );
      const off = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'run', '--port', String(port), '--duration', '1', '--no-inject'], { encoding: 'utf8' });
      expect(off.stderr).toMatch(/traceparent injection into Go programs' HTTP\/1 requests: off \(turned off by configuration\)/);
      expect(off.stderr).toMatch(/context across hosts: header in Go programs' HTTP\/1 calls: off \(turned off by configuration\)/);
      // No Go program on the port watched: injection is not spoken of, at the start or the end.
      const none = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'run', '--port', String(await freePort()), '--duration', '1'], { encoding: 'utf8' });
      expect(none.status, none.stderr).toBe(0);
      expect(none.stderr).toMatch(/Go probes: on; connection-pair matching: on/);
      expect(none.stderr).not.toMatch(/traceparent/);
    } finally {
      worker.kill();
    }
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('curl', ['--version']).status !== 0)(
  `the sampled flag through a Go service${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('passes on the trace-flags of the traceparent it was called with, and says sampled in a trace it begins', async () => {
      const backendPort = await freePort();
      const backend = spawn(
        'node',
        [
          '-e',
          `require('http').createServer((q, s) => { console.log(JSON.stringify({ url: q.url, raw: q.rawHeaders })); s.end('6'); }).listen(${backendPort}, '127.0.0.1', () => console.log('ready'))`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const backendLine = lines(backend);
      expect(await backendLine()).toBe('ready');
      const frontPort = await freePort();
      const front = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['frontend', `127.0.0.1:${frontPort}`, `http://127.0.0.1:${backendPort}`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      expect(await lines(front)()).toBe('ready');
      const session = goSession([frontPort, backendPort], () => {}, true);
      session.start();
      const trace = 'ab'.repeat(16);
      const received: Array<{ url: string; raw: string[] }> = [];
      try {
        await probeWhenGo(session, front.pid!);
        for (const [n, header] of [
          [3, `00-${trace}-${'cd'.repeat(8)}-00`],
          [4, `00-${trace}-${'cd'.repeat(8)}-01`],
          [5, undefined],
        ] as const) {
          const r = spawnSync('curl', ['-sS', ...(header ? ['-H', `traceparent: ${header}`] : []), `http://127.0.0.1:${frontPort}/factorial/${n}`], { encoding: 'utf8' });
          expect(r.status, r.stderr).toBe(0);
          received.push(JSON.parse(await backendLine()));
        }
      } finally {
        await session.stop();
        front.kill();
        backend.kill();
      }
      expect(received.map((r) => r.url)).toEqual(['/compute?n=3', '/compute?n=4', '/compute?n=5']);
      const [unsampled, sampled, begun] = received.map((r) => traceparentsOf(r.raw));
      expect(unsampled).toEqual([expect.stringMatching(new RegExp(`^00-${trace}-[0-9a-f]{16}-00$`))]);
      expect(sampled).toEqual([expect.stringMatching(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`))]);
      expect(begun).toEqual([expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)]);
      expect(begun![0]).not.toContain(trace);
    }, 120_000);
  },
);

describe.skipIf(Boolean(skipReason) || spawnSync('curl', ['--version']).status !== 0)(
  `--port leaves programs it does not watch alone${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('probes no Go program that has no connection on the port, and its requests reach their server byte for byte', async () => {
      const elsewhere = await freePort();
      // A raw TCP server: logs the exact bytes of each request head, answers and closes (each request a new connection).
      const raw = spawn(
        'node',
        [
          '-e',
          `require('net').createServer((c) => { let b = Buffer.alloc(0); c.on('data', (d) => { b = Buffer.concat([b, d]); if (b.includes('\\r\\n\\r\\n')) { console.log(JSON.stringify(b.toString('latin1'))); c.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok'); } }); }).listen(${elsewhere}, '127.0.0.1', () => console.log('"ready"'))`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const rawLine = lines(raw);
      expect(await rawLine()).toBe('"ready"');
      const watchedPort = await freePort();
      const watchedServer = spawn('node', ['-e', `require('http').createServer((q, s) => s.end('ok')).listen(${watchedPort}, '127.0.0.1', () => console.log('ready'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      expect(await lines(watchedServer)()).toBe('ready');
      const goClient = () => {
        const child = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['get'], { stdio: ['pipe', 'pipe', 'inherit'] });
        const next = lines(child);
        return {
          child,
          fetch: async (p: string) => {
            child.stdin!.write(`http://127.0.0.1:${elsewhere}${p}\n`);
            expect(await next()).toBe('200 OK');
            return JSON.parse(await rawLine()) as string;
          },
        };
      };
      const before = goClient(); // running when the agent starts
      const baseline = await before.fetch('/path-a');
      let spans = '';
      const session = goSession([watchedPort], (t) => (spans += t), true);
      const started = session.start();
      let after: ReturnType<typeof goClient> | undefined;
      const seen: string[] = [];
      try {
        expect(started.propagation.inject).toBe(true);
        await session.goSettled();
        after = goClient(); // exec'd while the agent runs
        seen.push(await before.fetch('/path-b'), await after.fetch('/path-c'));
        // Records come in order: once a request on the watched port made after these is a span, the agent has seen their execs too.
        const marker = spawnSync('curl', ['-sS', `http://127.0.0.1:${watchedPort}/marker`], { encoding: 'utf8' });
        expect(marker.status, marker.stderr).toBe(0);
        for (let i = 0; i < 600 && !spans.includes('/marker'); i++) await new Promise((r) => setTimeout(r, 50));
        expect(spans).toContain('/marker');
        await session.goSettled();
        expect(session.goPrograms.filter((g) => g.pid === before.child.pid || g.pid === after!.child.pid)).toEqual([]);
        expect(heldGoLinks()).toBe(0);
      } finally {
        before.child.stdin!.end();
        after?.child.stdin!.end();
        await session.stop();
        raw.kill();
        watchedServer.kill();
      }
      expect(baseline).toMatch(/^GET \/path-a HTTP\/1\.1\r\n/);
      expect(seen).toEqual([baseline.replace('/path-a', '/path-b'), baseline.replace('/path-a', '/path-c')]);
      expect(session.injected.inserted).toBe(0n);
    }, 120_000);
  },
);

describe.skipIf(Boolean(skipReason))(`an agent killed with SIGKILL${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('leaves a Go program it was injecting into sending its requests byte for byte as before the agent', async () => {
    const port = await freePort();
    // A raw TCP server: logs the exact bytes of each request head, answers and closes (each request a new connection).
    const raw = spawn(
      'node',
      [
        '-e',
        `require('net').createServer((c) => { let b = Buffer.alloc(0); c.on('data', (d) => { b = Buffer.concat([b, d]); if (b.includes('\\r\\n\\r\\n')) { console.log(JSON.stringify(b.toString('latin1'))); c.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok'); } }); }).listen(${port}, '127.0.0.1', () => console.log('"ready"'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const rawLine = lines(raw);
    expect(await rawLine()).toBe('"ready"');
    const client = spawn(path.join(ROOT, 'scenarios/services/gofactorial.sh'), ['get'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const clientLine = lines(client);
    const fetch = async (p: string) => {
      client.stdin!.write(`http://127.0.0.1:${port}${p}\n`);
      expect(await clientLine()).toBe('200 OK');
      return JSON.parse(await rawLine()) as string;
    };
    const agent = spawn('node', [path.join(ROOT, 'dist/cli/main.js'), 'run', '--port', String(port), '--format', 'jsonl'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    agent.stderr!.on('data', (c) => (stderr += c));
    try {
      const baseline = await fetch('/before');
      expect(baseline).not.toMatch(/traceparent/i);
      for (let i = 0; i < 600 && !/attached \d+ programs/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
      // The client is probed at its first record on the port: from then on its requests carry the header.
      let injected = '';
      for (let i = 0; i < 100 && !injected; i++) {
        const got = await fetch(`/during-${i}`);
        if (/\r\ntraceparent: /i.test(got)) injected = got;
        else await new Promise((r) => setTimeout(r, 100));
      }
      expect(injected, stderr).toMatch(/\r\ntraceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\r\n/i);
      const held = new Set<string>();
      for (const fd of fs.readdirSync(`/proc/${agent.pid}/fdinfo`)) {
        try {
          const id = /^prog_id:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${agent.pid}/fdinfo/${fd}`, 'utf8'))?.[1];
          if (id) held.add(id);
        } catch {
          // closed meanwhile
        }
      }
      expect(held.size).toBeGreaterThan(10);
      agent.kill('SIGKILL');
      await new Promise((r) => (agent.exitCode !== null || agent.signalCode !== null ? r(null) : agent.once('exit', r)));
      // Its programs go as the kernel frees the dead process's fds (each link's release waits out an RCU grace period).
      const loaded = () => new Set((JSON.parse(spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }).stdout) as Array<{ id: number }>).map((p) => String(p.id)));
      let left = [...held].filter((id) => loaded().has(id));
      for (let i = 0; i < 300 && left.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = [...held].filter((id) => loaded().has(id));
      }
      expect(left).toEqual([]);
      // The same Go process, probed and injected into until the kill: its requests are as they were before the agent.
      expect(await fetch('/after')).toBe(baseline.replace('/before', '/after'));
      expect(await fetch('/after-again')).toBe(baseline.replace('/before', '/after-again'));
    } finally {
      if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
      client.stdin!.end();
      raw.kill();
    }
  }, 120_000);
});
