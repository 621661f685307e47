/**
 * Live HTTPS through OpenSSL uprobes: curl's plaintext from the system's
 * libssl, and from a libssl a program loads from elsewhere. Skipped with the
 * reason where the agent or openssl cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, exited, skipReason, startAgent } from './live-agent';
import { freePort, tempDir, waitFor } from './helpers';

describe.skipIf(Boolean(skipReason) || spawnSync('openssl', ['version']).status !== 0)(`live HTTPS through OpenSSL uprobes${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it("reads curl's HTTPS plaintext from SSL_write/SSL_read and reports no ciphertext", async () => {
    const dir = tempDir();
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1']);
    expect(made.status, made.stderr?.toString()).toBe(0);
    const port = await freePort();
    const server = spawn(
      process.execPath,
      [
        '-e',
        `
        const fs = require('fs');
        require('https').createServer({ key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) },
          (req, res) => res.end('secure ' + req.url)).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await waitFor(server, 'stdout', /ready/);
      const capture = path.join(dir, 'tls.loupe');
      const { agent, stderr } = startAgent(['record', '-o', capture, '--port', String(port), '--quiet']);
      await waitFor(agent, 'stderr', /attached/);
      expect(stderr()).toMatch(/TLS plaintext: \S*libssl/);
      const r = spawnSync('curl', ['-sSk', '-H', 'Authorization: Bearer tls-bearer-secret', `https://127.0.0.1:${port}/secret/path?token=tls-query-secret`], { encoding: 'utf8' });
      expect(r.stdout).toBe('secure /secret/path?token=tls-query-secret');
      agent.kill('SIGINT');
      expect(await exited(agent)).toBe(0);
      // Every masking rule holds for TLS plaintext as for a plain socket: the capture keeps neither secret.
      const bytes = fs.readFileSync(capture, 'latin1');
      expect(bytes).not.toContain('tls-bearer-secret');
      expect(bytes).not.toContain('/secret/path?token=tls-query-secret HTTP/1.1'); // the body echoes the URL: that is data, not a request
      const tree = spawnSync('node', [CLI, 'replay', capture, '--format', 'tree', '--quiet'], { encoding: 'utf8' }).stdout;
      expect(tree).toMatch(new RegExp(`curl CLIENT GET https://127\\.0\\.0\\.1:${port}/secret/path\\?token=REDACTED -> 200`));
      const parsed = spawnSync('node', [CLI, 'parse', capture, '--quiet'], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      // The client side is read in plaintext; the Node server (its own OpenSSL) only as TLS.
      expect(parsed.filter((m) => m.protocol === 'http1').map((m) => `${m.kind} ${m.method ?? m.status}`)).toEqual(['request GET', 'response 200']);
    } finally {
      server.kill();
    }
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('openssl', ['version']).status !== 0)(
  `live HTTPS through a libssl of a program's own${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    it('finds an OpenSSL library a program loads from elsewhere, and reads its plaintext too', async () => {
      const dir = tempDir();
      const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
      expect(spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1']).status).toBe(0);
      // A copy of the system libssl in a folder of the program's own: another file, which the start-up probes do not cover.
      const system = spawnSync('sh', ['-c', 'ldd "$(command -v openssl)" | sed -n "s/.*libssl[^ ]* => \\([^ ]*\\).*/\\1/p"'], { encoding: 'utf8' }).stdout.trim();
      const own = path.join(dir, 'lib');
      fs.mkdirSync(own);
      fs.copyFileSync(system, path.join(own, path.basename(system)));
      const port = await freePort();
      const server = spawn(
        process.execPath,
        [
          '-e',
          `
        const fs = require('fs');
        require('https').createServer({ key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) },
          (req, res) => res.end('secure ' + req.url)).listen(${port}, '127.0.0.1', () => console.log('ready'));`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const capture = path.join(dir, 'own-ssl.loupe');
      const { agent, stderr } = startAgent(['record', '-o', capture, '--port', String(port)]);
      let client: ChildProcess | undefined;
      try {
        await waitFor(server, 'stdout', /ready/);
        await waitFor(agent, 'stderr', /attached/);
        // s_client handshakes at once, then sends what comes on stdin through SSL_write.
        client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-quiet'], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, LD_LIBRARY_PATH: own } });
        await waitFor(agent, 'stderr', new RegExp(`TLS plaintext also from ${own.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/libssl`));
        client.stdin!.write('GET /own/ssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        await waitFor(client, 'stdout', /secure \/own\/ssl/);
        client.stdin!.end();
        agent.kill('SIGINT'); // it takes what the ring buffer holds before it stops
        expect(await exited(agent)).toBe(0);
        const tree = spawnSync('node', [CLI, 'replay', capture, '--format', 'tree', '--quiet'], { encoding: 'utf8' }).stdout;
        expect(tree, stderr()).toMatch(new RegExp(`openssl CLIENT GET https://localhost(:\\d+)?/own/ssl -> 200`));
      } finally {
        client?.kill();
        server.kill();
        agent.kill();
      }
    }, 60_000);
  },
);
