/**
 * The views people look at: the terminal waterfall, and the HTML report opened
 * in headless Chromium (Debian's) to check what its script drew.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER, ROOT, tempDir } from './helpers';
import { get, ok, Script } from './script';
import { services } from './services';
import { headerToJsonLine, recordToJsonLine } from '../src/events/jsonl';
import { encodeEvent } from '../src/events/codec';
import { edgesTable, serviceEdges } from '../src/export/report';
import { spansOfCapture } from '../src/pipeline/replay';
import { mqttPacket, mqttProperties, mqttString, mqttUserProperty } from './fuzz/seeds';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const CAPTURE = path.join(ROOT, 'captures/factorial.loupe');
const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync('which', [c]).status === 0);
if (!chromium) console.warn('report browser test skipped: chromium is not installed');

describe('loupe view', () => {
  it('draws each trace as a waterfall with bars placed on its time axis', () => {
    const r = spawnSync('node', [CLI, 'view', CAPTURE, '--width', '20'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const bar = (needle: string) => lines.find((l) => l.includes(needle))!.match(/[·█▓░]{20}/)![0];
    expect(bar('curl CLIENT GET http://localhost:8080/factorial/5')).toBe('█'.repeat(20)); // the root spans the trace
    expect(bar('backend SERVER')).toMatch(/^·+█+·*$/); // starts later, ends before the root
    expect(bar('/factorial/abc -> 400')).toMatch(/^·+█+·+$/);
    expect(lines.find((l) => l.includes('curl CLIENT GET http://localhost:8080/factorial/abc'))).toMatch(/▓{20} .* ERROR$/);
    const one = spawnSync('node', [CLI, 'view', CAPTURE, '--trace', 'db0b'], { encoding: 'utf8' }).stdout;
    expect(one).toMatch(/^trace db0b3619/);
    expect(one).not.toContain('8bb41985');
  });
});

describe('loupe report', () => {
  it('counts calls and errors between services', () => {
    const { spans } = spansOfCapture(CAPTURE);
    expect(serviceEdges(spans).map(({ from, to, calls, errors }) => ({ from, to, calls, errors }))).toEqual([
      { from: 'curl', to: 'frontend', calls: 2, errors: 1 },
      { from: 'frontend', to: 'backend', calls: 1, errors: 0 },
    ]);
  });

  it('says per edge how its calls were joined: by the header the kernel put in, by the connection pair, by the message', () => {
    const edges = (capture: string) => {
      const r = spawnSync('node', [CLI, 'report', path.join(ROOT, 'captures', capture), '--edges'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s{2,}/));
    };
    // Go services on three network-namespace hosts, curl calling the frontend: with injection, and without.
    expect(edges('gohosts-live.loupe')).toEqual([
      ['caller', 'callee', 'calls', 'errors', 'joined by', 'unjoined'],
      ['backend', 'worker-a', '2', '0', 'traceparent 2 (100%)', '-'],
      ['backend', 'worker-b', '2', '0', 'traceparent 2 (100%)', '-'],
      ['curl', 'frontend', '2', '0', 'connection-pair 2 (100%)', '-'],
      ['frontend', 'backend', '2', '0', 'traceparent 2 (100%)', '-'],
    ]);
    expect(
      edges('gohosts-noinject-live.loupe')
        .slice(1)
        .map((row) => row[4]),
    ).toEqual(Array(4).fill('connection-pair 2 (100%)'));
    // RabbitMQ and Kafka (kafka-python) deliveries joined to their publishes by the traceparent they carried.
    const orders = edges('orders-live.loupe');
    expect(orders.find((row) => row[0] === 'rabbitmq orders')).toEqual(['rabbitmq orders', 'billing', '3', '0', 'message 3 (100%)', '-']);
    expect(orders.find((row) => row[0] === 'kafka shipments')).toEqual(['kafka shipments', 'shipping', '3', '0', 'message 3 (100%)', '-']);
    // curl sent a traceparent as given: its server span is still its child (not the header's sibling).
    expect(orders.find((row) => row[0] === 'curl')).toEqual(['curl', 'orders', '3', '0', 'connection-pair 3 (100%)', '-']);
    // The waterfall view ends with the same table.
    const view = spawnSync('node', [CLI, 'view', path.join(ROOT, 'captures/gohosts-live.loupe')], { encoding: 'utf8' }).stdout;
    expect(view).toContain(`service graph edges\n${edgesTable(spansOfCapture(path.join(ROOT, 'captures/gohosts-live.loupe')).spans)}`);
  });

  it('counts a call to a watched service that no server span joined as unjoined, with its share', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    const [curl2, front2] = s.connection({ pid: 3, tid: 3, fd: 4, port: 40001 }, { pid: 1, tid: 12, fd: 6, port: 8080 });
    s.exchange(curl, front, get('/a'), ok());
    // What the server read is not what the client wrote (a proxy between them rewrote it): no pair.
    s.exchange(curl2, front2, get('/b'), ok(), get('/rewritten'));
    const { spans } = spansOfCapture(writeCapture(s));
    const edge = serviceEdges(spans).find((e) => e.to !== 'pid-3')!;
    expect(edge).toMatchObject({ calls: 2, joinedBy: { 'connection-pair': 1 }, unjoined: 1 });
    expect(edgesTable(spans)).toMatch(/connection-pair 1 \(50%\)\s+1 \(50%\)\n/);
  });

  it('draws messages through their broker: producer -> broker -> consumer, joined or not', () => {
    const run = services('orders', 'billing', 'audit');
    const s = run.script;
    const [orders] = s.connection({ pid: 1, tid: 1, fd: 5, port: 40000 }, { pid: 9, tid: 9, fd: 4, port: 1883 });
    const [billing] = s.connection({ pid: 2, tid: 2, fd: 6, port: 40001 }, { pid: 9, tid: 9, fd: 7, port: 1883 });
    const [audit] = s.connection({ pid: 3, tid: 3, fd: 7, port: 40002 }, { pid: 9, tid: 9, fd: 8, port: 1883 });
    const props = mqttProperties(mqttUserProperty('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'));
    const connect = mqttPacket(0x10, mqttString('MQTT'), Buffer.from([5, 2, 0, 60]), mqttProperties(), mqttString('c'));
    for (const c of [orders, billing, audit]) s.send(c!, connect);
    s.send(orders!, mqttPacket(0x30, mqttString('orders/new'), props, Buffer.from('a')));
    s.send(orders!, mqttPacket(0x30, mqttString('orders/new'), props, Buffer.from('b')));
    s.recv(billing!, mqttPacket(0x30, mqttString('orders/new'), props, Buffer.from('a')));
    s.recv(audit!, mqttPacket(0x30, mqttString('orders/new'), mqttProperties(), Buffer.from('b')));
    const spans = run.spans();
    expect(serviceEdges(spans).map(({ from, to, calls }) => ({ from, to, calls }))).toEqual([
      { from: 'mqtt orders/new', to: 'audit', calls: 1 },
      { from: 'mqtt orders/new', to: 'billing', calls: 1 },
      { from: 'orders', to: 'mqtt orders/new', calls: 2 },
    ]);
  });

  it.skipIf(!chromium)(
    `opens in headless Chromium and draws the services, edges and waterfalls${chromium ? '' : ' (skipped: chromium is not installed)'}`,
    () => {
      const dir = tempDir();
      const out = path.join(dir, 'report.html');
      const r = spawnSync('node', [CLI, 'report', CAPTURE, '-o', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(fs.readFileSync(out, 'utf8')).not.toMatch(/<(script|link|img)[^>]+(src|href)=/); // self-contained
      const dom = spawnSync(
        chromium!,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          `--user-data-dir=${path.join(dir, 'profile')}`,
          '--dump-dom',
          `file://${out}`,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      ).stdout;
      for (const service of ['curl', 'frontend', 'backend']) expect(dom).toContain(`data-service="${service}"`);
      expect(dom).toContain('data-edge="curl-&gt;frontend"');
      expect(dom).toContain('2 calls, 1 error');
      expect((dom.match(/class="edge"/g) ?? []).length).toBe(2);
      expect(dom).toMatch(/<th>calls\/s<\/th>/);
      expect(dom).toMatch(/<th>joined by<\/th><th>unjoined<\/th>/);
      expect(dom).toContain('<td>connection-pair 2 (100%)</td><td>-</td>');
      expect((dom.match(/data-trace="/g) ?? []).length).toBe(2);
      expect((dom.match(/class="bar client error"/g) ?? []).length).toBe(1);
    },
    90_000,
  );
});

describe('terminal output of bytes anyone can send', () => {
  it('shows escape sequences in a request target as text in the tree, view, diff and parse table, never raw', () => {
    const s = new Script();
    const [c, srv] = s.connection({ pid: 1, tid: 1, fd: 3, port: 40000 }, { pid: 2, tid: 2, fd: 4, port: 8080 });
    const evil = '/\x1b]0;owned\x07\x1b[2J\x9b31m\u202e';
    s.send(c, get(evil));
    s.recv(srv, get(evil));
    s.send(srv, ok());
    s.recv(c, ok());
    const file = path.join(tempDir(), 'evil.jsonl');
    fs.writeFileSync(file, [headerToJsonLine(HEADER), ...s.events.map((e) => recordToJsonLine(encodeEvent(e)))].join('\n') + '\n');
    const outputs = [
      ['replay', file, '--format', 'tree'],
      ['view', file],
      ['diff', file, file],
      ['parse', file, '--format', 'table'],
    ].map((args) => {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(0);
      return [args[0], r.stdout] as const;
    });
    for (const [command, out] of outputs) {
      // eslint-disable-next-line no-control-regex -- the control characters are what must not come out
      expect(out, command).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
      if (command !== 'diff') expect(out, command).toContain('\\x1b]0;owned\\x07\\x1b[2J');
    }
  });

  it("shows them as text on stderr too: a file, program or library name in a message is anyone's to choose", () => {
    const dir = tempDir();
    const evil = path.join(dir, 'x\x1b]0;owned\x07\x1b[2J.loupe');
    for (const args of [
      ['replay', evil],
      ['parse', evil],
      ['convert', evil, path.join(dir, 'out.jsonl')],
    ]) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain('\\x1b]0;owned\\x07\\x1b[2J');
      // eslint-disable-next-line no-control-regex -- the control characters are what must not come out
      expect(r.stderr, args.join(' ')).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    }
  });
});

/** A script's events as a JSONL capture file. */
function writeCapture(s: Script): string {
  const file = path.join(tempDir(), 'script.jsonl');
  fs.writeFileSync(file, [headerToJsonLine(HEADER), ...s.events.map((e) => recordToJsonLine(encodeEvent(e)))].join('\n') + '\n');
  return file;
}
