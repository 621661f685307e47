/**
 * Several hosts' captures replayed as one (`loupe replay a b c`): three hosts
 * whose boot clocks differ by seconds and whose wall clocks are off by
 * milliseconds, with colliding pids. The merged replay must find each host's
 * offset from the traffic within the bound it states, join the call chain
 * across the hosts into one trace, and give the same bytes in any order of
 * arguments.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CaptureHeader } from '../src/events/capture';
import { decodeRecord, encodeEvent } from '../src/events/codec';
import { openCapture } from '../src/sources/capture-file';
import { headerToJsonLine, recordToJsonLine } from '../src/events/jsonl';
import type { Event } from '../src/events/types';
import { mergeCaptures, PID_SPACE } from '../src/pipeline/merge';
import { HEADER, ROOT, spanLines, tempDir, type SpanLine } from './helpers';
import { get, ok, Script } from './script';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const BOOT = 1_700_000_000_000_000_000n;
/** What to add to each host's record times to put them on alpha's clock: the truth the merge must find. */
const TRUE_OFFSET = { alpha: 0n, beta: 2_500_000_777n, gamma: -1_000_000_321n };
/** How far each host's wall clock (its header's boot time) is from the truth. */
const WALL_ERROR = { alpha: 0n, beta: 2_000_000n, gamma: -3_000_000n };

type Host = keyof typeof TRUE_OFFSET;

/** curl on alpha calls front on beta, whose handler calls back on gamma; pids: curl 3, front 3 (the same number on its host), back 9. */
function hosts(extra?: (s: Script) => void): Record<Host, Event[]> {
  const s = new Script();
  const curl = s.open({ pid: 3, tid: 3, fd: 3, role: 'client', local: { addr: '10.9.0.1', port: 40000 }, remote: { addr: '10.9.0.2', port: 8080 } });
  const front = s.open({ pid: 7, tid: 7, fd: 5, role: 'server', local: { addr: '10.9.0.2', port: 8080 }, remote: { addr: '10.9.0.1', port: 40000 } });
  s.send(curl, get('/a'));
  s.recv(front, get('/a'));
  const out = s.open({ pid: 7, tid: 7, fd: 6, role: 'client', local: { addr: '10.9.0.2', port: 41000 }, remote: { addr: '10.9.0.3', port: 9090 } });
  const back = s.open({ pid: 9, tid: 9, fd: 4, role: 'server', local: { addr: '10.9.0.3', port: 9090 }, remote: { addr: '10.9.0.2', port: 41000 } });
  s.send(out, get('/b'));
  s.recv(back, get('/b'));
  s.send(back, ok('back'));
  s.recv(out, ok('back'));
  s.send(front, ok('front'));
  s.recv(curl, ok('front'));
  extra?.(s);
  // Each socket its own cookie, as the kernel gives them.
  const events = s.events.map((e) => ('cookie' in e ? { ...e, cookie: BigInt(e.pid * 100 + ('fd' in e ? e.fd : 0)) } : e));
  const on = (pid: number, host: Host) =>
    events
      .filter((e) => e.pid === pid)
      .map((e) => ({ ...e, ts: e.ts + 10_000_000_000n - TRUE_OFFSET[host], pid: host === 'beta' ? 3 : e.pid, tid: host === 'beta' ? 3 : e.tid }) as Event);
  return { alpha: on(3, 'alpha'), beta: on(7, 'beta'), gamma: on(9, 'gamma') };
}

function writeHost(dir: string, host: Host, events: Event[], exe: string, pid: number): string {
  const header: CaptureHeader = {
    ...HEADER,
    seed: host === 'alpha' ? '00000000000000a1' : host === 'beta' ? '00000000000000b2' : '00000000000000c3',
    host: { ...HEADER.host, hostname: host },
    bootTimeNs: String(BOOT + TRUE_OFFSET[host] + WALL_ERROR[host]),
    processes: [{ pid, exe }],
  };
  const file = path.join(dir, `${host}.jsonl`);
  fs.writeFileSync(file, [headerToJsonLine(header), ...events.map((e) => recordToJsonLine(encodeEvent(e)))].join('\n') + '\n');
  return file;
}

describe('several hosts replayed as one', () => {
  let files: Record<Host, string>;
  beforeAll(() => {
    const dir = tempDir();
    const h = hosts();
    files = {
      alpha: writeHost(dir, 'alpha', h.alpha, '/usr/bin/curl', 3),
      beta: writeHost(dir, 'beta', h.beta, '/srv/front', 3),
      gamma: writeHost(dir, 'gamma', h.gamma, '/srv/back', 9),
    };
  });

  it("finds each host's clock offset from the traffic, within the bound it states, and not from the wall clocks", () => {
    const merged = mergeCaptures([files.gamma, files.alpha, files.beta]);
    expect(merged.hosts.map((h) => h.hostname)).toEqual(['alpha', 'beta', 'gamma']);
    for (const h of merged.hosts) {
      const truth = TRUE_OFFSET[h.hostname as Host];
      const error = h.offsetNs > truth ? h.offsetNs - truth : truth - h.offsetNs;
      expect(h.boundNs, h.hostname).toBeDefined();
      expect(error, h.hostname).toBeLessThanOrEqual(h.boundNs!);
      // The script's records are 1 µs apart: the traffic pins the clocks to a few µs, where the wall clocks were ms off.
      expect(h.boundNs!, h.hostname).toBeLessThan(10_000n);
    }
    expect(merged.hosts.slice(1).map((h) => [h.hostname, h.against, h.pairs])).toEqual([
      ['beta', 'alpha', 1],
      ['gamma', 'beta', 1],
    ]);
  });

  it('joins the call chain across the hosts into one trace, keeping processes with the same pid apart', () => {
    const r = spawnSync('node', [CLI, 'replay', files.alpha, files.beta, files.gamma, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /loupe: hosts: alpha \(reference clock\); beta \+2500\.001 ms ± 0\.00\d ms from 1 connection with alpha; gamma -1000\.000 ms ± 0\.00\d ms from 1 connection with beta/,
    );
    const spans = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SpanLine);
    const find = (service: string, kind: string) => spans.find((s) => s.service === service && s.kind === kind)!;
    const [curl, front, call, back] = [find('curl', 'client'), find('front', 'server'), find('front', 'client'), find('back', 'server')];
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(front.parentSpanId).toBe(curl.spanId);
    expect(call.parentSpanId).toBe(front.spanId);
    expect(back.parentSpanId).toBe(call.spanId);
    expect([front, call, back].map((s) => s.attributes['loupe.context'])).toEqual(['connection-pair', 'thread', 'connection-pair']);
    // curl and front are both pid 3 on their hosts.
    expect([curl.pid, front.pid, back.pid]).toEqual([3, 3 + PID_SPACE, 9 + 2 * PID_SPACE]);
    // On alpha's clock: the server span within its client's, as on one host.
    expect(BigInt(front.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(curl.startTimeUnixNano));
    expect(BigInt(front.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(curl.endTimeUnixNano));
  });

  it('gives the same bytes in any order of the files, for replay, view and report --edges', () => {
    const orders = [
      [files.alpha, files.beta, files.gamma],
      [files.gamma, files.beta, files.alpha],
      [files.beta, files.alpha, files.gamma],
    ];
    for (const command of [['replay', '--format', 'jsonl'], ['replay', '--format', 'tree'], ['view'], ['report', '--edges']]) {
      const outputs = orders.map((o) => spawnSync('node', [CLI, command[0]!, ...o, ...command.slice(1)], { encoding: 'utf8' }));
      for (const out of outputs) expect(out.status, out.stderr).toBe(0);
      expect(new Set(outputs.map((o) => o.stdout)).size, command.join(' ')).toBe(1);
    }
    const edges = spawnSync('node', [CLI, 'report', files.beta, files.gamma, files.alpha, '--edges'], { encoding: 'utf8' }).stdout;
    expect(edges).toMatch(/curl\s+front\s+1\s+0\s+connection-pair 1 \(100%\)/);
    expect(edges).toMatch(/front\s+back\s+1\s+0\s+connection-pair 1 \(100%\)/);
  });

  it("pairs a call a Service's NAT rewrote by the client host's nat record: clocks bounded and spans joined across the hosts", () => {
    // curl on alpha calls a Service address; alpha's netfilter sends it to front on beta, and alpha's agent said so.
    const dir = tempDir();
    const h = hosts();
    const service = { addr: '10.96.0.10', port: 80 };
    const alpha = h.alpha.flatMap((e): Event[] =>
      e.type === 'sock_open' && e.role === 'client'
        ? [
            { type: 'nat', ts: e.ts, pid: e.pid, tid: e.tid, cpu: 0, clientLocal: e.local, clientRemote: service, serverLocal: e.remote, serverRemote: e.local },
            { ...e, remote: service },
          ]
        : [e],
    );
    const natted = writeHost(dir, 'alpha', alpha, '/usr/bin/curl', 3);
    const beta = writeHost(dir, 'beta', h.beta, '/srv/front', 3);
    const merged = mergeCaptures([natted, beta]);
    const placed = merged.hosts.find((x) => x.hostname === 'beta')!;
    expect(placed).toMatchObject({ against: 'alpha', pairs: 1 });
    const error = placed.offsetNs > TRUE_OFFSET.beta ? placed.offsetNs - TRUE_OFFSET.beta : TRUE_OFFSET.beta - placed.offsetNs;
    expect(error).toBeLessThanOrEqual(placed.boundNs!);
    const r = spawnSync('node', [CLI, 'replay', natted, beta, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const spans = spanLines(r.stdout);
    const curl = spans.find((x) => x.kind === 'client' && x.service === 'curl')!;
    const front = spans.find((x) => x.kind === 'server' && x.service === 'front')!;
    expect(curl.attributes['network.peer.address']).toBe('10.96.0.10');
    expect(front.parentSpanId).toBe(curl.spanId);
    expect(front.attributes['loupe.context']).toBe('conntrack');
  });

  it('places a host that shared no connection by its wall clock, and says so', () => {
    const dir = tempDir();
    const lone = new Script();
    const sock = lone.open({ pid: 5, tid: 5, fd: 3, role: 'server', local: { addr: '10.9.0.4', port: 80 }, remote: { addr: '10.9.0.99', port: 50000 } });
    lone.recv(sock, get('/elsewhere'));
    lone.send(sock, ok());
    const file = writeHost(dir, 'alpha', lone.events, '/srv/lone', 5).replace(/alpha\.jsonl$/, 'delta.jsonl');
    fs.renameSync(path.join(dir, 'alpha.jsonl'), file);
    const text = fs.readFileSync(file, 'utf8').replace('"hostname":"alpha"', '"hostname":"delta"');
    fs.writeFileSync(file, text);
    const merged = mergeCaptures([files.alpha, files.beta, file]);
    const delta = merged.hosts.find((h) => h.hostname === 'delta')!;
    expect(delta).toMatchObject({ boundNs: undefined, offsetNs: 0n, pairs: 0 });
    const r = spawnSync('node', [CLI, 'replay', files.alpha, file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/delta \+0\.000 ms by wall clocks \(no connection shared with a placed host\)/);
  });
});

describe('a live recording of three network-namespace hosts, split per host and merged again', () => {
  /** The shape of each span: what it is, what its parent is, and how it was joined. */
  const shapes = (jsonl: string) => {
    const spans = jsonl
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SpanLine);
    const byId = new Map(spans.map((x) => [x.spanId, x]));
    const what = (x: SpanLine | undefined) => (x ? `${x.service} ${x.kind} ${x.name}` : '-');
    return spans.map((x) => `${what(byId.get(x.parentSpanId))} > ${what(x)} (${x.attributes['loupe.context']})`).sort();
  };

  it('gives the trace shapes the single recording gives, with each host clock found from the traffic', () => {
    // captures/gohosts-live.loupe: curl on one namespace, the Go frontend on another, the backend and workers on a
    // third, recorded live by one agent (scenarios/gohosts.yaml). Split by the address each process's sockets have,
    // each part on a clock of its own, as three agents on three hosts would have recorded them.
    const whole = path.join(ROOT, 'captures/gohosts-live.loupe');
    const source = openCapture(whole);
    const events: Event[] = [];
    for (const batch of source.batches())
      for (const r of batch) {
        const e = decodeRecord(r.bytes);
        if (e.type !== 'unknown') events.push(e);
      }
    const hostOf = new Map<number, string>();
    for (const e of events) if (e.type === 'sock_open') hostOf.set(e.pid, e.local.addr);
    const addresses = [...new Set(hostOf.values())].sort();
    expect(addresses).toHaveLength(3);
    const skew = [0n, 7_000_000_123n, -2_000_000_456n];
    const dir = tempDir();
    const files = addresses.map((addr, i) => {
      const mine = events.filter((e) => hostOf.get(e.pid) === addr).map((e) => ({ ...e, ts: e.ts - skew[i]! }) as Event);
      const header: CaptureHeader = {
        ...source.header,
        host: { ...source.header.host, hostname: `host-${addr}` },
        // Wall clocks a few ms off the truth: the traffic must do better.
        bootTimeNs: String(BigInt(source.header.bootTimeNs) + skew[i]! + BigInt(i) * 3_000_000n),
        processes: source.header.processes.filter((p) => hostOf.get(p.pid) === addr),
      };
      const file = path.join(dir, `${addr}.jsonl`);
      fs.writeFileSync(file, [headerToJsonLine(header), ...mine.map((e) => recordToJsonLine(encodeEvent(e)))].join('\n') + '\n');
      return file;
    });
    const single = spawnSync('node', [CLI, 'replay', whole, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    const merged = spawnSync('node', [CLI, 'replay', ...files.reverse(), '--format', 'jsonl'], { encoding: 'utf8' });
    expect(merged.status, merged.stderr).toBe(0);
    expect(shapes(merged.stdout)).toEqual(shapes(single.stdout));
    expect(shapes(merged.stdout).filter((x) => x.startsWith('curl client'))).toHaveLength(2);
    // The scenario's expected shapes hold on the hosts' recordings checked as one.
    const check = spawnSync('node', [CLI, 'scenario', 'check', 'gohosts', ...files.flatMap((f) => ['--capture', f])], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    // diff takes a side of several hosts' files: against the single recording nothing moved; against
    // another scenario's capture everything did, and --check says so.
    const sideA = files.flatMap((f) => ['--a', f]);
    const same = spawnSync('node', [CLI, 'diff', ...sideA, '--b', whole, '--check', '--format', 'json'], { encoding: 'utf8' });
    expect(same.status, same.stdout + same.stderr).toBe(0);
    expect(same.stderr).toMatch(/^loupe: side A hosts: host-\S+ \(reference clock\); /);
    expect((JSON.parse(same.stdout) as { changed: boolean }).changed).toBe(false);
    const other = spawnSync('node', [CLI, 'diff', ...sideA, '--b', path.join(ROOT, 'captures/factorial.loupe'), '--check'], { encoding: 'utf8' });
    expect(other.status, other.stderr).toBe(4);
    expect(other.stdout).toContain(files.join(' + '));
    expect(spawnSync('node', [CLI, 'diff', whole, '--a', whole], { encoding: 'utf8' }).status).toBe(2);
    // Each host's offset within its bound of the skew put on it, the bound from real kernel records.
    const found = mergeCaptures(files);
    for (const h of found.hosts) {
      const truth = skew[addresses.indexOf(h.hostname.slice('host-'.length))]!;
      expect(h.boundNs, h.hostname).toBeDefined();
      const error = h.offsetNs > truth ? h.offsetNs - truth : truth - h.offsetNs;
      expect(error, `${h.hostname}: ${merged.stderr}`).toBeLessThanOrEqual(h.boundNs!);
      expect(h.boundNs!, h.hostname).toBeLessThan(1_000_000n); // under a millisecond, where the wall clocks were 3-6 ms off
    }
  });
});

describe('three agents, a host each, joined by TCP options (captures/tcp-options-*.loupe, recorded by test/tcp-options.test.ts)', () => {
  const capture = (host: string) => path.join(ROOT, `captures/tcp-options-${host}.loupe`);
  const replay = (...files: string[]) => {
    const r = spawnSync('node', [CLI, 'replay', ...files, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return { text: r.stdout, spans: spanLines(r.stdout).filter((s) => s.kind !== 'internal') };
  };

  it("joins each host's server spans, replayed alone, to the calling spans another host's recording holds, by the option each request came with", () => {
    const curl = replay(capture('client')).spans;
    const web = replay(capture('web')).spans;
    const api = replay(capture('api')).spans;
    const ids = (spans: SpanLine[]) => new Map(spans.map((s) => [s.spanId, s]));
    const [curlIds, webIds] = [ids(curl), ids(web)];
    const flask = web.filter((s) => s.kind === 'server');
    expect(flask).toHaveLength(3);
    for (const s of flask) {
      expect(s.attributes['loupe.context']).toBe('tcp-option');
      expect(curlIds.get(s.parentSpanId)?.traceId).toBe(s.traceId);
    }
    const served = api.filter((s) => s.kind === 'server');
    expect(served.map((s) => s.name).sort()).toEqual(['INCR', 'INCR', 'INCR', 'helloworld.Greeter/SayHello', 'helloworld.Greeter/SayHello', 'helloworld.Greeter/SayHello']);
    for (const s of served) {
      expect(s.attributes['loupe.context']).toBe('tcp-option');
      const caller = webIds.get(s.parentSpanId)!;
      expect(caller).toMatchObject({ kind: 'client', traceId: s.traceId });
      expect(caller.name.split(' ')[0]).toBe(s.name.split(' ')[0]);
    }
  });

  it('replays the three as one into six traces, the same bytes in any order of the files', () => {
    const merged = replay(capture('client'), capture('web'), capture('api'));
    const traces = new Map<string, string[]>();
    for (const s of merged.spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), `${s.kind} ${s.name.split(' ')[0]}`]);
    expect([...traces.values()].map((t) => t.sort().join(', ')).sort()).toEqual([
      ...Array(3).fill('client GET, client INCR, server GET, server INCR'),
      ...Array(3).fill('client helloworld.Greeter/SayHello, server helloworld.Greeter/SayHello'),
    ]);
    expect(replay(capture('api'), capture('client'), capture('web')).text).toBe(merged.text);
  });
});

describe('three agents, a host each, joined by headers the kernel inserted (captures/inject-*.loupe, recorded by test/inject-hosts.test.ts)', () => {
  const capture = (host: string) => path.join(ROOT, `captures/inject-${host}.loupe`);
  const replay = (...files: string[]) => {
    const r = spawnSync('node', [CLI, 'replay', ...files, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return { text: r.stdout, spans: spanLines(r.stdout).filter((s) => s.kind !== 'internal') };
  };

  it("parents each host's server spans, replayed alone, to the client spans whose ids the previous host's recording put on the wire", () => {
    const [edge, app, data] = ['edge', 'app', 'data'].map((h) => replay(capture(h)).spans);
    const clients = (spans: SpanLine[]) => new Map(spans.filter((s) => s.kind === 'client').map((s) => [s.spanId, s]));
    for (const [callers, served, tiers] of [
      [edge!, app!, ['python3', 'chain-server', 'node']],
      [app!, data!, ['node']],
    ] as const) {
      const byId = clients(callers);
      const servers = served.filter((s) => s.kind === 'server');
      expect(servers).toHaveLength(9);
      expect([...new Set(servers.map((s) => s.service))].sort()).toEqual([...tiers].sort());
      for (const s of servers) {
        expect(s.attributes['loupe.context']).toBe('traceparent');
        expect(byId.get(s.parentSpanId)?.traceId, `${s.service} ${s.name}`).toBe(s.traceId);
      }
    }
  });

  it('replays the three as one into nine traces of five spans, nginx at the root, the same bytes in any order of the files', () => {
    const merged = replay(capture('edge'), capture('app'), capture('data'));
    const traces = new Map<string, SpanLine[]>();
    for (const s of merged.spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    expect(traces.size).toBe(9);
    for (const spans of traces.values()) {
      const ids = new Map(spans.map((s) => [s.spanId, s]));
      const leaf = spans.find((s) => s.kind === 'server' && s.name.includes('/item/'))!;
      const chain: string[] = [];
      for (let s: SpanLine | undefined = leaf; s; s = ids.get(s.parentSpanId)) chain.push(`${s.kind} ${s.service}`);
      expect(chain.reverse().join(' > ')).toMatch(/^server nginx > client nginx > server (python3|chain-server|node) > client \1 > server node$/);
    }
    expect(replay(capture('data'), capture('edge'), capture('app')).text).toBe(merged.text);
  });
});
