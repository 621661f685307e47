/**
 * Live eBPF, sockets: each close reported with its own socket when fd numbers
 * are reused, and connections opened before the agent started. Skipped with
 * the reason where the agent cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, exited, SERVICE, skipReason, startAgent } from './live-agent';
import { freePort, tempDir, waitFor, type SpanLine } from './helpers';

describe.skipIf(Boolean(skipReason) || spawnSync('python3', ['--version']).status !== 0)(
  `live eBPF, closes and reused fd numbers${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('reports each close with its own socket, also when the next socket gets the same fd', async () => {
      // Python hands out the lowest free fd, so the second connection's two sockets get the first's numbers.
      const child = spawn(
        'python3',
        [
          '-c',
          `
import json, socket, sys
sys.stdin.readline()
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
fds = []
for n in range(2):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    client.sendall(b'ping %d' % n); server.recv(16)
    fds.append((client.fileno(), server.fileno()))
    client.close(); server.close()
print(json.dumps(fds), flush=True)
`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const capture = path.join(tempDir(), 'closes.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(child.pid)]);
      let fds: number[][] = [];
      try {
        await waitFor(agent, 'stderr', /attached/);
        child.stdin!.write('go\n');
        const printed = await waitFor(child, 'stdout', /\]\]/);
        fds = JSON.parse(printed) as number[][];
        expect(fds[0], "the second connection reuses the first one's fds").toEqual(fds[1]);
      } finally {
        agent.kill('SIGINT');
        child.kill();
      }
      expect(await exited(agent)).toBe(0);
      const converted = path.join(tempDir(), 'closes.jsonl');
      expect(spawnSync('node', [CLI, 'convert', capture, converted]).status).toBe(0);
      type Rec = { type: string; pid: number; fd: number; role?: string; cookie: string };
      const records = fs
        .readFileSync(converted, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => JSON.parse(l) as Rec)
        .filter((r) => r.pid === child.pid && ['sock_open', 'sock_close', 'data'].includes(r.type));
      expect(records.filter((r) => r.type === 'sock_open').map((r) => r.role)).toEqual(['client', 'server', 'client', 'server']);
      // Per fd: opened, its data, closed, and again for the next socket on the number. (A cookie
      // names a kernel socket while it lives: the second pair may well reuse the first one's memory.)
      for (const fd of fds[0]!) {
        const own = records.filter((r) => r.fd === fd);
        const shape = own.map((r) => r.type).filter((t, i, all) => t !== 'data' || all[i - 1] !== 'data');
        expect(shape).toEqual(['sock_open', 'data', 'sock_close', 'sock_open', 'data', 'sock_close']);
        let openCookie = '';
        for (const r of own) {
          if (r.type === 'sock_open') openCookie = r.cookie;
          else expect(r.cookie, `${r.type} of fd ${fd}: the cookie of the socket opened last on it`).toBe(openCookie);
        }
      }
    }, 60_000);
  },
);

describe.skipIf(Boolean(skipReason))(`live eBPF, connections opened before the agent${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('learns their 4-tuples at first use, so connection pairs still join the trace', async () => {
    const frontendPort = await freePort();
    const backendPort = await freePort();
    const backend = spawn(process.execPath, [SERVICE, 'backend', String(backendPort)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, OTEL_SERVICE_NAME: 'backend' },
    });
    const frontend = spawn(process.execPath, [SERVICE, 'frontend', String(frontendPort), String(backendPort)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, OTEL_SERVICE_NAME: 'frontend' },
    });
    let client: ChildProcess | undefined;
    try {
      await Promise.all([waitFor(backend, 'stdout', /ready/), waitFor(frontend, 'stdout', /ready/)]);
      // A keep-alive client, started once both listen: one request before the agent starts, two after, on the same socket.
      client = spawn(
        process.execPath,
        [
          '-e',
          `
        const http = require('http');
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const get = (n) => new Promise((r) => http.get({ port: ${frontendPort}, host: '127.0.0.1', path: '/factorial/' + n, agent }, (res) => { res.resume(); res.on('end', r); }));
        (async () => {
          await get(3);
          console.log('warm');
          process.stdin.once('data', async () => { await get(4); await get(5); console.log('done'); agent.destroy(); });
        })();`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, OTEL_SERVICE_NAME: 'client' } },
      );
      await waitFor(client, 'stdout', /warm/);
      const dir = tempDir();
      const spansFile = path.join(dir, 'old.jsonl');
      const { agent } = startAgent(['run', '--port', String(frontendPort), '--port', String(backendPort), '--format', 'jsonl', '-o', spansFile]);
      await waitFor(agent, 'stderr', /attached/);
      client.stdin!.write('go\n');
      await waitFor(client, 'stdout', /done/);
      agent.kill('SIGINT'); // it takes what the ring buffer holds before it stops
      expect(await exited(agent)).toBe(0);
      const spans = fs
        .readFileSync(spansFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SpanLine);
      const servers = spans.filter((s) => s.service === 'frontend' && s.kind === 'server');
      expect(servers.map((s) => s.attributes['url.path']).sort()).toEqual(['/factorial/4', '/factorial/5']);
      for (const server of servers) {
        const parent = spans.find((s) => s.spanId === server.parentSpanId);
        expect(parent, 'the client span that sent it').toMatchObject({ service: 'client', kind: 'client' });
        expect(server.attributes['loupe.context']).toBe('connection-pair');
        expect(server.attributes['loupe.mid_stream']).toBe(true);
        const call = spans.find((s) => s.parentSpanId === server.spanId && s.kind === 'client')!;
        const back = spans.find((s) => s.parentSpanId === call.spanId)!;
        expect(back).toMatchObject({ service: 'backend', kind: 'server' });
      }
    } finally {
      for (const c of [client, frontend, backend]) c?.kill();
    }
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('python3', ['--version']).status !== 0)(
  `live eBPF, vector writes of many pieces${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('copies every piece of a sendmsg and a writev of 300 iovec entries, as a corked Node.js write or an MQTT client sends them', async () => {
      const child = spawn(
        'python3',
        [
          '-c',
          `
import os, socket, sys
sys.stdin.readline()
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(1)
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
pieces = [b'piece %03d;' % i for i in range(300)]
want = len(b''.join(pieces))
client.sendmsg(pieces)
got = b''
while len(got) < want: got += server.recv(65536)
os.writev(client.fileno(), [p.upper() for p in pieces])
got = b''
while len(got) < want: got += server.recv(65536)
print('done', flush=True)
client.close(); server.close()
`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const capture = path.join(tempDir(), 'vectors.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(child.pid)]);
      try {
        await waitFor(agent, 'stderr', /attached/);
        child.stdin!.write('go\n');
        await waitFor(child, 'stdout', /done/);
      } finally {
        agent.kill('SIGINT');
      }
      expect(await exited(agent)).toBe(0);
      const converted = path.join(tempDir(), 'vectors.jsonl');
      expect(spawnSync('node', [CLI, 'convert', capture, converted]).status).toBe(0);
      type Rec = { type: string; pid: number; dir?: string; source?: string; data?: string };
      const egress = fs
        .readFileSync(converted, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => JSON.parse(l) as Rec)
        .filter((r) => r.pid === child.pid && r.type === 'data' && r.dir === 'egress');
      const pieces = Array.from({ length: 300 }, (_, i) => `piece ${String(i).padStart(3, '0')};`);
      expect(egress.map((r) => [r.source, r.data])).toEqual([
        ['sendmsg', pieces.join('')],
        ['writev', pieces.join('').toUpperCase()],
      ]);
    }, 60_000);
  },
);
