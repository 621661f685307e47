/**
 * Services in real containers (podman, run as root with the project's
 * containers.conf): the agent on the host traces a containerised server that
 * curl calls through its published port, and every span of the server names
 * its container — id from the cgroup, name and image from podman's API — in
 * the live run and in the replay of its recording alike. Skipped with the
 * reason where podman or the live agent cannot run.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveSession, type LiveSessionOptions } from '../src/pipeline/live';
import { liveSupport } from '../src/sources/live/system';
import { ROOT, spanLines, tempDir, until, type SpanLine } from './helpers';
import { probeWhenGo } from './go-agent';
import { Containers, goBinary, podman, podmanUnavailable, rustBinary, type RunningContainer } from './podman';

const support = liveSupport();
const skipReason = !support.ok ? support.reason : podmanUnavailable();
if (skipReason) console.warn(`container tests skipped: ${skipReason}`);

/** A live agent writing JSON lines, with the selection and switches a test gives. */
function agent(write: (text: string) => void, options: Partial<LiveSessionOptions> & { goProbes: boolean }): LiveSession {
  return new LiveSession({ maxPayload: 4096, ringBytes: 16 << 20, tlsLibraries: [], redact: true, format: 'jsonl', write, goInject: false, ...options });
}

const HELLO = `package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello from a container") })
	http.ListenAndServe(":8080", nil)
}
`;

describe.skipIf(Boolean(skipReason))(`containers on podman${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  // One API service for the file: testcontainers keeps the first client it made for as long as the process lives.
  const containers = new Containers();
  beforeAll(() => containers.startApi(), 60_000);
  afterAll(() => containers.cleanup(), 120_000);
  describe('a service in a container', () => serviceInAContainer(containers));
  describe('the demo services in containers, started by testcontainers', () => demoServices(containers));
});

function serviceInAContainer(containers: Containers): void {
  let run: RunningContainer & { image: string };

  beforeAll(async () => {
    // The agent asks the runtime's API for names: DOCKER_HOST says where, as for the docker CLI (startApi set it).
    const image = await containers.buildGoImage('loupe-test-hello', HELLO);
    run = { ...(await containers.start(image, { port: 8080, name: `loupe-test-hello-${process.pid}` })), image };
  }, 300_000);

  for (const [how, select] of [
    ['--pid', () => ({ pids: [run.pid] })],
    ['--container', () => ({ container: new RegExp(`^${run.name}$`) })],
  ] as const)
    it(`names the container, its name and its image on each of 5 server spans curl caused, live and in the replay (selected by ${how})`, async () => {
      let spans = '';
      const capture = path.join(tempDir(), 'container.loupe');
      const session = agent((t) => (spans += t), { ...select(), goProbes: false, capturePath: capture });
      session.start();
      const served = () => spanLines(spans).filter((s) => s.kind === 'server' && s.pid === run.pid);
      try {
        for (let i = 0; i < 5; i++) expect(spawnSync('curl', ['-sf', `http://127.0.0.1:${run.port}/r${i}`], { encoding: 'utf8' }).stdout).toBe('hello from a container\n');
        await until(() => served().length >= 5, '5 server spans');
      } finally {
        await session.stop();
      }
      const live = served();
      expect(live.map((s) => s.attributes['url.path'])).toEqual(['/r0', '/r1', '/r2', '/r3', '/r4']);
      for (const s of live) {
        expect(s.attributes).toMatchObject({
          'container.id': run.id,
          'container.runtime': 'podman',
          'container.name': run.name,
          'container.image.name': run.image,
        });
      }
      // The names are in the recording's process records: a replay away from podman names them alike.
      expectReplayedAlike(capture, spans);
    }, 120_000);

  it('names a container by the runtime CLI (podman inspect) when no API socket answers', () => {
    // A process of its own: the agent asks each container once, and this one was asked through the API already.
    const script = `const { containerRuntimeInfo } = require(${JSON.stringify(path.join(ROOT, 'dist/sources/live/container-runtime.js'))}); console.log(JSON.stringify(containerRuntimeInfo({ id: ${JSON.stringify(run.id)}, runtime: 'podman' })))`;
    const r = spawnSync('node', ['-e', script], { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: run.id, runtime: 'podman', name: run.name, image: expect.stringMatching(new RegExp(`^${run.image}(:latest)?$`)) });
  });

  it("joins curl's call through the published port (podman's NAT) to the container's server span by the tuple the host's connection tracking named, with the Go probes on", async () => {
    let spans = '';
    const session = agent((t) => (spans += t), { container: new RegExp(`^${run.name}$`), exe: /\/curl$/, goProbes: true });
    session.start();
    // The Go probes reach the program inside the container through /proc/PID/exe before any request.
    expect(await probeWhenGo(session, run.pid)).toMatchObject({ goVersion: expect.stringMatching(/^go1\./) });
    const lines = () => spanLines(spans);
    try {
      for (let i = 0; i < 3; i++) expect(spawnSync('curl', ['-sf', `http://127.0.0.1:${run.port}/nat${i}`], { encoding: 'utf8' }).status).toBe(0);
      await until(() => lines().filter((s) => s.kind === 'server').length >= 3 && lines().filter((s) => s.kind === 'client').length >= 3, '3 client and 3 server spans');
    } finally {
      await session.stop();
    }
    const all = lines();
    for (let i = 0; i < 3; i++) {
      const server = all.find((s) => s.kind === 'server' && s.attributes['url.path'] === `/nat${i}`)!;
      const client = all.find((s) => s.kind === 'client' && String(s.attributes['url.full']).endsWith(`/nat${i}`))!;
      expect(client.service).toBe('curl');
      // curl spoke to 127.0.0.1:PORT, the server saw podman's bridge gateway: no 4-tuple in common.
      expect(client.attributes['network.peer.address']).toBe('127.0.0.1');
      expect(server.attributes['network.peer.address']).not.toBe('127.0.0.1');
      expect(server.parentSpanId).toBe(client.spanId);
      expect(server.attributes['loupe.context']).toBe('conntrack');
      expect(server.attributes).toMatchObject({ 'container.name': run.name, 'container.image.name': run.image });
    }
    // The Go handler's phases are the container's spans too.
    const phases = all.filter((s) => s.kind === 'internal');
    expect(phases.length).toBe(6);
    for (const p of phases) expect(p.attributes['container.id']).toBe(run.id);
  }, 120_000);
}

function demoServices(containers: Containers): void {
  let network: Awaited<ReturnType<Containers['network']>>;
  let frontendImage: string;
  let backend: RunningContainer;
  const tag = `${process.pid}`;

  beforeAll(async () => {
    network = await containers.network();
    const backendImage = await containers.buildImage(`loupe-test-backend-${tag}`, goBinary(path.join(ROOT, 'scenarios/services/backend.go')));
    frontendImage = await containers.buildImage(`loupe-test-frontend-${tag}`, rustBinary(path.join(ROOT, 'scenarios/services/frontend.rs')));
    backend = await containers.start(backendImage, {
      port: 8081,
      name: `loupe-test-backend-${tag}`,
      command: ['8081', '0.0.0.0'],
      network,
      env: { OTEL_SERVICE_NAME: 'backend' },
      ready: 'ready',
    });
  }, 600_000);

  /** curl -> frontend -> backend, `requests` times, watched by container name and curl's executable; the spans by trace. */
  async function traced(frontend: RunningContainer, requests: number): Promise<{ spans: SpanLine[]; capture: string; text: string }> {
    let text = '';
    const capture = path.join(tempDir(), 'demo.loupe');
    const session = agent((t) => (text += t), { container: new RegExp(`^loupe-test-(front|back)end-${tag}`), exe: /\/curl$/, goProbes: true, capturePath: capture });
    session.start();
    expect(await probeWhenGo(session, backend.pid)).toMatchObject({ goVersion: expect.stringMatching(/^go1\./) });
    const spans = () => spanLines(text);
    try {
      for (let n = 1; n <= requests; n++) expect(spawnSync('curl', ['-sf', `http://127.0.0.1:${frontend.port}/factorial/${n + 2}`], { encoding: 'utf8' }).status).toBe(0);
      await until(
        () => spans().filter((s) => s.service === 'backend' && s.kind === 'server').length >= requests && spans().filter((s) => s.service === 'curl').length >= requests,
        `${requests} backend and curl spans`,
      );
    } finally {
      await session.stop();
    }
    return { spans: spans(), capture, text };
  }

  for (const [how, backendAt] of [
    ['at its address on the network: no NAT between them', () => ({ addr: backend.container.getIpAddress(network.getName()), port: 8081, context: 'connection-pair' })],
    // From one container to another through the host: the backend's port published on the host, called at the network's gateway.
    ['through its port published on the host: NAT between them too', () => ({ addr: gatewayOf(backend), port: backend.port, context: 'conntrack' })],
  ] as const)
    it(`traces 3 requests curl -> Rust frontend -> Go backend, each one trace of 4 spans with its container's attributes, the frontend calling the backend ${how}; the recording replays alike`, async () => {
      const at = backendAt();
      const frontend = await containers.start(frontendImage, {
        port: 8080,
        name: `loupe-test-frontend-${tag}-${at.context}`,
        command: ['8080', String(at.port), '0.0.0.0', at.addr],
        network,
        env: { OTEL_SERVICE_NAME: 'frontend' },
        ready: 'ready',
      });
      const { spans, capture, text } = await traced(frontend, 3);
      const traces = new Map<string, SpanLine[]>();
      for (const s of spans.filter((s) => s.kind !== 'internal')) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
      expect(traces.size).toBe(3);
      for (const trace of traces.values()) {
        const one = (service: string, kind: string) => {
          const found = trace.filter((s) => s.service === service && s.kind === kind);
          expect(found, `${service} ${kind}`).toHaveLength(1);
          return found[0]!;
        };
        const curl = one('curl', 'client');
        const frontServer = one('frontend', 'server');
        const frontClient = one('frontend', 'client');
        const back = one('backend', 'server');
        expect(frontServer.parentSpanId).toBe(curl.spanId);
        expect(frontClient.parentSpanId).toBe(frontServer.spanId);
        expect(back.parentSpanId).toBe(frontClient.spanId);
        expect([frontServer, frontClient, back].map((s) => s.attributes['loupe.context'])).toEqual(['conntrack', 'thread', at.context]);
        for (const [span, c] of [
          [frontServer, frontend],
          [frontClient, frontend],
          [back, backend],
        ] as const)
          expect(span.attributes).toMatchObject({ 'container.id': c.id, 'container.name': c.name, 'container.runtime': 'podman' });
        expect(back.attributes['url.path']).toBe('/compute');
      }
      expectReplayedAlike(capture, text);
    }, 300_000);
}

/** The recording replays to the live output byte for byte, with no container runtime to ask (names come from the capture). */
function expectReplayedAlike(capture: string, live: string): void {
  const replay = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', capture, '--format', 'jsonl', '--quiet'], {
    encoding: 'utf8',
    env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent' },
  });
  expect(replay.status, replay.stderr).toBe(0);
  expect(replay.stdout).toBe(live);
}

/** The gateway of the container's first network: the host's address on that bridge. */
function gatewayOf(c: RunningContainer): string {
  return podman(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}', c.id]);
}
