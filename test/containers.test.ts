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
import { freePort, ROOT, tempDir, until, type SpanLine } from './helpers';
import { probeWhenGo } from './go-agent';
import { Containers, podmanUnavailable } from './podman';

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

describe.skipIf(Boolean(skipReason))(`a service in a container${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const containers = new Containers();
  let run: { name: string; id: string; pid: number; port: number; image: string };
  let socket: string;
  const savedDockerHost = process.env.DOCKER_HOST;

  beforeAll(async () => {
    socket = await containers.startApi();
    // The agent asks the runtime's API for names: DOCKER_HOST says where, as for the docker CLI.
    process.env.DOCKER_HOST = `unix://${socket}`;
    const image = containers.buildGoImage('loupe-test-hello', HELLO, []);
    const port = await freePort();
    run = { ...containers.run(image, `loupe-test-hello-${port}`, [`127.0.0.1:${port}:8080`]), port, image };
    await until(() => spawnSync('curl', ['-sf', `http://127.0.0.1:${port}/`]).status === 0, 'the container to answer');
  }, 300_000);

  afterAll(() => {
    containers.cleanup();
    if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedDockerHost;
  });

  for (const [how, select] of [
    ['--pid', () => ({ pids: [run.pid] })],
    ['--container', () => ({ container: new RegExp(`^${run.name}$`) })],
  ] as const)
    it(`names the container, its name and its image on each of 5 server spans curl caused, live and in the replay (selected by ${how})`, async () => {
      let spans = '';
      const capture = path.join(tempDir(), 'container.loupe');
      const session = agent((t) => (spans += t), { ...select(), goProbes: false, capturePath: capture });
      session.start();
      const served = () =>
        spans
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as SpanLine)
          .filter((s) => s.kind === 'server' && s.pid === run.pid);
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
      const replay = spawnSync('node', [path.join(ROOT, 'dist/cli/main.js'), 'replay', capture, '--format', 'jsonl', '--quiet'], {
        encoding: 'utf8',
        env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent' },
      });
      expect(replay.status, replay.stderr).toBe(0);
      expect(replay.stdout).toBe(spans);
    }, 120_000);

  it('names a container by the runtime CLI (podman inspect) when no API socket answers', () => {
    // A process of its own: the agent asks each container once, and this one was asked through the API already.
    const script = `const { containerRuntimeInfo } = require(${JSON.stringify(path.join(ROOT, 'dist/sources/live/container-runtime.js'))}); console.log(JSON.stringify(containerRuntimeInfo({ id: ${JSON.stringify(run.id)}, runtime: 'podman' })))`;
    const r = spawnSync('node', ['-e', script], { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: 'unix:///nonexistent' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: run.id, runtime: 'podman', name: run.name, image: expect.stringMatching(new RegExp(`^${run.image}(:latest)?$`)) });
  });

  it("joins curl's call through the published port (podman's NAT) to the container's server span by the bytes both ends saw, with the Go probes on", async () => {
    let spans = '';
    const session = agent((t) => (spans += t), { container: new RegExp(`^${run.name}$`), exe: /\/curl$/, goProbes: true });
    session.start();
    // The Go probes reach the program inside the container through /proc/PID/exe before any request.
    expect(await probeWhenGo(session, run.pid)).toMatchObject({ goVersion: expect.stringMatching(/^go1\./) });
    const lines = () =>
      spans
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SpanLine);
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
      expect(server.attributes['loupe.context']).toBe('connection-pair-nat');
      expect(server.attributes).toMatchObject({ 'container.name': run.name, 'container.image.name': run.image });
    }
    // The Go handler's phases are the container's spans too.
    const phases = all.filter((s) => s.kind === 'internal');
    expect(phases.length).toBe(6);
    for (const p of phases) expect(p.attributes['container.id']).toBe(run.id);
  }, 120_000);
});
