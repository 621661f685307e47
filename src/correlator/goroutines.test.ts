import { describe, expect, it } from 'vitest';
import { HEADER } from '../../test/helpers';
import { get, ok, Script, type Sock } from '../../test/script';
import { Pipeline } from '../pipeline/pipeline';
import { DEFAULT_CORRELATOR_OPTIONS, type CorrelatorOptions } from './correlator';
import type { Span } from './span';
import type { Event } from '../events/types';

const FRONT = 10; // a Go program
const BACK = 20;
const CURL = 30;

function run(events: Event[], options: CorrelatorOptions = DEFAULT_CORRELATOR_OPTIONS) {
  const spans: Span[] = [];
  const p = new Pipeline(
    {
      ...HEADER,
      processes: [
        { pid: FRONT, exe: '/srv/front' },
        { pid: BACK, exe: '/srv/back' },
        { pid: CURL, exe: '/usr/bin/curl' },
      ],
    },
    [{ onSpan: (s) => spans.push(s) }],
    options,
  );
  p.push(events);
  p.finish();
  return { spans, stats: p.correlator.stats, state: p.correlator.stateSize() };
}

const byPath = (spans: Span[], kind: string, path: string) =>
  spans.find((s) => s.kind === kind && (s.attributes['url.path'] === path || String(s.attributes['url.full'] ?? '').endsWith(path)))!;

/**
 * curl -> front (Go). The handler goroutine `handler` serves the request; the
 * call to the backend is made from goroutine `caller` (the handler itself or a
 * descendant). Threads are scrambled on purpose: Go moves goroutines between
 * threads, so the thread must not decide anything.
 */
function goScenario(opts: { lineage: number[]; callerExitsParentFirst?: boolean; callAfterResponse?: boolean }) {
  const s = new Script();
  const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
  s.send(curl, get('/factorial/5'));
  s.recv(front, get('/factorial/5'), { tid: 101 });
  const handler = opts.lineage[0]!;
  s.goRequest(FRONT, handler, 'http_server', 'start', { fd: 7, tid: 102 });
  for (let i = 1; i < opts.lineage.length; i++) s.goroutine(FRONT, opts.lineage[i]!, opts.lineage[i - 1]!, { tid: 103 });
  const caller = opts.lineage[opts.lineage.length - 1]!;
  const callBackend = () => {
    s.goRequest(FRONT, caller, 'http_client', 'start', { tid: 104 });
    const [out, back] = s.connection({ pid: FRONT, tid: 105, fd: 9, port: 40001 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(out, get('/compute'), { tid: 105 });
    s.recv(back, get('/compute'));
    s.send(back, ok('120'));
    s.recv(out, ok('120'), { tid: 106 });
    s.goRequest(FRONT, caller, 'http_client', 'end', { tid: 106 });
  };
  if (!opts.callAfterResponse) callBackend();
  s.send(front, ok('5! = 120'), { tid: 107 });
  s.goRequest(FRONT, handler, 'http_server', 'end', { status: 200, tid: 107 });
  s.recv(curl, ok('5! = 120'));
  if (opts.callerExitsParentFirst) s.goroutine(FRONT, handler, 0, { exit: true });
  if (opts.callAfterResponse) callBackend();
  return s.events;
}

describe('goroutine tree', () => {
  it('parents a call made on the handler goroutine to the server request, with in-queue and processing spans', () => {
    const { spans } = run(goScenario({ lineage: [1] }));
    const server = byPath(spans, 'server', '/factorial/5');
    const call = byPath(spans, 'client', '/compute');
    expect(call.parentSpanId).toBe(server.spanId);
    expect(call.attributes['loupe.context']).toBe('goroutine');
    expect(byPath(spans, 'server', '/compute').parentSpanId).toBe(call.spanId);
    const phases = spans.filter((s) => s.parentSpanId === server.spanId && s.kind === 'internal');
    expect(phases.map((p) => p.name)).toEqual(['in queue', 'processing']);
    const [queue, work] = phases;
    expect(queue!.startNs).toBe(server.startNs);
    expect(queue!.endNs).toBe(work!.startNs);
    expect(work!.endNs).toBeLessThanOrEqual(server.endNs);
    expect(queue!.endNs - queue!.startNs).toBeGreaterThan(0n);
  });

  it('follows descendants at any depth', () => {
    const { spans } = run(goScenario({ lineage: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }));
    expect(byPath(spans, 'client', '/compute').parentSpanId).toBe(byPath(spans, 'server', '/factorial/5').spanId);
  });

  it('keeps the context of a goroutine whose ancestors exited (async work after the response)', () => {
    const { spans } = run(goScenario({ lineage: [1, 2], callerExitsParentFirst: true, callAfterResponse: true }));
    const call = byPath(spans, 'client', '/compute');
    expect(call.parentSpanId).toBe(byPath(spans, 'server', '/factorial/5').spanId);
    expect(call.attributes['loupe.context']).toBe('goroutine');
  });

  it("never lets a reused goroutine id carry the previous user's request", () => {
    const s = new Script();
    s.events.push(...goScenario({ lineage: [1, 2] }));
    s.ts = s.events[s.events.length - 1]!.ts;
    s.goroutine(FRONT, 2, 0, { exit: true });
    s.goroutine(FRONT, 2, 999); // id 2 reused by a goroutine of an idle parent
    s.goRequest(FRONT, 2, 'http_client', 'start');
    const [out] = s.connection({ pid: FRONT, tid: 101, fd: 11, port: 40005 }, { pid: BACK, tid: 201, fd: 8, port: 9090 });
    s.send(out, get('/unrelated'), { tid: 101 }); // same thread that read the earlier request: must not matter either
    s.recv(out, ok());
    const { spans } = run(s.events);
    const call = byPath(spans, 'client', '/unrelated');
    expect(call.parentSpanId).toBe('');
    expect(call.attributes['loupe.context']).toBe('new');
  });

  it('forgets an exited goroutine even when the create of its reuse was lost', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    s.send(curl, get('/long'));
    s.recv(front, get('/long'));
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7 });
    s.goroutine(FRONT, 2, 1);
    s.goroutine(FRONT, 2, 0, { exit: true });
    s.goRequest(FRONT, 2, 'http_client', 'start'); // goid 2 again: its create record was lost
    const [out] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(out, get('/after-exit'));
    s.recv(out, ok());
    const { spans } = run(s.events);
    expect(byPath(spans, 'client', '/after-exit').parentSpanId).toBe('');
  });

  it('ignores threads in a Go program: a call from the thread serving a request is not its child by that alone', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    s.send(curl, get('/a'));
    s.recv(front, get('/a'), { tid: 101 });
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7 });
    s.goroutine(FRONT, 3, 999); // a background goroutine, serving nothing, runs on the same thread
    s.goRequest(FRONT, 3, 'http_client', 'start', { fd: 11 });
    const [out] = s.connection({ pid: FRONT, tid: 101, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(out, get('/background'), { tid: 101 });
    s.recv(out, ok(), { tid: 101 });
    const { spans } = run(s.events);
    expect(byPath(spans, 'client', '/background').parentSpanId).toBe('');
    expect(byPath(spans, 'client', '/background').attributes['loupe.context']).toBe('new');
  });

  it('binds a handler that starts before the request body has arrived (Go reads bodies in the handler)', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    const head = 'POST /upload HTTP/1.1\r\nHost: f\r\nContent-Length: 4\r\n\r\n';
    s.send(curl, `${head}body`);
    s.recv(front, head);
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7 });
    s.recv(front, 'body');
    s.send(front, ok());
    s.goRequest(FRONT, 1, 'http_server', 'end');
    s.recv(curl, ok());
    const { spans } = run(s.events);
    const server = byPath(spans, 'server', '/upload');
    const queue = spans.find((x) => x.name === 'in queue')!;
    expect(queue.parentSpanId).toBe(server.spanId);
    expect(queue.endNs).toBeGreaterThan(queue.startNs);
  });

  it('links a call by connection fd when the Go event names one, even with several calls pending', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    s.send(curl, get('/a'));
    s.recv(front, get('/a'));
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7 });
    s.goroutine(FRONT, 2, 999); // not serving anything
    s.goRequest(FRONT, 2, 'http_client', 'start', { fd: 12 });
    s.goRequest(FRONT, 1, 'http_client', 'start', { fd: 11 });
    const [o1] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    const [o2] = s.connection({ pid: FRONT, tid: 150, fd: 12, port: 40011 }, { pid: BACK, tid: 202, fd: 5, port: 9090 });
    s.send(o2, get('/from-idle'));
    s.send(o1, get('/from-handler'));
    s.recv(o1, ok());
    s.recv(o2, ok());
    const { spans } = run(s.events);
    expect(byPath(spans, 'client', '/from-handler').parentSpanId).toBe(byPath(spans, 'server', '/a').spanId);
    expect(byPath(spans, 'client', '/from-idle').parentSpanId).toBe('');
  });

  it('does not guess between several Go calls pending with no fd', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    s.send(curl, get('/a'));
    s.recv(front, get('/a'));
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7 });
    s.goroutine(FRONT, 2, 1);
    s.goroutine(FRONT, 3, 999);
    s.goRequest(FRONT, 2, 'http_client', 'start');
    s.goRequest(FRONT, 3, 'http_client', 'start');
    const [o1] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(o1, get('/which'));
    s.recv(o1, ok());
    const { spans } = run(s.events);
    expect(byPath(spans, 'client', '/which').parentSpanId).toBe('');
  });
});

/**
 * The kernel side chooses the ids of Go server and client spans (it puts the
 * client's on the wire with sk_msg before user space sees anything), so the
 * correlator must take them: the next process knows the call by them.
 */
describe('kernel-chosen ids', () => {
  const T_KERNEL = 'aa'.repeat(16);
  const S_HANDLER = '1111111111111111';
  const tp = (span: string) => `00-${T_KERNEL}-${span}-01`;
  const request = (path: string, host: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
  const WORKER_B = 40;

  function fanOut() {
    const s = new Script();
    const [curl, front] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: FRONT, tid: 101, fd: 7, port: 8080 });
    s.send(curl, get('/compute'));
    s.recv(front, get('/compute'));
    s.goRequest(FRONT, 1, 'http_server', 'start', { fd: 7, method: 'GET', path: '/compute', traceparent: tp(S_HANDLER) });
    s.goroutine(FRONT, 2, 1);
    s.goroutine(FRONT, 3, 1);
    // Two calls with the same method and path to two workers; their bytes go out in the other order.
    s.goRequest(FRONT, 2, 'http_client', 'start', { method: 'GET', path: '/multiply', host: 'worker-a:9090', traceparent: tp('000000000000000a') });
    s.goRequest(FRONT, 3, 'http_client', 'start', { method: 'GET', path: '/multiply', host: 'worker-b:9091', traceparent: tp('000000000000000b') });
    const [toB, b] = s.connection({ pid: FRONT, tid: 150, fd: 12, port: 40011 }, { pid: WORKER_B, tid: 401, fd: 5, port: 9091 });
    const [toA, a] = s.connection({ pid: FRONT, tid: 151, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(toB, request('/multiply?from=1&to=2', 'worker-b:9091'));
    s.recv(b, request('/multiply?from=1&to=2', 'worker-b:9091', `traceparent: ${tp('000000000000000b')}\r\n`));
    s.send(toA, request('/multiply?from=3&to=4', 'worker-a:9090'));
    s.recv(a, request('/multiply?from=3&to=4', 'worker-a:9090', `traceparent: ${tp('000000000000000a')}\r\n`));
    for (const [out, srv] of [
      [toB, b],
      [toA, a],
    ] as const) {
      s.send(srv, ok('2'));
      s.recv(out, ok('2'));
    }
    s.send(front, ok('24'));
    s.recv(curl, ok('24'));
    return s.events;
  }

  it('gives a Go server span and each client call the span ids the kernel chose, matching calls by host', () => {
    const { spans } = run(fanOut());
    const handler = byPath(spans, 'server', '/compute');
    expect(handler.spanId).toBe(S_HANDLER);
    const toA = spans.find((s) => s.kind === 'client' && s.pid === FRONT && String(s.attributes['server.port']) === '9090')!;
    const toB = spans.find((s) => s.kind === 'client' && s.pid === FRONT && String(s.attributes['server.port']) === '9091')!;
    expect([toA.spanId, toB.spanId]).toEqual(['000000000000000a', '000000000000000b']);
    for (const call of [toA, toB]) {
      expect(call.parentSpanId).toBe(handler.spanId);
      expect(call.attributes['loupe.context']).toBe('goroutine');
    }
  });

  it("puts a server that got the kernel's trace id in the trace the correlator knows that request by", () => {
    const { spans } = run(fanOut());
    const handler = byPath(spans, 'server', '/compute');
    // curl -> front joined by the connection pair: the correlator's trace, not the kernel's.
    expect(handler.attributes['loupe.context']).toBe('connection-pair');
    expect(handler.traceId).not.toBe(T_KERNEL);
    for (const pid of [BACK, WORKER_B]) {
      const worker = spans.find((s) => s.kind === 'server' && s.pid === pid)!;
      expect(worker.attributes['loupe.context']).toBe('traceparent');
      expect(worker.traceId).toBe(handler.traceId);
    }
    const toB = spans.find((s) => s.kind === 'client' && String(s.attributes['server.port']) === '9091')!;
    expect(spans.find((s) => s.pid === WORKER_B && s.kind === 'server')!.parentSpanId).toBe(toB.spanId);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
  });

  it("starts the kernel's trace for a call no request is behind", () => {
    const s = new Script();
    s.goroutine(FRONT, 5, 999);
    s.goRequest(FRONT, 5, 'http_client', 'start', { method: 'GET', path: '/tick', host: 'svc', traceparent: tp('00000000000000cc') });
    const [out, srv] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(out, get('/tick'));
    s.recv(srv, get('/tick', `traceparent: ${tp('00000000000000cc')}\r\n`));
    s.send(srv, ok());
    s.recv(out, ok());
    const { spans } = run(s.events);
    const call = byPath(spans, 'client', '/tick');
    expect(call).toMatchObject({ traceId: T_KERNEL, spanId: '00000000000000cc', parentSpanId: '' });
    expect(call.attributes['loupe.context']).toBe('new');
    expect(byPath(spans, 'server', '/tick')).toMatchObject({ traceId: T_KERNEL, parentSpanId: '00000000000000cc' });
  });

  it('names a call by its latest start when the goroutine started it twice before its bytes (the ids the kernel put on the wire)', () => {
    const s = new Script();
    s.goroutine(FRONT, 5, 999);
    // Seen in a live run on a keep-alive connection opened before the agent: two starts, one end, the second's ids on the wire.
    s.goRequest(FRONT, 5, 'http_client', 'start', { method: 'GET', path: '/later', host: 'svc', traceparent: tp('00000000000000ee') });
    s.goRequest(FRONT, 5, 'http_client', 'start', { method: 'GET', path: '/later', host: 'svc', traceparent: tp('00000000000000ff') });
    const [out, srv] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(out, get('/later'));
    s.recv(srv, get('/later', `traceparent: ${tp('00000000000000ff')}\r\n`));
    s.send(srv, ok());
    s.recv(out, ok());
    s.goRequest(FRONT, 5, 'http_client', 'end', { status: 200 });
    const { spans } = run(s.events);
    expect(byPath(spans, 'client', '/later').spanId).toBe('00000000000000ff');
    expect(byPath(spans, 'server', '/later').parentSpanId).toBe('00000000000000ff');
  });

  it("keeps the kernel's ids for a call whose end comes before its request's bytes (the writer preempted at the syscall exit)", () => {
    const s = new Script();
    s.goroutine(FRONT, 5, 999);
    s.goRequest(FRONT, 5, 'http_client', 'start', { method: 'GET', path: '/tick', host: 'svc', traceparent: tp('00000000000000cc') });
    const [out, srv] = s.connection({ pid: FRONT, tid: 150, fd: 11, port: 40010 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.recv(srv, get('/tick', `traceparent: ${tp('00000000000000cc')}\r\n`));
    s.send(srv, ok());
    s.recv(out, ok(), { tid: 151 });
    s.goRequest(FRONT, 5, 'http_client', 'end', { status: 200, tid: 151 });
    s.send(out, get('/tick'), { tid: 150 });
    // A call that returned and whose bytes never came names nothing more than a second later.
    s.goRequest(FRONT, 5, 'http_client', 'start', { method: 'GET', path: '/gone', host: 'svc', traceparent: tp('00000000000000dd') });
    s.goRequest(FRONT, 5, 'http_client', 'end', { status: 200 });
    const [out2, srv2] = s.connection({ pid: FRONT, tid: 150, fd: 12, port: 40011 }, { pid: BACK, tid: 202, fd: 5, port: 9090 });
    s.send(out2, get('/gone'), { at: s.ts + 2_000_000_000n });
    s.recv(srv2, get('/gone'));
    s.send(srv2, ok());
    s.recv(out2, ok());
    const { spans, stats, state } = run(s.events);
    expect(byPath(spans, 'client', '/tick')).toMatchObject({ traceId: T_KERNEL, spanId: '00000000000000cc' });
    expect(byPath(spans, 'server', '/tick')).toMatchObject({ traceId: T_KERNEL, parentSpanId: '00000000000000cc' });
    expect(byPath(spans, 'client', '/gone').spanId).not.toBe('00000000000000dd');
    expect(stats.unmatchedGoRequests).toBe(1);
    expect(state.goClientCalls).toBe(0);
  });
});

describe('bounded state', () => {
  it('ends a request nobody answers after the response timeout, on event time, and drops its late answer', () => {
    const s = new Script();
    const [c, srv] = s.connection({ pid: CURL, tid: CURL, fd: 3, port: 40000 }, { pid: BACK, tid: 201, fd: 4, port: 9090 });
    s.send(c, get('/slow'));
    s.recv(srv, get('/slow'));
    // unrelated traffic keeps the clock moving for 70 s
    const [c2, s2] = s.connection({ pid: CURL, tid: CURL, fd: 5, port: 40001 }, { pid: BACK, tid: 202, fd: 6, port: 9090 });
    for (let i = 0; i < 70; i++) {
      s.send(c2, get(`/tick/${i}`), { at: s.ts + 1_000_000_000n });
      s.recv(s2, get(`/tick/${i}`));
      s.send(s2, ok());
      s.recv(c2, ok());
    }
    s.send(srv, ok('late'));
    s.recv(c, ok('late'));
    const { spans, stats } = run(s.events);
    const slow = spans.filter((x) => x.attributes['url.path'] === '/slow' || String(x.attributes['url.full']).endsWith('/slow'));
    expect(slow).toHaveLength(2);
    for (const x of slow) {
      expect(x.status).toEqual({ code: 'error', message: 'no response within 60 s' });
      expect(x.endNs - x.startNs).toBe(60_000_000_000n);
    }
    expect(spans.indexOf(slow[0]!)).toBeLessThan(spans.findIndex((x) => x.attributes['url.path'] === '/tick/69')); // ended on time, not at the end
    expect(stats.orphanResponses).toBe(2); // the late answers, seen by both ends
  });

  it('caps goroutine entries, evicting the least recently used', () => {
    const s = new Script();
    for (let i = 1; i <= 500; i++) s.goroutine(FRONT, i, 0);
    const { stats, state } = run(s.events, { ...DEFAULT_CORRELATOR_OPTIONS, maxGoroutines: 100 });
    expect(state.goroutines).toBe(100);
    expect(stats.evictedGoroutines).toBe(400);
  });

  it('holds no state for a connection after it closes or goes idle', () => {
    const s = new Script();
    let socks: [Sock, Sock] | undefined;
    for (let i = 0; i < 50; i++) {
      socks = s.connection({ pid: CURL, tid: CURL, fd: 100 + i, port: 41000 + i }, { pid: BACK, tid: 201, fd: 200 + i, port: 9090 });
      s.send(socks[0], get(`/x/${i}`));
      s.recv(socks[1], get(`/x/${i}`));
      s.send(socks[1], ok());
      s.recv(socks[0], ok());
      if (i % 2 === 0) {
        s.close(socks[0]);
        s.close(socks[1]);
      }
    }
    // ten minutes later, one more event: the idle ones are forgotten
    s.goroutine(FRONT, 1, 0);
    s.events[s.events.length - 1]!.ts += 600_000_000_000n;
    const spans: Span[] = [];
    const p = new Pipeline(HEADER, [{ onSpan: (x) => spans.push(x) }]);
    p.push(s.events);
    expect(p.correlator.stateSize()).toMatchObject({ inFlight: 0, clientsByTuple: 0, connsByFd: 0, serving: 0 });
    expect(spans).toHaveLength(100);
  });
});
