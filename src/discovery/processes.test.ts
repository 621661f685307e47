import { describe, expect, it } from 'vitest';
import { HEADER } from '../../test/helpers';
import { get, ok, Script } from '../../test/script';
import { Pipeline } from '../pipeline/pipeline';
import { OutputPipeline } from '../pipeline/output';
import type { Span } from '../correlator/span';
import { ProcessTable } from './processes';

describe('process table', () => {
  it('names each process a reused pid stood for, in the order the header lists them', () => {
    const table = new ProcessTable([
      { pid: 7, exe: '/srv/first', service: 'first' },
      { pid: 8, exe: '/srv/other' },
      { pid: 7, exe: '/srv/second' },
    ]);
    expect(table.serviceOf(7)).toBe('first');
    table.onExit(7);
    expect(table.serviceOf(7)).toBe('second');
    expect(table.get(7)?.exe).toBe('/srv/second');
    table.onExit(7);
    expect(table.get(7)).toBeUndefined();
    expect(table.serviceOf(7)).toBe('pid-7');
    table.learn({ pid: 7, exe: '/srv/third' });
    expect(table.serviceOf(7)).toBe('third');
    expect(table.serviceOf(8)).toBe('other');
  });

  it('names a process by a rule on its container (name, image or id), on its executable, or on both', () => {
    const rules = [
      { exe: '/nginx$', container: '^edge-', name: 'edge-proxy' },
      { container: '^localhost/shop-web$', name: 'web' },
      { container: '^shop-db-', name: 'db' },
      { exe: '/nginx$', name: 'nginx-on-host' },
    ];
    const inContainer = (pid: number, exe: string, name: string, image: string) => ({ pid, exe, container: { id: `${pid}`.repeat(8), runtime: 'podman' as const, name, image } });
    const table = new ProcessTable(
      [
        inContainer(1, '/usr/sbin/nginx', 'edge-1', 'localhost/nginx:1.22'),
        inContainer(2, '/app', 'shop-web-7', 'localhost/shop-web'),
        inContainer(3, '/usr/sbin/mariadbd', 'shop-db-1', 'localhost/mariadb'),
        { pid: 4, exe: '/usr/sbin/nginx' },
        inContainer(5, '/app', 'other', 'localhost/other'),
        { pid: 6, exe: '/app', service: 'own-name' },
      ],
      rules,
    );
    expect([1, 2, 3, 4, 5, 6].map((pid) => table.serviceOf(pid))).toEqual(['edge-proxy', 'web', 'db', 'nginx-on-host', 'app', 'own-name']);
    // Named by the runtime only later (its API answered after the process was first described): the rule applies then.
    const later = new ProcessTable([{ pid: 7, exe: '/app', container: { id: 'abc', runtime: 'podman' } }], rules);
    expect(later.serviceOf(7)).toBe('app');
    later.learn({ pid: 7, exe: '/app', container: { id: 'abc', runtime: 'podman', name: 'shop-db-2' } });
    expect(later.serviceOf(7)).toBe('db');
  });

  it('a process learnt while its pid is alive does not replace it', () => {
    const table = new ProcessTable([{ pid: 7, exe: '/srv/first' }]);
    table.learn({ pid: 7, exe: '/srv/imposter' });
    expect(table.serviceOf(7)).toBe('first');
  });

  it("a forked child runs its parent's program under its parent's service until it execs; a known child is not renamed", () => {
    const table = new ProcessTable([
      { pid: 10, exe: '/usr/lib/postgresql/15/bin/postgres', service: 'orders-db' },
      { pid: 12, exe: '/bin/sh' },
    ]);
    table.onFork(11, 10);
    expect(table.get(11)).toMatchObject({ pid: 11, ppid: 10, exe: '/usr/lib/postgresql/15/bin/postgres' });
    expect(table.serviceOf(11)).toBe('orders-db');
    table.onFork(12, 10);
    expect(table.serviceOf(12)).toBe('sh');
    table.onExec({ type: 'proc_exec', ts: 1n, pid: 11, tid: 11, cpu: 0, ppid: 10, uid: 0, comm: 'psql', filename: '/usr/bin/psql' });
    expect(table.get(11)?.exe).toBe('/usr/bin/psql');
    table.onFork(13, 99); // a parent nobody described: nothing to inherit
    expect(table.serviceOf(13)).toBe('pid-13');
  });
});

describe('a pid reused within one capture', () => {
  const script = () => {
    const s = new Script();
    const [c1, a] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 7, tid: 7, fd: 5, port: 8080 });
    s.send(c1, get('/one'));
    s.recv(a, get('/one'));
    s.send(a, ok());
    s.recv(c1, ok());
    // Another request left open when the process exits: it ends with the first process's name.
    s.send(c1, get('/unanswered'));
    s.recv(a, get('/unanswered'));
    s.events.push({ type: 'proc_exit', ts: (s.ts += 1000n), pid: 7, tid: 7, cpu: 0, exitCode: 0 });
    const [c2, b] = s.connection({ pid: 3, tid: 3, fd: 4, port: 40001 }, { pid: 7, tid: 7, fd: 5, port: 8080 });
    s.send(c2, get('/two'));
    s.recv(b, get('/two'));
    s.send(b, ok());
    s.recv(c2, ok());
    return s;
  };
  const header = {
    ...HEADER,
    processes: [
      { pid: 3, exe: '/usr/bin/curl' },
      { pid: 7, exe: '/srv/first' },
      { pid: 7, exe: '/srv/second' },
    ],
  };

  it('gives each server span the service of the process that served it', () => {
    const spans: Span[] = [];
    const p = new Pipeline(header, [{ onSpan: (x) => spans.push(x) }]);
    p.push(script().events);
    p.finish();
    const servers = spans.filter((x) => x.kind === 'server');
    expect(servers.map((x) => [x.attributes['url.path'], x.service])).toEqual([
      ['/one', 'first'],
      ['/unanswered', 'first'],
      ['/two', 'second'],
    ]);
  });

  it('gives each OTLP span the resource of its own process', () => {
    let text = '';
    const replay = new OutputPipeline(header, 'otlp-json', (t) => (text += t));
    replay.pushEvents(script().events);
    replay.finish();
    const doc = JSON.parse(text) as {
      resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeSpans: Array<{ spans: Array<{ name: string }> }> }>;
    };
    const byExe = new Map<string, string[]>();
    for (const rs of doc.resourceSpans) {
      const exe = rs.resource.attributes.find((a) => a.key === 'process.executable.path')?.value.stringValue ?? '';
      byExe.set(exe, [...(byExe.get(exe) ?? []), ...rs.scopeSpans.flatMap((s) => s.spans.map((x) => x.name))]);
    }
    expect(byExe.get('/srv/first')?.sort()).toEqual(['GET /one', 'GET /unanswered']);
    expect(byExe.get('/srv/second')).toEqual(['GET /two']);
  });
});
