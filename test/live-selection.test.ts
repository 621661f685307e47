/**
 * Live eBPF, what is watched: a pid reused by another process, --open-port
 * (processes found by the port they listen on, also later), and the kernel
 * side's pid filter. Skipped with the reason where the agent cannot run.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, exited, skipReason, startAgent } from './live-agent';
import { freePort, ROOT, tempDir, until, waitFor, type SpanLine } from './helpers';

/** Whether the spans the agent wrote to `file` so far include one of `path`. */
const wrote = (file: string, path: string) => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(`"url.path":"${path}"`);

describe.skipIf(Boolean(skipReason) || !fs.existsSync('/proc/sys/kernel/ns_last_pid'))(
  `live eBPF, a pid reused by another process${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    /** A server under `name` (OTEL_SERVICE_NAME); with `pid`, started only as that pid (the kernel hands out ns_last_pid + 1). */
    async function server(port: number, name: string, pid?: number): Promise<ChildProcess | undefined> {
      for (let attempt = 0; attempt < 20; attempt++) {
        if (pid !== undefined) fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
        const child = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('${name}\\n')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, OTEL_SERVICE_NAME: name },
        });
        if (pid === undefined || child.pid === pid) {
          await waitFor(child, 'stdout', /ready/);
          return child;
        }
        child.kill(); // another process took the pid first: try again
        await exited(child);
      }
      return undefined;
    }

    it('leaves a valid capture when the recording is killed with SIGKILL: header first, records as they came', async () => {
      const port = await freePort();
      const capture = path.join(tempDir(), 'killed.loupe');
      const { agent } = startAgent(['record', '--port', String(port), '-o', capture]);
      const srv = (await server(port, 'killed'))!;
      try {
        await waitFor(agent, 'stderr', /attached \d+ programs/);
        const N = 5;
        for (let i = 0; i < N; i++) expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/k${i}`], { encoding: 'utf8' }).stdout).toBe('killed\n');
        // Each batch's records reach the file as the batch ends: wait until the last answer is there, then kill.
        const answered = () => {
          const r = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl', '--quiet'], { encoding: 'utf8' });
          return r.stdout.split('\n').filter((l) => l.includes('"server"') && l.includes('/k')).length;
        };
        for (let i = 0; i < 400 && answered() < N; i++) await new Promise((r) => setTimeout(r, 50));
        agent.kill('SIGKILL');
        await exited(agent);
        const r = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl'], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        const servers = r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as SpanLine)
          .filter((x) => x.kind === 'server');
        expect(servers.map((x) => x.attributes['url.path'])).toEqual(Array.from({ length: N }, (_, i) => `/k${i}`));
        expect(fs.readdirSync(path.dirname(capture))).toEqual(['killed.loupe']); // no spool beside it
      } finally {
        agent.kill('SIGKILL');
        srv.kill();
      }
    }, 60_000);

    it('leaves no program, link or attachment behind when the agent is killed with SIGKILL, and a new agent starts cleanly', async () => {
      /** BPF programs a process holds, by id, from its fds' fdinfo. */
      const heldPrograms = (pid: number) => {
        const ids = new Set<string>();
        for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
          try {
            const id = /^prog_id:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
            if (id) ids.add(id);
          } catch {
            // closed meanwhile
          }
        }
        return ids;
      };
      const loaded = () => {
        const progs = (JSON.parse(spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' }).stdout) as Array<{ id: number }>).map((p) => String(p.id));
        const cgroup = spawnSync('bpftool', ['cgroup', 'tree'], { encoding: 'utf8' })
          .stdout.split('\n')
          .map((l) => l.trim().split(/\s+/)[0]!);
        return new Set([...progs, ...cgroup]);
      };
      const port = await freePort();
      const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl']);
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      const ours = heldPrograms(agent.pid!);
      expect(ours.size).toBeGreaterThanOrEqual(10);
      agent.kill('SIGKILL');
      await exited(agent);
      // The kernel lets go of them as it frees the dead process's fds (a link's release waits out an RCU grace period).
      let left = [...ours].filter((id) => loaded().has(id));
      for (let i = 0; i < 300 && left.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
        left = [...ours].filter((id) => loaded().has(id));
      }
      expect(left).toEqual([]);
      expect(fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('loupe'))).toEqual([]); // nothing pinned
      // A new agent starts and traces, and traffic passes as sent.
      const srv = (await server(port, 'after-kill'))!;
      const { agent: next, stderr } = startAgent(['run', '--port', String(port), '--format', 'jsonl']);
      try {
        await waitFor(next, 'stderr', /attached \d+ programs/);
        expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/again`], { encoding: 'utf8' }).stdout).toBe('after-kill\n');
        let out = '';
        next.stdout!.on('data', (c) => (out += c));
        for (let i = 0; i < 300 && !out.includes('/again'); i++) await new Promise((r) => setTimeout(r, 50));
        expect(out).toContain('"url.path":"/again"');
      } finally {
        next.kill('SIGINT');
        await exited(next);
        srv.kill();
      }
      expect(stderr()).not.toMatch(/error/i);
    }, 90_000);

    it('names each process its own service, live and in the replay', async () => {
      const port = await freePort();
      const dir = tempDir();
      const spansFile = path.join(dir, 'reuse.jsonl');
      const capture = path.join(dir, 'reuse.loupe');
      const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '-o', spansFile, '--record', capture]);
      let second: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached \d+ programs/);
        const first = (await server(port, 'first'))!;
        expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/one`], { encoding: 'utf8' }).stdout).toBe('first\n');
        // The agent reads /proc when it meets a process's first record: it has once the span is out, while `first` still runs.
        await until(() => wrote(spansFile, '/one'), 'the span of /one');
        first.kill();
        await exited(first);
        second = await server(port, 'second', first.pid);
        expect(second, `no new process got pid ${first.pid}`).toBeDefined();
        expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/two`], { encoding: 'utf8' }).stdout).toBe('second\n');
        await until(() => wrote(spansFile, '/two'), 'the span of /two');
      } finally {
        agent.kill('SIGINT');
        second?.kill();
      }
      expect(await exited(agent)).toBe(0);
      const live = fs.readFileSync(spansFile, 'utf8');
      const servers = live
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SpanLine & { pid: number })
        .filter((x) => x.kind === 'server');
      expect(servers.map((x) => [x.attributes['url.path'], x.service])).toEqual([
        ['/one', 'first'],
        ['/two', 'second'],
      ]);
      expect(servers[0]!.pid).toBe(servers[1]!.pid);
      const replay = spawnSync('node', [CLI, 'replay', capture, '--format', 'jsonl'], { encoding: 'utf8' });
      expect(replay.status, replay.stderr).toBe(0);
      expect(replay.stdout).toBe(live);
    }, 60_000);

    it('does not take the next process for the first when the pid was reused before the agent read /proc', async () => {
      const port = await freePort();
      const spansFile = path.join(tempDir(), 'late.jsonl');
      const { agent } = startAgent(['run', '--port', String(port), '--format', 'jsonl', '-o', spansFile]);
      let second: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached \d+ programs/);
        const first = (await server(port, 'first'))!;
        // The agent falls behind (stopped): its records wait in the ring buffer while the pid changes hands.
        process.kill(agent.pid!, 'SIGSTOP');
        expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/one`], { encoding: 'utf8' }).stdout).toBe('first\n');
        first.kill();
        await exited(first);
        // /proc dates a start to the 10 ms tick: a process started within a tick of the record cannot be told apart.
        await new Promise((r) => setTimeout(r, 50));
        second = await server(port, 'second', first.pid);
        expect(second, `no new process got pid ${first.pid}`).toBeDefined();
        expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/two`], { encoding: 'utf8' }).stdout).toBe('second\n');
      } finally {
        process.kill(agent.pid!, 'SIGCONT');
      }
      // Both spans out: the agent named the processes while `second` still runs.
      await until(() => wrote(spansFile, '/two'), 'the span of /two');
      agent.kill('SIGINT');
      second?.kill();
      expect(await exited(agent)).toBe(0);
      const servers = fs
        .readFileSync(spansFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SpanLine)
        .filter((x) => x.kind === 'server');
      expect(servers.map((x) => x.attributes['url.path'])).toEqual(['/one', '/two']);
      // /proc had only the second process by then: the first is named by its exec record, not as the second.
      expect(servers[0]!.service).toBe('node');
      expect(servers[1]!.service).toBe('second');
    }, 60_000);
  },
);

describe.skipIf(Boolean(skipReason))(`live eBPF, --open-port${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('watches the processes listening on the ports named, those that start listening later too, and no others', async () => {
    const [early, late, other] = [await freePort(), await freePort(), await freePort()];
    const serve = (port: number, name: string) =>
      spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('${name}')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
    const servers = [serve(early, 'early'), serve(other, 'other')];
    await Promise.all(servers.map((s) => waitFor(s, 'stdout', /ready/)));
    const { agent, stderr } = startAgent(['run', '--open-port', String(early), '--open-port', String(late), '--format', 'jsonl']);
    let out = '';
    agent.stdout!.on('data', (c) => (out += c));
    const get = (port: number, what: string) => expect(spawnSync('curl', ['-sS', `http://127.0.0.1:${port}/${what}`]).status).toBe(0);
    try {
      await waitFor(agent, 'stderr', /attached \d+ programs/);
      expect(stderr()).toContain(`watching processes listening on ${early},${late}; `);
      get(early, 'early/1');
      get(other, 'other/1');
      const lateServer = serve(late, 'late');
      servers.push(lateServer);
      await waitFor(lateServer, 'stdout', /ready/);
      // The agent looks again every 2 s, and says whom it chose.
      await until(
        () => stderr().includes(`watching pid ${lateServer.pid} (${process.execPath}): it listens on a port of --open-port`),
        () => `the late server chosen; agent said: ${stderr()}`,
      );
      get(late, 'late/1');
      get(early, 'early/2');
      await until(() => out.includes('"url.path":"/early/2"'), 'the span of /early/2');
    } finally {
      agent.kill('SIGINT');
      for (const s of servers) s.kill();
    }
    expect(await exited(agent)).toBe(0);
    const spans = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpanLine);
    expect(spans.map((s) => `${s.kind} ${s.attributes['url.path']}`)).toEqual(['server /early/1', 'server /late/1', 'server /early/2']);
  }, 60_000);
});

describe.skipIf(Boolean(skipReason) || spawnSync('python3', ['--version']).status !== 0)(
  `live eBPF, the kernel side's pid filter${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    type Rec = { type: string; pid: number; dir?: string; data?: string; dataB64?: string; cookie?: string };
    /** The records of a capture, through its JSONL form. */
    const recordsOf = (capture: string): Rec[] => {
      const converted = `${capture}.jsonl`;
      expect(spawnSync('node', [CLI, 'convert', capture, converted]).status).toBe(0);
      return fs
        .readFileSync(converted, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => JSON.parse(l) as Rec);
    };
    const payloads = (records: Rec[], pid: number, dir: string) =>
      records.filter((r) => r.type === 'data' && r.pid === pid && r.dir === dir).map((r) => r.data ?? Buffer.from(r.dataB64!, 'base64').toString());
    /** Python lines: take two connections on `listener`, read each, then print done. */
    const ACCEPT_TWO_THEN_DONE = ['for _ in range(2):', '    conn, _ = listener.accept()', '    conn.recv(64); conn.close()', "print('done', flush=True)"].join('\n');
    /** A Python listener on a free port that takes `count` connections, reads each, then prints done. */
    const listenerTaking = async (count: number) => {
      const listener = spawn(
        'python3',
        [
          '-c',
          `
import socket, sys
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
print(listener.getsockname()[1], flush=True)
${ACCEPT_TWO_THEN_DONE.replace('range(2)', `range(${count})`)}
`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      return { listener, port: Number((await waitFor(listener, 'stdout', /\d+\n/)).trim()) };
    };
    /** python3 under another name, in `dir`: its exec record names it so. */
    const pythonNamed = (dir: string, name: string) => {
      const link = path.join(dir, name);
      fs.symlinkSync(spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim(), link);
      return link;
    };
    // Waits for a line, then sends `message` to PORT and prints its pid when done (and with `stay`, exits at the next line).
    const sender = (python: string, port: number, message: string, env: NodeJS.ProcessEnv = process.env, stay = false) =>
      spawn(
        python,
        [
          '-c',
          `
import os, socket, sys
sys.stdin.readline()
with socket.create_connection(('127.0.0.1', ${port})) as s:
    s.sendall(b'${message}')
print(os.getpid(), flush=True)
${stay ? 'sys.stdin.readline()' : ''}
`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'], env },
      );

    it('watches the children a watched process forks, and no other process', async () => {
      // The watched parent listens and forks a child that connects; a stranger connects too.
      const parent = spawn(
        'python3',
        [
          '-c',
          `
import os, socket, sys
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(4)
print(listener.getsockname()[1], flush=True)
sys.stdin.readline()
if os.fork() == 0:
    with socket.create_connection(listener.getsockname()) as s:
        s.sendall(b'from the child')
    os._exit(0)
${ACCEPT_TWO_THEN_DONE}
`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const port = Number((await waitFor(parent, 'stdout', /\d+\n/)).trim());
      const stranger = sender('python3', port, 'from a stranger');
      const capture = path.join(tempDir(), 'filter.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(parent.pid)]);
      let strangerPid = 0;
      try {
        await waitFor(agent, 'stderr', /attached/);
        const done = waitFor(parent, 'stdout', /done/);
        const strangerDone = waitFor(stranger, 'stdout', /\d+\n/);
        parent.stdin!.write('go\n');
        stranger.stdin!.write('go\n');
        strangerPid = Number((await strangerDone).trim());
        await done; // what the ring buffer holds, the agent takes as it stops
      } finally {
        agent.kill('SIGINT');
        parent.kill();
        stranger.kill();
      }
      expect(await exited(agent)).toBe(0);
      const records = recordsOf(capture);
      expect(payloads(records, parent.pid!, 'ingress').sort()).toEqual(['from a stranger', 'from the child']);
      const childPids = new Set(records.filter((r) => r.type === 'data' && r.dir === 'egress' && r.pid !== parent.pid).map((r) => r.pid));
      expect(childPids.size, 'one forked child wrote').toBe(1);
      expect(payloads(records, [...childPids][0]!, 'egress')).toEqual(['from the child']);
      // tcp_state records carry whichever process was on the CPU when a watched socket changed state (on loopback, often the peer): not counted.
      expect(
        records.filter((r) => r.pid === strangerPid && r.type !== 'tcp_state'),
        'nothing of the stranger',
      ).toEqual([]);
    }, 60_000);

    it('names a process --pid chose at start by what /proc said then, when it ran and exited before the agent read its first record', async () => {
      const { listener, port } = await listenerTaking(1);
      const python = pythonNamed(tempDir(), 'loupe-short-lived');
      const short = sender(python, port, 'once');
      const capture = path.join(tempDir(), 'short.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--pid', String(short.pid)]);
      try {
        await waitFor(agent, 'stderr', /attached/);
        // Stopped, the agent reads nothing: the process connects, sends and is gone before its first record is read.
        agent.kill('SIGSTOP');
        short.stdin!.write('go\n');
        await exited(short);
        expect(fs.existsSync(`/proc/${short.pid}`), 'the process is gone').toBe(false);
      } finally {
        // Let go, it reads what the ring buffer holds as it stops.
        agent.kill('SIGCONT');
        agent.kill('SIGINT');
        listener.kill();
      }
      expect(await exited(agent)).toBe(0);
      const records = recordsOf(capture) as Array<Rec & { info?: { exe: string } }>;
      expect(payloads(records, short.pid!, 'egress')).toEqual(['once']);
      expect(records.filter((r) => r.type === 'proc_info' && r.pid === short.pid).map((r) => path.basename(r.info!.exe))).toEqual(['loupe-short-lived']);
    }, 60_000);

    it('catches short-lived programs by --exe though they connect before the agent decides, and drops those it does not choose', async () => {
      const port = await freePort();
      const server = spawn(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${port}, '127.0.0.1', () => console.log('ready'))`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const dir = tempDir();
      const spansFile = path.join(dir, 'curl.jsonl');
      // curl under another name, which /curl$ does not match.
      const kurl = path.join(dir, 'kurl');
      fs.symlinkSync(spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim(), kurl);
      const capture = path.join(dir, 'curl.loupe');
      const { agent } = startAgent(['run', '--exe', '/curl$', '--format', 'jsonl', '-o', spansFile, '--record', capture]);
      const get = (program: string, what: string) => expect(spawnSync(program, ['-sS', `http://127.0.0.1:${port}/${what}`]).status).toBe(0);
      try {
        await Promise.all([waitFor(server, 'stdout', /ready/), waitFor(agent, 'stderr', /attached/)]);
        await new Promise((r) => setTimeout(r, 300));
        // The agent stopped: it decides on these execs only after the programs are gone. The kernel side
        // watched them as pending meanwhile; the agent keeps curl's records and drops kurl's.
        process.kill(agent.pid!, 'SIGSTOP');
        try {
          for (let n = 1; n <= 4; n++) {
            get('curl', `n/${n}`);
            get(kurl, `k/${n}`);
          }
        } finally {
          process.kill(agent.pid!, 'SIGCONT');
        }
        // Running: the exec record wakes the agent, which decides within ms; curl is pending until then.
        for (let n = 5; n <= 8; n++) {
          get('curl', `n/${n}`);
          get(kurl, `k/${n}`);
        }
        await until(() => fs.existsSync(spansFile) && fs.readFileSync(spansFile, 'utf8').includes(`/n/8"`), 'the span of /n/8');
      } finally {
        agent.kill('SIGINT');
        server.kill();
      }
      expect(await exited(agent)).toBe(0);
      const spans = fs
        .readFileSync(spansFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SpanLine);
      const urls = (service: string) => spans.filter((s) => s.kind === 'client' && s.service === service).map((s) => s.attributes['url.full'] as string);
      expect(urls('curl')).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => `http://127.0.0.1:${port}/n/${n}`));
      expect(
        spans.filter((s) => JSON.stringify(s).includes('/k/')),
        'nothing of kurl',
      ).toEqual([]);
      expect(
        spans.filter((s) => s.kind === 'server'),
        'the server is not selected',
      ).toEqual([]);
      // Nor in the capture: kurl's sockets' TCP state changes (made in softirq, under any pid) go with the rest.
      const records = recordsOf(capture);
      const opened = new Set(records.filter((r) => r.type === 'sock_open').map((r) => r.cookie));
      expect(opened.size, "curl's sockets (eight, but a cookie repeats when the kernel reuses a socket's memory)").toBeGreaterThan(0);
      const states = records.filter((r) => r.type === 'tcp_state');
      expect(states.length).toBeGreaterThan(0);
      expect(
        states.filter((r) => !opened.has(r.cookie)),
        'state changes of sockets not in the capture',
      ).toEqual([]);
    }, 60_000);

    // Wrapped: a shell that execs the program (as `ip netns exec`, env or nice do), so the kernel side sees two execs
    // before the agent decides on the first; its "no" to the shell must leave the program pending, its children too.
    for (const wrapped of [false, true])
      it(`watches what a program --exe chooses forked before the agent decided${wrapped ? ", also when a shell exec'd it before the agent read the shell's exec" : ''}`, async () => {
        const dir = tempDir();
        const python = pythonNamed(dir, 'loupe-exe-forker');
        const { listener, port } = await listenerTaking(1);
        const capture = path.join(dir, 'forker.loupe');
        const { agent, stderr } = startAgent(['record', '-o', capture, '--exe', 'loupe-exe-forker$']);
        let forker: ChildProcess | undefined;
        let childPid = 0;
        try {
          await waitFor(agent, 'stderr', /attached/);
          await new Promise((r) => setTimeout(r, 300));
          // The agent stopped: the program forks while it is pending, before the agent has chosen it.
          process.kill(agent.pid!, 'SIGSTOP');
          try {
            const script = `
import os, socket, sys
child = os.fork()
if child == 0:
    sys.stdin.readline()
    with socket.create_connection(('127.0.0.1', ${port})) as s:
        s.sendall(b'from the child')
    os._exit(0)
print(child, flush=True)
os.waitpid(child, 0)
`;
            forker = wrapped
              ? spawn('/bin/sh', ['-c', 'exec "$0" "$@"', python, '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
              : spawn(python, ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
            childPid = Number((await waitFor(forker, 'stdout', /\d+\n/)).trim());
          } finally {
            process.kill(agent.pid!, 'SIGCONT');
          }
          // The agent decides on the exec, and on the child forked meanwhile.
          const childChosen = new RegExp(`watching pid ${childPid}\\b.*: forked by a program --exe chose`);
          await until(
            () => childChosen.test(stderr()),
            () => `the child chosen; agent said: ${stderr()}`,
          );
          const done = waitFor(listener, 'stdout', /done/);
          forker.stdin!.write('go\n');
          await done;
        } finally {
          agent.kill('SIGINT');
          for (const c of [listener, forker]) c?.kill();
        }
        expect(await exited(agent)).toBe(0);
        expect(payloads(recordsOf(capture), childPid, 'egress')).toEqual(['from the child']);
      }, 60_000);

    it('decides on a program --exe watched as pending whose exec record was lost (a full ring buffer), from /proc', async () => {
      const dir = tempDir();
      const blast = path.join(dir, 'loupe-lost-blast');
      execFileSync('gcc', ['-O2', '-pthread', '-o', blast, path.join(ROOT, 'bench/tools/blast.c')]);
      const matching = pythonNamed(dir, 'loupe-lost-match');
      const { listener, port } = await listenerTaking(2);
      const capture = path.join(dir, 'lost.loupe');
      const { agent, stderr } = startAgent(['record', '-o', capture, '--ring-mb', '1', '--exe', 'loupe-lost-(blast|match)$']);
      let matched: ChildProcess | undefined;
      let other: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached/);
        // Not a wait on a condition, and not removable yet: without it 1 of 4 runs under stress-ng failed
        // (the program not chosen kept); with it 6 of 6 passed. What it waits for is not known.
        await new Promise((r) => setTimeout(r, 300));
        // The agent stopped, a chosen program fills the 1 MiB ring buffer: the two execs after it are lost.
        process.kill(agent.pid!, 'SIGSTOP');
        try {
          execFileSync(blast, [String(await freePort()), '2500', '1', '4000']);
          // Each stays until told to go: deciding without the exec record, the agent reads /proc.
          matched = sender(matching, port, 'matched', process.env, true);
          other = sender('python3', port, 'not matched', process.env, true);
          const runsPython = (pid: number) => {
            try {
              return path.basename(fs.readlinkSync(`/proc/${pid}/exe`)).startsWith('python');
            } catch {
              return false;
            }
          };
          await until(() => runsPython(matched!.pid!) && runsPython(other!.pid!), "both exec'd");
        } finally {
          process.kill(agent.pid!, 'SIGCONT');
        }
        await new Promise((r) => setTimeout(r, 600)); // the agent empties the ring buffer
        const done = waitFor(listener, 'stdout', /done/);
        for (const c of [matched, other]) c!.stdin!.write('go\n');
        await done;
        await until(
          () => stderr().includes(`watching pid ${matched!.pid}`),
          () => `the matching program chosen from /proc; agent said: ${stderr()}`,
        );
        for (const c of [matched, other]) c!.stdin!.end('exit\n');
      } finally {
        agent.kill('SIGINT');
        for (const c of [listener, matched, other]) c?.kill();
      }
      expect(await exited(agent)).toBe(0);
      expect(stderr()).toMatch(/\d+ records lost by the kernel side/);
      const records = recordsOf(capture);
      expect(
        records.filter((r) => r.type === 'proc_exec' && (r.pid === matched!.pid || r.pid === other!.pid)),
        'their exec records were lost',
      ).toEqual([]);
      expect(payloads(records, matched!.pid!, 'egress')).toEqual(['matched']);
      // A loss record, like tcp_state, carries whichever process made the next record that fitted.
      expect(
        records.filter((r) => r.pid === other!.pid && r.type !== 'tcp_state' && r.type !== 'loss'),
        'nothing of the program not chosen',
      ).toEqual([]);
    }, 60_000);

    it('adds a process whose executable matches --exe when it starts, and not one that does not', async () => {
      const dir = tempDir();
      const python = pythonNamed(dir, 'loupe-exe-match');
      const { listener, port } = await listenerTaking(2);
      const capture = path.join(dir, 'exe.loupe');
      const { agent } = startAgent(['record', '-o', capture, '--exe', 'loupe-exe-match$']);
      let matched: ChildProcess | undefined;
      let other: ChildProcess | undefined;
      try {
        await waitFor(agent, 'stderr', /attached/);
        // Started after the agent: their exec is what --exe is decided on.
        matched = sender(python, port, 'matched');
        other = sender('python3', port, 'not matched');
        const done = waitFor(listener, 'stdout', /done/);
        for (const c of [matched, other]) c.stdin!.write('go\n');
        await done;
      } finally {
        agent.kill('SIGINT');
        for (const c of [listener, matched, other]) c?.kill();
      }
      expect(await exited(agent)).toBe(0);
      const records = recordsOf(capture);
      expect(payloads(records, matched.pid!, 'egress')).toEqual(['matched']);
      expect(
        records.filter((r) => r.pid === other!.pid && r.type === 'data'),
        'nothing of the other process',
      ).toEqual([]);
      expect(
        records.filter((r) => r.pid === listener.pid && r.type === 'data'),
        'nor of the listener, started before',
      ).toEqual([]);
    }, 60_000);
  },
);
