import { describe, expect, it, vi } from 'vitest';
import { Http1Parser } from '../parsers/http1/parser';
import type { Http1Message } from '../parsers/http1/messages';
import { ConnectionTracker, type Connection } from './connections';
import type { MessageBase } from '../parsers/types';
import { get, ok, Script } from '../../test/script';
import { HEADER } from '../../test/helpers';
import { Pipeline } from '../pipeline/pipeline';
import type { Span } from '../correlator/span';

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
    const data = (fd: number, direction: 'ingress' | 'egress', text: string, ts: bigint) =>
      events.push({
        type: 'data',
        ts,
        ...base,
        fd,
        direction,
        source: direction === 'egress' ? 'write' : 'read',
        flags: 0,
        cookie: 0xabcn,
        bytes: text.length,
        data: Buffer.from(text),
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

  it.each([
    ['the kernel side meets it in the child as a socket of unknown role', true],
    ["the child's first record is data", false],
  ])('a socket accepted by one process and used by the child it forked is one whole connection of the child, not joined mid-stream (%s)', (_, metInChild) => {
    const events: import('../events/types').Event[] = [];
    const local = { addr: '127.0.0.1', port: 5432 };
    const remote = { addr: '127.0.0.1', port: 40000 };
    const postmaster = { pid: 70, tid: 70, cpu: 0 };
    const backend = { pid: 71, tid: 71, cpu: 0 };
    const data = (who: typeof backend, direction: 'ingress' | 'egress', text: string, ts: bigint) =>
      events.push({
        type: 'data',
        ts,
        ...who,
        fd: 9,
        direction,
        source: direction === 'egress' ? 'write' : 'read',
        flags: 0,
        cookie: 0xfeedn,
        bytes: text.length,
        data: Buffer.from(text),
      });
    events.push({ type: 'sock_open', ts: 1n, ...postmaster, fd: 9, family: 4, role: 'server', protocol: 6, local, remote, cookie: 0xfeedn });
    events.push({ type: 'proc_fork', ts: 2n, ...postmaster, childPid: 71 });
    events.push({ type: 'sock_close', ts: 3n, ...postmaster, fd: 9, cookie: 0xfeedn }); // the postmaster's copy of the fd
    if (metInChild) events.push({ type: 'sock_open', ts: 3n, ...backend, fd: 9, family: 4, role: 'unknown', protocol: 6, local, remote, cookie: 0xfeedn });
    data(backend, 'ingress', get('/q'), 4n);
    data(backend, 'egress', ok('rows'), 5n);
    // A process that writes on a socket another process already used is not handed it: that one is mid-stream.
    data(postmaster, 'egress', ok('late'), 6n);
    const got: Array<{ conn: Connection; message: MessageBase }> = [];
    const tracker = new ConnectionTracker({ onMessage: (conn, message) => got.push({ conn, message }), onClose: () => {} });
    for (const ev of events) tracker.handle(ev);
    const served = got.filter(({ conn }) => conn.pid === 71);
    expect(served.map(({ message }) => message.kind)).toEqual(['request', 'response']);
    expect(served[0]!.conn).toMatchObject({ role: 'server', midStream: false, local, remote, openedTs: 1n });
    expect(got.filter(({ conn }) => conn.pid === 70).every(({ conn }) => conn.midStream)).toBe(true);
  });
});

describe('ConnectionTracker and records made at the syscall exit', () => {
  const ISN = 0xffff_ff00; // near the wrap: sequence arithmetic is mod 2^32
  const request = get('/later');
  const answer = ok('done');

  /** A Go client: its writer is preempted at the write's exit; its reader reads the answer first. */
  function overtaken(s: Script) {
    const [client, server] = s.connection({ pid: 1, tid: 10, fd: 3, port: 40000, seq: ISN }, { pid: 2, tid: 20, fd: 4, port: 8080, seq: 7 });
    s.recv(server, request, { seq: 7 });
    s.send(server, answer, { seq: 7 + answer.length });
    s.recv(client, answer, { tid: 11, seq: (ISN + request.length) >>> 0 });
    s.send(client, request, { tid: 10, seq: (ISN + request.length) >>> 0 });
    return client;
  }

  it('puts a write back before the read of its answer that overtook it, stamped no later than that read', () => {
    const s = new Script();
    overtaken(s);
    const readAt = s.events[s.events.length - 2]!.ts;
    const client = track(s)
      .filter(({ conn }) => conn.pid === 1)
      .map(({ message }) => message);
    expect(client.map((m) => m.kind)).toEqual(['request', 'response']);
    expect(client[0]!.tsStart).toBe(readAt);
    expect(client[1]!.tsEnd).toBe(readAt);
  });

  it('gives the Go client a whole span, its answer not an orphan', () => {
    const s = new Script();
    overtaken(s);
    const spans: Span[] = [];
    const p = new Pipeline(HEADER, [{ onSpan: (x) => spans.push(x) }]);
    p.push(s.events);
    p.finish();
    const call = spans.find((x) => x.kind === 'client')!;
    expect(call.attributes['http.response.status_code']).toBe(200);
    expect(call.endNs).toBeGreaterThanOrEqual(call.startNs);
    expect(p.correlator.stats.orphanResponses).toBe(0);
  });

  it('takes a read ahead of the writes it saw for writes it cannot see (sendfile), keeps its order, and holds that connection no more', () => {
    const s = new Script();
    const [, server] = s.connection({ pid: 1, tid: 10, fd: 3, port: 40001 }, { pid: 2, tid: 20, fd: 4, port: 8080 });
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    s.recv(server, get('/a'), { seq: 100 });
    s.send(server, head, { seq: 100 + head.length }); // then 5 body bytes by sendfile: no record
    s.recv(server, get('/b'), { seq: 100 + head.length + 5 });
    s.send(server, head, { seq: 100 + 2 * head.length + 5 });
    s.recv(server, get('/c'), { seq: 100 + 2 * head.length + 10 });
    s.send(server, head, { seq: 100 + 3 * head.length + 10 });
    const got = track(s).map(({ message }) => `${message.kind} ${'target' in message ? message.target : ''}`.trim());
    // The body bytes never came, so each answer runs into the next head: what matters is the order.
    expect(got.slice(0, 3)).toEqual(['request /a', 'request /b', 'response']);
    const conns: Connection[] = [];
    const t2 = new ConnectionTracker({ onOpen: (c) => conns.push(c), onMessage: () => {}, onClose: () => {} });
    for (const ev of s.events) t2.handle(ev);
    expect(conns.find((c) => c.pid === 2)!.unseenWrites).toBe(true);
  });

  it("lets a held read go once its write has not come for a second of the records' time", () => {
    const s = new Script();
    const [client] = s.connection({ pid: 1, tid: 10, fd: 3, port: 40002 }, { pid: 2, tid: 20, fd: 4, port: 8080 });
    s.send(client, request, { seq: 50 });
    s.recv(client, answer, { seq: 50 });
    s.recv(client, answer, { seq: 60 }); // ahead: a write whose record was lost
    const seen: string[] = [];
    const t = new ConnectionTracker({ onMessage: (_c, m) => seen.push(m.kind), onClose: () => {} });
    for (const ev of s.events) t.handle(ev);
    expect(seen).toEqual(['request', 'response']);
    t.handle({ type: 'proc_exec', ts: s.ts + 1_100_000_000n, pid: 9, tid: 9, cpu: 0, ppid: 1, uid: 0, comm: 'x', filename: '/x' });
    expect(seen).toEqual(['request', 'response', 'response']);
  });
});

describe('ConnectionTracker and a parser that throws', () => {
  it('costs the connection its parsing only: others go on, the fault is counted and named with its stream offset', () => {
    const s = new Script();
    const [a] = s.connection({ pid: 1, tid: 1, fd: 3, port: 40000 }, { pid: 2, tid: 2, fd: 4, port: 8080 });
    const [b] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40001 }, { pid: 2, tid: 2, fd: 6, port: 8080 });
    s.send(a, get('/first'));
    s.send(b, get('/boom'));
    s.send(b, get('/after'));
    s.send(a, get('/second'));
    const feed = Http1Parser.prototype.feed;
    const spy = vi.spyOn(Http1Parser.prototype, 'feed').mockImplementation(function (this: Http1Parser, side, chunk) {
      if (Buffer.from(chunk.data).includes('/boom')) throw new RangeError('offset out of range');
      return feed.call(this, side, chunk);
    });
    try {
      const seen: string[] = [];
      const faults: string[] = [];
      const t = new ConnectionTracker({
        onMessage: (_c, m) => seen.push((m as Http1Message & { target: string }).target),
        onClose: () => {},
        onFault: (conn, f) => faults.push(`${conn.fd} ${f.side} ${f.streamOffset} ${f.message}`),
      });
      for (const ev of s.events) t.handle(ev);
      expect(seen).toEqual(['/first', '/second']);
      expect(faults).toEqual([`5 client ${get('/boom').length} RangeError: offset out of range`]);
    } finally {
      spy.mockRestore();
    }
  });
});
