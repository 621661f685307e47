import { describe, expect, it } from 'vitest';
import { HEADER } from '../../test/helpers';
import { get, ok, Script } from '../../test/script';
import { Pipeline } from '../pipeline/pipeline';
import type { Span } from './span';
import { IdGenerator } from './ids';
import { formatTraceparent, parseTraceparent } from './traceparent';
import type { Event } from '../events/types';

function spansOf(events: Event[], seed = HEADER.seed): Span[] {
  const spans: Span[] = [];
  const p = new Pipeline(
    {
      ...HEADER,
      seed,
      processes: [
        { pid: 1, exe: '/bin/front' },
        { pid: 2, exe: '/bin/back' },
        { pid: 3, exe: '/usr/bin/curl' },
      ],
    },
    [{ onSpan: (s) => spans.push(s) }],
  );
  p.push(events);
  p.finish();
  return spans;
}

const find = (spans: Span[], service: string, kind: string) => spans.find((s) => s.service === service && s.kind === kind)!;

/** curl -> front -> back, with `frontTid` the thread that makes the backend call. */
function chain(opts: { frontHeaders?: string; backHeaders?: string; callTid?: number } = {}): Event[] {
  const s = new Script();
  const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
  s.send(curl, get('/a', opts.frontHeaders));
  s.recv(front, get('/a', opts.frontHeaders));
  const [frontOut, back] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
  s.send(frontOut, get('/b', opts.backHeaders), { tid: opts.callTid ?? 11 });
  s.recv(back, get('/b', opts.backHeaders));
  s.send(back, ok());
  s.recv(frontOut, ok());
  s.send(front, ok());
  s.recv(curl, ok());
  return s.events;
}

describe('correlator', () => {
  it('joins a call chain into one trace by connection pairs and the serving thread', () => {
    const spans = spansOf(chain());
    expect(spans).toHaveLength(4);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const curl = find(spans, 'curl', 'client');
    const frontServer = find(spans, 'front', 'server');
    const frontClient = find(spans, 'front', 'client');
    const back = find(spans, 'back', 'server');
    expect(curl.parentSpanId).toBe('');
    expect(frontServer.parentSpanId).toBe(curl.spanId);
    expect(frontClient.parentSpanId).toBe(frontServer.spanId);
    expect(back.parentSpanId).toBe(frontClient.spanId);
    expect([frontServer, frontClient, back].map((s) => s.attributes['loupe.context'])).toEqual(['connection-pair', 'thread', 'connection-pair']);
  });

  it('a server span joins the trace of an incoming traceparent, with a remote parent', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const spans = spansOf(chain({ frontHeaders: `traceparent: ${tp}\r\ntracestate: congo=t61rcWkgMzE\r\n` }));
    // curl is watched and sent the header as it was given: the header names curl's parent, and the server is curl's child.
    const curl = find(spans, 'curl', 'client');
    expect(curl).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', parentIsRemote: true, traceState: 'congo=t61rcWkgMzE' });
    const front = find(spans, 'front', 'server');
    expect(front).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: curl.spanId });
    expect(front.attributes['loupe.context']).toBe('connection-pair');
    expect(find(spans, 'back', 'server').traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    // Its client not watched: the server span's parent is the header's, remote.
    const alone = new Script();
    const server = alone.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: { addr: '127.0.0.1', port: 8080 }, remote: { addr: '127.0.0.1', port: 40000 } });
    alone.recv(server, get('/a', `traceparent: ${tp}\r\ntracestate: congo=t61rcWkgMzE\r\n`));
    alone.send(server, ok());
    const [only] = spansOf(alone.events);
    expect(only).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', parentIsRemote: true, traceState: 'congo=t61rcWkgMzE' });
    expect(only!.attributes['loupe.context']).toBe('traceparent');
  });

  it('carries the sampled flag of an incoming traceparent down the trace, and none in a trace that began here', () => {
    for (const [flags, sampled] of [
      ['01', true],
      ['00', false],
      ['03', true],
    ] as const) {
      const spans = spansOf(chain({ frontHeaders: `traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-${flags}\r\n` }));
      expect(spans).toHaveLength(4); // curl sent the header itself, so its span too
      expect(
        spans.map((x) => x.remoteSampled),
        flags,
      ).toEqual([sampled, sampled, sampled, sampled]);
    }
    expect(spansOf(chain({})).map((x) => x.remoteSampled)).toEqual(spansOf(chain({})).map(() => undefined));
  });

  it('a downstream server joins the trace an outgoing traceparent names', () => {
    const tp = '00-11111111111111111111111111111111-2222222222222222-01';
    const spans = spansOf(chain({ backHeaders: `traceparent: ${tp}\r\n` }));
    // The call carries the header its program set: the client span joins that context and the server is its child.
    const call = find(spans, 'front', 'client');
    expect(call).toMatchObject({ traceId: '11111111111111111111111111111111', parentSpanId: '2222222222222222' });
    expect(find(spans, 'back', 'server')).toMatchObject({ traceId: '11111111111111111111111111111111', parentSpanId: call.spanId });
  });

  it('lets a traceparent that names another span than the client span win over the connection pair', () => {
    // An SDK in front: its outgoing header names its own span (P2) in the trace front serves; Loupe's
    // client span is the child of front's server span. The same bytes reach back, but the header names P2.
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(curl, get('/a', `traceparent: 00-${trace}-1111111111111111-01\r\n`));
    s.recv(front, get('/a', `traceparent: 00-${trace}-1111111111111111-01\r\n`));
    const [frontOut, back] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
    s.send(frontOut, get('/b', `traceparent: 00-${trace}-2222222222222222-01\r\n`));
    s.recv(back, get('/b', `traceparent: 00-${trace}-2222222222222222-01\r\n`));
    s.send(back, ok());
    s.recv(frontOut, ok());
    s.send(front, ok());
    s.recv(curl, ok());
    const spans = spansOf(s.events);
    expect(find(spans, 'front', 'client').parentSpanId).toBe(find(spans, 'front', 'server').spanId);
    const served = find(spans, 'back', 'server');
    expect(served).toMatchObject({ traceId: trace, parentSpanId: '2222222222222222', parentIsRemote: true });
    expect(served.attributes['loupe.context']).toBe('traceparent');
  });

  it('does not guess a parent when the calling thread serves nothing or several requests', () => {
    const other = spansOf(chain({ callTid: 99 }));
    expect(find(other, 'front', 'client').parentSpanId).toBe('');
    expect(find(other, 'front', 'client').attributes['loupe.context']).toBe('new');

    const s = new Script();
    const [c1, s1] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    const [c2, s2] = s.connection({ pid: 3, tid: 3, fd: 4, port: 40002 }, { pid: 1, tid: 11, fd: 7, port: 8080 });
    s.send(c1, get('/one'));
    s.recv(s1, get('/one'));
    s.send(c2, get('/two'));
    s.recv(s2, get('/two'));
    s.send(s2, 'HTTP/1.1 100 Continue\r\n\r\n'); // other I/O after the last read: no event-loop order to go by
    const [out] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
    s.send(out, get('/b'));
    s.recv(out, ok());
    const spans = spansOf(s.events);
    const call = find(spans, 'front', 'client');
    expect(call.parentSpanId).toBe('');
    expect(call.attributes['loupe.context']).toBe('ambiguous-thread');
  });

  it("joins an event loop's upstream call to the request it read right before it connected or wrote, and guesses nothing after other I/O", () => {
    // One worker thread (tid 11) serving two requests at once, as nginx does.
    const s = new Script();
    const [c1, n1] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    const [c2, n2] = s.connection({ pid: 3, tid: 4, fd: 4, port: 40002 }, { pid: 1, tid: 11, fd: 7, port: 8080 });
    s.send(c1, get('/one'));
    s.recv(n1, get('/one'));
    s.send(c2, get('/two'));
    s.recv(n2, get('/two'));
    // Opened right after /two was read: /two's call, though it is written later.
    const [u2, b2] = s.connection({ pid: 1, tid: 11, fd: 8, port: 40003 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
    s.send(u2, get('/up/two'));
    s.recv(b2, get('/up/two'));
    s.send(b2, ok());
    s.recv(u2, ok());
    // A connection opened after the worker wrote elsewhere: nothing tells which request it is for.
    const [u1, b1] = s.connection({ pid: 1, tid: 11, fd: 9, port: 40004 }, { pid: 2, tid: 22, fd: 6, port: 9090 });
    s.send(u1, get('/up/one'));
    s.recv(b1, get('/up/one'));
    s.send(b1, ok());
    s.recv(u1, ok());
    s.send(n1, ok());
    s.recv(c1, ok());
    s.send(n2, ok());
    s.recv(c2, ok());
    const spans = spansOf(s.events);
    const server = (path: string) => spans.find((x) => x.kind === 'server' && x.attributes['url.path'] === path)!;
    const call = (path: string) => spans.find((x) => x.kind === 'client' && String(x.attributes['url.full']).endsWith(path))!;
    expect(call('/up/two').parentSpanId).toBe(server('/two').spanId);
    expect(call('/up/two').attributes['loupe.context']).toBe('event-loop');
    expect(call('/up/one').parentSpanId).toBe('');
    expect(call('/up/one').attributes['loupe.context']).toBe('ambiguous-thread');
  });

  it("pairs a server request whose bytes reached the ring buffer before the client's (the writer had not returned yet)", () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.recv(front, get('/a')); // the reader's record first
    s.send(curl, get('/a'));
    const [frontOut, back] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
    s.send(frontOut, get('/b'));
    s.recv(back, get('/b'));
    s.send(back, ok());
    s.recv(frontOut, ok());
    s.send(front, ok());
    s.recv(curl, ok());
    const spans = spansOf(s.events);
    const [client, server, call, downstream] = [find(spans, 'curl', 'client'), find(spans, 'front', 'server'), find(spans, 'front', 'client'), find(spans, 'back', 'server')];
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server.attributes).toMatchObject({ 'loupe.context': 'connection-pair', 'loupe.paired_late': true });
    // The calls it makes are in the client's trace too.
    expect(call.parentSpanId).toBe(server.spanId);
    expect(new Set([client, server, call, downstream].map((x) => x.traceId)).size).toBe(1);
  });

  it("pairs the first request on connections met mid-life when the client's first record comes after the server read it", () => {
    // A keep-alive connection opened before the agent: each end is learnt at its first read or
    // write, so the client end is unknown until its writer's syscall returns.
    const midLife = (peer: string) => {
      const s = new Script();
      const client = { addr: peer, port: 40000 };
      const server = { addr: '127.0.0.1', port: 8080 };
      const front = s.open({ pid: 1, tid: 11, fd: 5, role: 'unknown', local: server, remote: client });
      s.recv(front, get('/a')); // the reader's record first
      const curl = s.open({ pid: 3, tid: 3, fd: 3, role: 'unknown', local: client, remote: server });
      s.send(curl, get('/a'));
      s.send(front, ok());
      s.recv(curl, ok());
      s.exchange(curl, front, get('/b'), ok());
      return spansOf(s.events);
    };
    const spans = midLife('127.0.0.1');
    for (const path of ['/a', '/b']) {
      const client = spans.find((x) => x.kind === 'client' && String(x.attributes['url.full']).endsWith(path))!;
      const server = spans.find((x) => x.kind === 'server' && x.attributes['url.path'] === path)!;
      expect(server.parentSpanId, path).toBe(client.spanId);
      expect(server.traceId, path).toBe(client.traceId);
      expect(server.attributes, path).toMatchObject({ 'loupe.context': 'connection-pair', 'loupe.mid_stream': true });
    }
    // A peer at an address no socket here was seen bound to is not waited for; by the second request its end is known.
    const remote = midLife('10.9.9.9');
    expect(remote.filter((x) => x.kind === 'server').map((x) => x.attributes['loupe.context'])).toEqual(['new', 'connection-pair']);
  });

  it('moves the whole subtree with a server span paired late: its calls that ended before the pairing too', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.recv(front, get('/a'));
    const [frontOut, back] = s.connection({ pid: 1, tid: 11, fd: 6, port: 40001 }, { pid: 2, tid: 21, fd: 4, port: 9090 });
    s.send(frontOut, get('/b'));
    s.recv(back, get('/b'));
    s.send(back, ok());
    s.recv(frontOut, ok()); // the call, and the downstream server span, end before the client's record comes
    s.send(curl, get('/a'));
    s.send(front, ok());
    s.recv(curl, ok());
    const spans = spansOf(s.events);
    expect(spans).toHaveLength(4);
    const [client, server, call, downstream] = [find(spans, 'curl', 'client'), find(spans, 'front', 'server'), find(spans, 'front', 'client'), find(spans, 'back', 'server')];
    expect(server.parentSpanId).toBe(client.spanId);
    expect(call.parentSpanId).toBe(server.spanId);
    expect(downstream.parentSpanId).toBe(call.spanId);
    expect(new Set(spans.map((x) => x.traceId))).toEqual(new Set([client.traceId]));
  });

  it("pairs a server request that ended before its client's request record came, as the spans are written out", () => {
    // A TLS client's SSL_write record comes when SSL_write returns: preempted there, its server
    // (nginx) reads, answers and finishes first — on a kept-alive connection, request after request.
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    for (const path of ['/1', '/2', '/3']) {
      s.recv(front, get(path));
      s.send(front, ok());
      s.send(curl, get(path));
      s.recv(curl, ok());
    }
    s.recv(front, get('/never')); // its client's record never comes
    s.send(front, ok());
    s.goroutine(9, 1, 0, { tid: 9 });
    s.events[s.events.length - 1]!.ts += 5_000_000_000n; // the records' clock goes on, past the grace
    // As written out (a JSON line per span when it is emitted), not as the objects end up.
    const written: Array<Record<string, unknown>> = [];
    const p = new Pipeline(HEADER, [{ onSpan: (x) => written.push(JSON.parse(JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))) }]);
    p.push(s.events);
    const beforeEnd = written.length;
    p.finish();
    const byPath = (kind: string, path: string) =>
      written.find((x) => x.kind === kind && String((x.attributes as Record<string, unknown>)[kind === 'server' ? 'url.path' : 'url.full']).endsWith(path))!;
    for (const path of ['/1', '/2', '/3']) {
      const [client, server] = [byPath('client', path), byPath('server', path)];
      expect(server.parentSpanId, path).toBe(client.spanId);
      expect(server.traceId, path).toBe(client.traceId);
      expect((server.attributes as Record<string, unknown>)['loupe.paired_late']).toBe(true);
    }
    const never = byPath('server', '/never');
    expect(never.parentSpanId).toBe('');
    expect(written.indexOf(never)).toBeLessThan(beforeEnd); // let go on the records' clock, not only at the end
  });

  it('writes a server span out at once when its client end is not watched here: no client record can claim it', () => {
    const s = new Script();
    // Only the server's socket (`--pid` on it; the client another process or host).
    const front = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: { addr: '127.0.0.1', port: 8080 }, remote: { addr: '127.0.0.1', port: 40000 } });
    s.recv(front, get('/a'));
    s.send(front, ok());
    const written: string[] = [];
    const p = new Pipeline(HEADER, [{ onSpan: (x) => written.push(x.name) }]);
    p.push(s.events);
    expect(written).toEqual(['GET /a']); // before finish: not held for a client
    p.finish();
    expect(written).toHaveLength(1);
  });

  it('does not claim a waiting server request with a client request of other bytes', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.recv(front, get('/a'));
    s.send(curl, get('/other'));
    s.send(front, ok());
    s.recv(curl, ok());
    const spans = spansOf(s.events);
    expect(find(spans, 'front', 'server').parentSpanId).toBe('');
  });

  it('does not pair with an earlier connection that used the same ports and closed', () => {
    const s = new Script();
    const [c1, s1] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(c1, get('/first'));
    s.close(c1); // the client gave up; its span ends incomplete
    // a different process now gets the same port pair, with no client seen
    s.open({ pid: 1, tid: 12, fd: 9, role: 'server', local: { addr: '127.0.0.1', port: 8080 }, remote: { addr: '127.0.0.1', port: 40000 } });
    s.recv({ pid: 1, tid: 12, fd: 9, role: 'server', local: { addr: '127.0.0.1', port: 8080 }, remote: { addr: '127.0.0.1', port: 40000 } }, get('/second'));
    void s1;
    const spans = spansOf(s.events);
    const server = find(spans, 'front', 'server');
    expect(server.parentSpanId).toBe('');
    expect(server.attributes['loupe.context']).toBe('new');
  });

  it('does not pair on a reused 4-tuple when the bytes show another request (its close and open were lost)', () => {
    const s = new Script();
    const [c1] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(c1, get('/first')); // the server never saw it, and the client's close was lost
    const srv2 = s.open({ pid: 1, tid: 12, fd: 9, role: 'server', local: { addr: '127.0.0.1', port: 8080 }, remote: { addr: '127.0.0.1', port: 40000 } });
    s.recv(srv2, get('/second'));
    const server = find(spansOf(s.events), 'front', 'server');
    expect(server.parentSpanId).toBe('');
    expect(server.attributes['url.path']).toBe('/second');
  });

  it('pairs across NAT on one host when exactly one client request in flight has the same bytes', () => {
    const s = new Script();
    // curl -> 127.0.0.1:8080, DNAT'ed: the server sees 172.17.0.1:51000 -> 172.17.0.2:80
    const curl = s.open({ pid: 3, tid: 3, fd: 3, role: 'client', local: { addr: '127.0.0.1', port: 40000 }, remote: { addr: '127.0.0.1', port: 8080 } });
    const srv = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: { addr: '172.17.0.2', port: 80 }, remote: { addr: '172.17.0.1', port: 51000 } });
    const other = s.open({ pid: 3, tid: 3, fd: 4, role: 'client', local: { addr: '127.0.0.1', port: 40001 }, remote: { addr: '127.0.0.1', port: 8080 } });
    s.send(curl, get('/via-nat', 'X-Id: 1\r\n'));
    s.send(other, get('/via-nat', 'X-Id: 2\r\n')); // different bytes: not a candidate
    s.recv(srv, get('/via-nat', 'X-Id: 1\r\n'));
    const spans = spansOf(s.events);
    const server = find(spans, 'front', 'server');
    const client = spans.find(
      (x) =>
        x.kind === 'client' &&
        x.attributes['network.peer.port'] === 8080 &&
        x.startNs ===
          spans
            .filter((y) => y.kind === 'client')
            .map((y) => y.startNs)
            .sort()[0],
    )!;
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server.attributes['loupe.context']).toBe('connection-pair-nat');

    // two identical requests in flight: the data cannot tell which, so no parent
    const t = new Script();
    const a = t.open({ pid: 3, tid: 3, fd: 3, role: 'client', local: { addr: '127.0.0.1', port: 40000 }, remote: { addr: '127.0.0.1', port: 8080 } });
    const b = t.open({ pid: 3, tid: 3, fd: 4, role: 'client', local: { addr: '127.0.0.1', port: 40001 }, remote: { addr: '127.0.0.1', port: 8080 } });
    const srv2 = t.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: { addr: '172.17.0.2', port: 80 }, remote: { addr: '172.17.0.1', port: 51000 } });
    t.send(a, get('/same'));
    t.send(b, get('/same'));
    t.recv(srv2, get('/same'));
    expect(find(spansOf(t.events), 'front', 'server').parentSpanId).toBe('');
  });

  it('pairs across NAT by the tuple connection tracking named, where two requests in flight have the same bytes', () => {
    const s = new Script();
    const a = s.open({ pid: 3, tid: 3, fd: 3, role: 'client', local: { addr: '127.0.0.1', port: 40000 }, remote: { addr: '127.0.0.1', port: 8080 } });
    const b = s.open({ pid: 3, tid: 4, fd: 4, role: 'client', local: { addr: '127.0.0.1', port: 40001 }, remote: { addr: '127.0.0.1', port: 8080 } });
    // The server's accept of b's connection, with what the host's conntrack said of it just before.
    const server = { addr: '10.88.0.2', port: 80 };
    const peer = { addr: '10.88.0.1', port: 51001 };
    s.events.push({
      type: 'nat',
      ts: s.ts,
      pid: 1,
      tid: 11,
      cpu: 0,
      clientLocal: { addr: '127.0.0.1', port: 40001 },
      clientRemote: { addr: '127.0.0.1', port: 8080 },
      serverLocal: server,
      serverRemote: peer,
    });
    s.close(s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: server, remote: peer }));
    // The accepted socket goes on under another fd (Rust's try_clone): the NAT entry still holds for its tuple.
    const srv = s.open({ pid: 1, tid: 11, fd: 6, role: 'unknown', local: server, remote: peer });
    s.send(a, get('/same'));
    s.send(b, get('/same'));
    s.recv(srv, get('/same'));
    s.send(srv, ok());
    s.recv(b, ok());
    const spans = spansOf(s.events);
    const joined = find(spans, 'front', 'server');
    const fromB = spans.find((x) => x.kind === 'client' && x.attributes['http.response.status_code'] === 200)!; // a's request is never answered
    expect(joined.parentSpanId).toBe(fromB.spanId);
    expect(joined.traceId).toBe(fromB.traceId);
    expect(joined.attributes['loupe.context']).toBe('conntrack');
    // Without the record the bytes cannot tell a from b: no parent is guessed.
    const without = spansOf(s.events.filter((e) => e.type !== 'nat'));
    expect(find(without, 'front', 'server').parentSpanId).toBe('');
  });

  it('ends requests without a response as incomplete errors, saying why', () => {
    const s = new Script();
    const [c, srv] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(c, get('/hang'));
    s.recv(srv, get('/hang'));
    s.close(c);
    const spans = spansOf(s.events);
    expect(find(spans, 'curl', 'client')).toMatchObject({ status: { code: 'error', message: 'connection closed before the response' } });
    expect(find(spans, 'front', 'server')).toMatchObject({ status: { code: 'error', message: 'capture ended before the response' } });
  });

  it('marks spans in flight during a ring-buffer loss', () => {
    const s = new Script();
    const [c, srv] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(c, get('/x'));
    s.recv(srv, get('/x'));
    s.loss(7);
    s.send(srv, ok());
    s.recv(c, ok());
    s.send(c, get('/y'));
    s.recv(srv, get('/y'));
    s.send(srv, ok());
    s.recv(c, ok());
    const spans = spansOf(s.events);
    expect(spans.filter((x) => x.attributes['loupe.records_lost'] === 7)).toHaveLength(2);
    expect(spans.filter((x) => x.attributes['loupe.records_lost'] === undefined)).toHaveLength(2);
  });

  it('maps HTTP to semantic conventions, redacting query values and failing 5xx servers and 4xx clients', () => {
    const s = new Script();
    const [c, srv] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    s.send(c, 'GET /p?key=secret&flag HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: t/1\r\n\r\n');
    s.recv(srv, 'GET /p?key=secret&flag HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: t/1\r\n\r\n');
    s.send(srv, ok('no', '404 Not Found'));
    s.recv(c, ok('no', '404 Not Found'));
    const spans = spansOf(s.events);
    expect(find(spans, 'front', 'server')).toMatchObject({
      name: 'GET /p',
      status: { code: 'unset' },
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/p',
        'http.route': '/p',
        'url.query': 'key=REDACTED&flag',
        'url.scheme': 'http',
        'server.address': 'example.test',
        'server.port': 8080,
        'client.address': '127.0.0.1',
        'client.port': 40000,
        'network.protocol.version': '1.1',
        'user_agent.original': 't/1',
        'http.response.status_code': 404,
      },
    });
    expect(find(spans, 'curl', 'client')).toMatchObject({
      status: { code: 'error' },
      attributes: { 'url.full': 'http://example.test:8080/p?key=REDACTED&flag', 'error.type': '404', 'network.peer.port': 8080 },
    });
    expect(JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).not.toContain('secret');
  });
});

describe('trace ids', () => {
  it('are the same for the same seed and differ for another', () => {
    const a = new IdGenerator('0123456789abcdef');
    const b = new IdGenerator('0123456789abcdef');
    const c = new IdGenerator('0123456789abcdee');
    const seqA = [a.traceId(), a.spanId(), a.traceId()];
    expect([b.traceId(), b.spanId(), b.traceId()]).toEqual(seqA);
    expect([c.traceId(), c.spanId(), c.traceId()]).not.toEqual(seqA);
    expect(seqA[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(seqA[1]).toMatch(/^[0-9a-f]{16}$/);
  });

  it('do not repeat over many draws', () => {
    const g = new IdGenerator('0000000000000000');
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(g.spanId());
    expect(seen.size).toBe(100_000);
  });
});

describe('traceparent', () => {
  it('parses valid values and rejects invalid ones per W3C', () => {
    expect(parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentId: 'b7ad6b7169203331',
      flags: 1,
    });
    expect(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future')).toBeDefined();
    for (const bad of [
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01',
      'garbage',
    ])
      expect(parseTraceparent(bad), bad).toBeUndefined();
    expect(formatTraceparent('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331')).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });
});

describe('a consumer handling a delivery', () => {
  it("parents the calls its thread makes right after a delivery under that delivery's span (loupe.context delivery), not a call a second later or on another thread", () => {
    const s = new Script();
    // back (pid 2) consumes from a NATS server and writes to memcached after each delivery.
    const [nats] = s.connection({ pid: 2, tid: 21, fd: 4, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [cache] = s.connection({ pid: 2, tid: 21, fd: 5, port: 40001 }, { pid: 8, tid: 8, fd: 4, port: 11211 });
    s.recv(nats, 'INFO {"server_id":"N"}\r\n', { at: 1_000n });
    s.recv(nats, 'MSG orders 1 5\r\nhello\r\n', { at: 10_000n });
    s.send(cache, 'set order:1 0 0 5\r\nhello\r\n', { at: 20_000n });
    s.recv(cache, 'STORED\r\n', { at: 30_000n });
    s.send(cache, 'get order:1\r\n', { at: 40_000n, tid: 22 }); // another thread: not handling it
    s.recv(cache, 'END\r\n', { at: 50_000n, tid: 22 });
    s.send(cache, 'get order:2\r\n', { at: 2_000_000_000n }); // two seconds on: other work
    s.recv(cache, 'END\r\n', { at: 2_000_010_000n });
    const spans = spansOf(s.events);
    const delivery = spans.find((x) => x.kind === 'consumer')!;
    const calls = spans.filter((x) => x.kind === 'client');
    expect(calls.map((c) => [c.name, c.parentSpanId === delivery.spanId, c.traceId === delivery.traceId, c.attributes['loupe.context']])).toEqual([
      ['set', true, true, 'delivery'],
      ['get', false, false, 'new'],
      ['get', false, false, 'new'],
    ]);
  });

  it("parents a pure consumer's calls under the delivery its process received when a network thread of its own reads the fetches (loupe.context delivery-process); not while the process serves a request", () => {
    const s = new Script();
    // ship (pid 3): a Kafka-style consumer whose network thread 31 reads the fetch and whose thread 32 writes each record to memcached.
    const [nats] = s.connection({ pid: 3, tid: 31, fd: 4, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [cache] = s.connection({ pid: 3, tid: 32, fd: 5, port: 40001 }, { pid: 8, tid: 8, fd: 4, port: 11211 });
    const [, served] = s.connection({ pid: 7, tid: 71, fd: 6, port: 40002 }, { pid: 3, tid: 33, fd: 6, port: 8080 });
    s.recv(nats, 'INFO {"server_id":"N"}\r\n', { at: 1_000n });
    s.recv(nats, 'MSG orders 1 5\r\nhello\r\n', { at: 10_000n });
    s.send(cache, 'set order:1 0 0 5\r\nhello\r\n', { at: 20_000n });
    s.recv(cache, 'STORED\r\n', { at: 30_000n });
    // A request the process serves meanwhile: its calls could be for it, so none is given the delivery.
    s.recv(served, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', { at: 40_000n });
    s.recv(nats, 'MSG orders 1 5\r\nworld\r\n', { at: 50_000n });
    s.send(cache, 'set order:2 0 0 5\r\nworld\r\n', { at: 60_000n });
    s.recv(cache, 'STORED\r\n', { at: 70_000n });
    s.send(served, 'HTTP/1.1 204 No Content\r\n\r\n', { at: 80_000n });
    const spans = spansOf(s.events);
    const deliveries = spans.filter((x) => x.kind === 'consumer').sort((a, b) => Number(a.startNs - b.startNs));
    const calls = spans.filter((x) => x.kind === 'client' && x.pid === 3).sort((a, b) => Number(a.startNs - b.startNs));
    expect(calls.map((c) => [c.name, c.parentSpanId === deliveries[0]!.spanId, c.attributes['loupe.context']])).toEqual([
      ['set', true, 'delivery-process'],
      ['set', false, 'new'],
    ]);
  });
});

describe('the two ends of a message through a broker', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const headers = `NATS/1.0\r\ntraceparent: 00-${TRACE}-00f067aa0ba902b7-01\r\n\r\n`;
  const hpub = (payload: string) => `HPUB orders ${headers.length} ${headers.length + payload.length}\r\n${headers}${payload}\r\n`;
  const hmsg = (payload: string) => `HMSG orders 1 ${headers.length} ${headers.length + payload.length}\r\n${headers}${payload}\r\n`;

  /** front (pid 1) publishes "a" with trace context and "b" without; back (pid 2) receives both; the broker (pid 9) is not watched. */
  function published(order: 'producer first' | 'consumer first' | 'no producer'): Span[] {
    const s = new Script();
    const [pub] = s.connection({ pid: 1, tid: 11, fd: 4, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 4222 });
    const [sub] = s.connection({ pid: 2, tid: 21, fd: 4, port: 40001 }, { pid: 9, tid: 9, fd: 5, port: 4222 });
    const produce = () => {
      s.send(pub, hpub('a'), { at: 10_000n });
      s.send(pub, 'PUB orders 1\r\nb\r\n', { at: 11_000n });
    };
    if (order === 'producer first') produce();
    s.recv(sub, hmsg('a'), { at: 20_000n });
    s.recv(sub, 'MSG orders 1 1\r\nb\r\n', { at: 21_000n });
    // A producer preempted at its write's exit: its records come after the deliveries they caused.
    if (order === 'consumer first') produce();
    return spansOf(s.events);
  }

  it("joins each delivery to its publish whichever record comes first: the carried context's as its parent (loupe.context message), the other's as a link", () => {
    for (const order of ['producer first', 'consumer first'] as const) {
      const spans = published(order);
      const [pa, pb] = ['a', 'b'].map((body) =>
        spans.find((x) => x.kind === 'producer' && x.attributes['messaging.message.body.size'] === body.length && (body === 'a') === (x.traceId === TRACE))!,
      );
      const consumers = spans.filter((x) => x.kind === 'consumer').sort((x, y) => Number(x.startNs - y.startNs));
      expect(consumers, order).toHaveLength(2);
      expect([consumers[0]!.parentSpanId, consumers[0]!.traceId, consumers[0]!.attributes['loupe.context'], consumers[0]!.links], order).toEqual([
        pa!.spanId,
        TRACE,
        'message',
        undefined,
      ]);
      expect(
        consumers[1]!.links?.map((l) => l.spanId),
        order,
      ).toEqual([pb!.spanId]);
    }
  });

  it('sends a delivery whose publish never comes out as it was, under the context it carried', () => {
    const consumers = published('no producer').filter((x) => x.kind === 'consumer');
    expect(consumers.map((c) => [c.parentSpanId, c.attributes['loupe.context'], c.links])).toEqual([
      ['00f067aa0ba902b7', 'traceparent', undefined],
      ['', 'new', undefined],
    ]);
  });
});

describe('trace context the kernel chose or a TCP option carried', () => {
  const CALLER_TRACE = 'aa'.repeat(16);
  const CALLER_SPAN = 'bb'.repeat(8);
  const KERNEL_TRACE = 'cc'.repeat(16);
  const TAG_SPAN = 'dd'.repeat(8);
  const endpoint = (port: number) => ({ addr: '10.0.0.1', port });

  /** One host's view: front (pid 1) serves a request a remote caller sent, and calls a remote backend on the same thread. */
  function frontAlone(opts: { serverOrigin: 'tcp_option' | 'new'; tagOrigin: 'thread' | 'new'; tagTrace?: string; requestOffset?: number; tagOffset?: number }): Span[] {
    const s = new Script();
    const served = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: endpoint(8080), remote: { addr: '10.0.0.9', port: 40000 }, cookie: 101n });
    const calling = s.open({ pid: 1, tid: 11, fd: 6, role: 'client', local: endpoint(40001), remote: { addr: '10.0.0.2', port: 9090 }, cookie: 102n });
    s.traceContext(served, 'server_request', opts.serverOrigin, opts.serverOrigin === 'tcp_option' ? { traceId: CALLER_TRACE, spanId: CALLER_SPAN } : { traceId: KERNEL_TRACE });
    s.recv(served, get('/a'));
    const trace = opts.serverOrigin === 'tcp_option' ? CALLER_TRACE : KERNEL_TRACE;
    s.traceContext(calling, 'client_call', opts.tagOrigin, { traceId: opts.tagTrace ?? trace, spanId: TAG_SPAN }, { offset: opts.tagOffset ?? 0 });
    if (opts.requestOffset) s.send(calling, 'x'.repeat(opts.requestOffset)); // bytes before the request (an earlier exchange's)
    s.send(calling, get('/b'));
    s.recv(calling, ok());
    s.send(served, ok());
    return spansOf(s.events);
  }

  it("parents a server span to the calling span a TCP option named (loupe.context tcp-option), and its thread's call takes the span id the kernel put on the wire", () => {
    const spans = frontAlone({ serverOrigin: 'tcp_option', tagOrigin: 'thread' });
    const server = find(spans, 'front', 'server');
    const call = find(spans, 'front', 'client');
    expect(server).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN, parentIsRemote: true });
    expect(server.attributes['loupe.context']).toBe('tcp-option');
    expect(call).toMatchObject({ traceId: CALLER_TRACE, spanId: TAG_SPAN, parentSpanId: server.spanId });
    expect(call.attributes['loupe.context']).toBe('thread');
  });

  it('gives a server span with no caller the trace the kernel began, which its calls carry on the wire', () => {
    const spans = frontAlone({ serverOrigin: 'new', tagOrigin: 'thread' });
    const server = find(spans, 'front', 'server');
    expect(server).toMatchObject({ traceId: KERNEL_TRACE, parentSpanId: '' });
    expect(server.attributes['loupe.context']).toBe('new');
    expect(find(spans, 'front', 'client')).toMatchObject({ traceId: KERNEL_TRACE, spanId: TAG_SPAN });
  });

  it('keeps a call under its parent when the kernel tagged it with another thread-served trace, and merges no traces for it', () => {
    const other = 'ee'.repeat(16);
    const spans = frontAlone({ serverOrigin: 'new', tagOrigin: 'thread', tagTrace: other });
    const server = find(spans, 'front', 'server');
    expect(find(spans, 'front', 'client')).toMatchObject({ traceId: KERNEL_TRACE, spanId: TAG_SPAN, parentSpanId: server.spanId });
    expect(spans.every((s) => s.traceId !== other)).toBe(true);
  });

  it('takes for a request the latest context at or before its first byte: a tag on an earlier segment of the stream names it, one past it a later request', () => {
    const first = get('/b0');
    const calls = (secondTagOffset: number) => {
      const s = new Script();
      const calling = s.open({ pid: 1, tid: 11, fd: 6, role: 'client', local: endpoint(40001), remote: { addr: '10.0.0.2', port: 9090 }, cookie: 102n });
      s.traceContext(calling, 'client_call', 'new', { traceId: KERNEL_TRACE, spanId: 'd0'.repeat(8) }, { offset: 0, length: 10 });
      s.traceContext(calling, 'client_call', 'new', { traceId: KERNEL_TRACE, spanId: TAG_SPAN }, { offset: secondTagOffset, length: 10 });
      s.send(calling, first);
      s.recv(calling, ok());
      s.send(calling, get('/b1'));
      s.recv(calling, ok());
      return spansOf(s.events).map((x) => [String(x.attributes['url.full']), x.spanId]);
    };
    // The second tag on a segment within the first request (an HTTP/2 client's SETTINGS, say): the second request's.
    expect(calls(10)).toContainEqual([expect.stringContaining('b1'), TAG_SPAN]);
    expect(calls(10)).toContainEqual([expect.stringContaining('b0'), 'd0'.repeat(8)]);
    // Past the second request's first byte: no request of these took it.
    expect(calls(first.length + 1).map(([, id]) => id)).not.toContain(TAG_SPAN);
  });

  it("labels a server span the option parented as paired when its client is watched on the same host, though the client's record comes after it", () => {
    const s = new Script();
    const [c, sv] = [
      { addr: '127.0.0.1', port: 40000 },
      { addr: '127.0.0.1', port: 8080 },
    ];
    const client = s.open({ pid: 3, tid: 3, fd: 3, role: 'client', local: c, remote: sv, cookie: 201n });
    const server = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: sv, remote: c, cookie: 202n });
    s.traceContext(server, 'server_request', 'tcp_option', { traceId: CALLER_TRACE, spanId: TAG_SPAN });
    s.recv(server, get('/a')); // the reader's record first: the writer was preempted at its syscall's exit
    s.traceContext(client, 'client_call', 'new', { traceId: CALLER_TRACE, spanId: TAG_SPAN });
    s.send(client, get('/a'));
    s.send(server, ok());
    s.recv(client, ok());
    const spans = spansOf(s.events);
    const curl = find(spans, 'curl', 'client');
    const front = find(spans, 'front', 'server');
    expect(curl).toMatchObject({ traceId: CALLER_TRACE, spanId: TAG_SPAN });
    expect(front).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: TAG_SPAN });
    expect(front.attributes).toMatchObject({ 'loupe.context': 'connection-pair', 'loupe.paired_late': true });
  });

  it("places a tagged call of an event loop by the loop's own order as without the tag, keeping the tag's span id, and its fresh trace stands for the request's", () => {
    const s = new Script();
    const at = (port: number) => ({ addr: '10.0.0.1', port });
    const n1 = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: at(8080), remote: at(40000), cookie: 301n });
    const n2 = s.open({ pid: 1, tid: 11, fd: 7, role: 'server', local: at(8080), remote: at(40002), cookie: 302n });
    s.recv(n1, get('/one'));
    s.recv(n2, get('/two'));
    const up = s.open({ pid: 1, tid: 11, fd: 8, role: 'client', local: at(40003), remote: { addr: '10.0.0.2', port: 9090 }, cookie: 303n });
    const fresh = 'f0'.repeat(16);
    s.traceContext(up, 'client_call', 'new', { traceId: fresh, spanId: TAG_SPAN });
    s.send(up, get('/up/two'));
    s.recv(up, ok());
    // A span that came with the fresh trace (the backend's, as a merged replay joins it) lands in the request's trace.
    const back = s.open({ pid: 2, tid: 21, fd: 4, role: 'server', local: { addr: '10.0.0.2', port: 9090 }, remote: at(40003), cookie: 304n });
    s.traceContext(back, 'server_request', 'tcp_option', { traceId: fresh, spanId: TAG_SPAN });
    s.recv(back, get('/up/two'));
    s.send(back, ok());
    s.send(n1, ok());
    s.send(n2, ok());
    const spans = spansOf(s.events);
    const two = spans.find((x) => x.kind === 'server' && x.attributes['url.path'] === '/two')!;
    const call = find(spans, 'front', 'client');
    expect(call).toMatchObject({ spanId: TAG_SPAN, parentSpanId: two.spanId, traceId: two.traceId });
    expect(call.attributes['loupe.context']).toBe('event-loop');
    expect(find(spans, 'back', 'server')).toMatchObject({ traceId: two.traceId, parentSpanId: TAG_SPAN });
  });

  it("parents an event loop's call to the open request whose trace the kernel sent, where the loop's order alone would name another", () => {
    const s = new Script();
    const at = (port: number) => ({ addr: '10.0.0.1', port });
    const [oneTrace, twoTrace] = ['a1'.repeat(16), 'a2'.repeat(16)];
    const n1 = s.open({ pid: 1, tid: 11, fd: 5, role: 'server', local: at(8080), remote: at(40000), cookie: 401n });
    const n2 = s.open({ pid: 1, tid: 11, fd: 7, role: 'server', local: at(8080), remote: at(40002), cookie: 402n });
    s.traceContext(n1, 'server_request', 'new', { traceId: oneTrace });
    s.recv(n1, get('/one'));
    // The upstream connection for /one was opened here (the kernel noted it), then /two was read before it was up.
    s.traceContext(n2, 'server_request', 'new', { traceId: twoTrace });
    s.recv(n2, get('/two'));
    const up = s.open({ pid: 1, tid: 11, fd: 8, role: 'client', local: at(40003), remote: { addr: '10.0.0.2', port: 9090 }, cookie: 403n });
    s.traceContext(up, 'client_call', 'thread', { traceId: oneTrace, spanId: TAG_SPAN });
    s.send(up, get('/up/one'));
    s.recv(up, ok());
    s.send(n1, ok());
    s.send(n2, ok());
    const spans = spansOf(s.events);
    const one = spans.find((x) => x.kind === 'server' && x.attributes['url.path'] === '/one')!;
    const call = find(spans, 'front', 'client');
    expect(call).toMatchObject({ spanId: TAG_SPAN, parentSpanId: one.spanId, traceId: oneTrace });
    expect(call.attributes['loupe.context']).toBe('event-loop');
  });
});
