import { describe, expect, it } from 'vitest';
import { ConnectionTracker, type Connection } from './connections';
import type { MessageBase } from '../parsers/types';
import { get, ok, Script } from '../../test/script';

// A TLS 1.2 handshake record's first bytes: detection calls this 'tls'.
const CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03, ...new Array(40).fill(7)]);

function track(script: Script) {
  const messages: Array<{ conn: Connection; message: MessageBase }> = [];
  const tracker = new ConnectionTracker({ onMessage: (conn, message) => messages.push({ conn, message }), onClose: () => {} });
  for (const ev of script.events) tracker.handle(ev);
  return messages;
}

describe('ConnectionTracker and TLS plaintext', () => {
  it('parses the plaintext a TLS library hands over, after the handshake ciphertext, and ignores later ciphertext', () => {
    const s = new Script();
    const [client] = s.connection({ pid: 1, tid: 1, fd: 3, port: 40000 }, { pid: 2, tid: 2, fd: 4, port: 443 });
    s.send(client, CLIENT_HELLO.toString('latin1'));
    s.recv(client, '\x16\x03\x03\x00\x10 server hello ciphertext');
    s.data(client, 'egress', get('/secure'), { tls: true });
    s.send(client, '\x17\x03\x03\x00\x20 encrypted application data');
    s.data(client, 'ingress', ok('yes'), { tls: true });
    const got = track(s);
    expect(got.map(({ message }) => `${message.protocol} ${message.kind}`)).toEqual(['http1 request', 'http1 response']);
    expect(got[0]!.conn.tls).toBe(true);
    expect(got.every(({ message }) => message.error === undefined)).toBe(true);
  });

  it('without plaintext records the connection stays TLS and yields no messages', () => {
    const s = new Script();
    const [client] = s.connection({ pid: 1, tid: 1, fd: 3, port: 40001 }, { pid: 2, tid: 2, fd: 4, port: 443 });
    s.send(client, CLIENT_HELLO.toString('latin1'));
    s.send(client, get('/looks-like-http-but-tls-was-decided'));
    expect(track(s)).toEqual([]);
  });
});

describe('ConnectionTracker and sockets reached through several fds', () => {
  it('reads a request on one fd and its response on a dup of it as one connection, closed with its last fd', () => {
    const events: import('../events/types').Event[] = [];
    const local = { addr: '127.0.0.1', port: 8080 };
    const remote = { addr: '127.0.0.1', port: 40000 };
    const base = { pid: 7, tid: 7, cpu: 0 };
    const data = (fd: number, direction: 'ingress' | 'egress', text: string, ts: bigint) => events.push({
      type: 'data', ts, ...base, fd, direction, source: direction === 'egress' ? 'write' : 'read', flags: 0, cookie: 0xabcn, bytes: text.length, data: Buffer.from(text),
    });
    events.push({ type: 'sock_open', ts: 1n, ...base, fd: 4, family: 4, role: 'server', protocol: 6, local, remote, cookie: 0xabcn });
    data(6, 'ingress', get('/dup'), 2n); // read through the clone (fd 6): the kernel side gives it the socket's cookie
    events.push({ type: 'sock_close', ts: 3n, ...base, fd: 6, cookie: 0xabcn });
    data(4, 'egress', ok('fine'), 4n); // answered through the original fd
    events.push({ type: 'sock_close', ts: 5n, ...base, fd: 4, cookie: 0xabcn });
    const got: Array<{ conn: Connection; message: MessageBase }> = [];
    const closed: number[] = [];
    const tracker = new ConnectionTracker({ onMessage: (conn, message) => got.push({ conn, message }), onClose: (conn) => closed.push(conn.id) });
    for (const ev of events) tracker.handle(ev);
    expect(got.map(({ message }) => message.kind)).toEqual(['request', 'response']);
    expect(new Set(got.map(({ conn }) => conn.id)).size).toBe(1);
    expect(got[0]!.conn.role).toBe('server');
    expect(got[0]!.conn.midStream).toBe(false);
    expect(closed).toHaveLength(1);
  });
});
