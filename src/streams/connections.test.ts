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
