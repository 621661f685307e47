import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, globToRegExp, loadConfig, parseCpuList, propagatesByRules } from './config';
import { HEADER, tempDir } from '../../test/helpers';
import { get, ok, Script } from '../../test/script';
import { Pipeline } from '../pipeline/pipeline';
import type { Span } from '../correlator/span';

function file(text: string): string {
  const f = path.join(tempDir(), 'loupe.yaml');
  fs.writeFileSync(f, text);
  return f;
}

describe('configuration', () => {
  it('reads YAML sections and fills defaults', () => {
    const c = loadConfig(
      file(
        'discovery:\n  exe: "front|back"\n  ports: [8080, 9090]\nservices:\n  - { exe: "/front$", name: storefront }\nroutes:\n  patterns: ["/factorial/{n}"]\n  ignore: ["/health"]\n',
      ),
      {},
    );
    expect(c.discovery).toEqual({ pids: [], exe: 'front|back', ports: [8080, 9090], open_ports: [] });
    expect(loadConfig(file('discovery:\n  open_ports: [8080]\n'), {}).discovery.open_ports).toEqual([8080]);
    expect(loadConfig(undefined, { LOUPE_OPEN_PORTS: '80,443' }).discovery.open_ports).toEqual([80, 443]);
    expect(c.services).toEqual([{ exe: '/front$', name: 'storefront' }]);
    expect(c.routes).toEqual({ patterns: ['/factorial/{n}'], ignore: ['/health'], heuristic: true });
    expect(c.capture).toEqual({ max_payload: 65_536, ring_mb: 16, redact: true });
    expect(c.go).toEqual({ enabled: true, inject_traceparent: true, inject_despite_fionread: false });
  });

  it('turns traceparent injection off from the file or the environment', () => {
    expect(loadConfig(file('go:\n  inject_traceparent: false\n'), {}).go).toEqual({ enabled: true, inject_traceparent: false, inject_despite_fionread: false });
    expect(loadConfig(undefined, { LOUPE_GO_INJECT: 'false' }).go.inject_traceparent).toBe(false);
    // Injection on a kernel whose sockhash breaks FIONREAD: off unless said, in the file or the environment.
    expect(loadConfig(file('go:\n  inject_despite_fionread: true\n'), {}).go.inject_despite_fionread).toBe(true);
    expect(loadConfig(undefined, { LOUPE_GO_INJECT_DESPITE_FIONREAD: 'true' }).go.inject_despite_fionread).toBe(true);
    expect(loadConfig(undefined, { LOUPE_GO: 'false' }).go.enabled).toBe(false);
    expect(() => loadConfig(file('go:\n  inject: false\n'), {})).toThrow(/go: Unrecognized key\(s\) in object: 'inject'/);
  });

  it('names the key that is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['discovery:\n  ports: [8080, "x"]\n', /discovery\.ports\[1\]: Expected number, received string/],
      ['discovery:\n  exe: "("\n', /discovery\.exe: is not a valid regular expression/],
      ['capture:\n  ring_mb: 3\n', /capture\.ring_mb: must be a power of two/],
      ['routes:\n  patterns: ["nope"]\n', /routes\.patterns\[0\]: Invalid input: must start with "\/"/],
      ['export:\n  otlp: yes please\n', /export\.otlp: Expected boolean, received string/],
      ['agent:\n  cpus: "1-"\n', /agent\.cpus: is not a CPU list/],
      ['export:\n  sampler: { name: xray }\n', /export\.sampler\.name: Invalid enum value\. Expected 'always_on' \| /],
      ['export:\n  sampler: { name: traceidratio, arg: 2 }\n', /export\.sampler\.arg: Number must be less than or equal to 1/],
      ['discover:\n  pids: [1]\n', /\(top level\): Unrecognized key\(s\) in object: 'discover'/],
      ['services:\n  - { name: web }\n', /services\[0\]: a rule needs exe or container \(a regular expression\)/],
      ['services:\n  - { container: "[", name: web }\n', /services\[0\]\.container: is not a valid regular expression/],
      ['[1, 2]\n', /must be a mapping/],
      ['a: [\n', /not valid YAML/],
    ];
    for (const [text, re] of cases) {
      const f = file(text);
      expect(() => loadConfig(f, {}), text).toThrow(ConfigError);
      expect(() => loadConfig(f, {}), text).toThrow(re);
    }
  });

  it('names the variable, not the file, for a bad value the environment gave, and takes decimal numbers only', () => {
    const f = file('discovery:\n  ports: [80]\n');
    expect(() => loadConfig(f, { LOUPE_PORTS: '99999' })).toThrow(/^LOUPE_PORTS=99999: discovery\.ports\[0\]: Number must be less than or equal to 65535$/);
    for (const junk of ['1e3', '0x50', '8080.5', '-1', '+80']) {
      expect(() => loadConfig(undefined, { LOUPE_PORTS: junk }), junk).toThrow(`LOUPE_PORTS=${junk}: expected a whole decimal number`);
    }
    expect(loadConfig(undefined, { LOUPE_PORTS: '80, 443' }).discovery.ports).toEqual([80, 443]);
    expect(() => loadConfig(file('discovery:\n  pids: [5000000]\n'), {})).toThrow(/discovery\.pids\[0\]: Number must be less than or equal to 4194304/);
  });

  it('reads CPU lists as taskset writes them, from the file or LOUPE_CPUS', () => {
    expect(parseCpuList('1')).toEqual([1]);
    expect(parseCpuList('3,0-1, 1')).toEqual([0, 1, 3]);
    expect(parseCpuList('2-4')).toEqual([2, 3, 4]);
    for (const bad of ['', '1-', '-1', '3-1', 'a', '1,,2', '1.5']) expect(parseCpuList(bad), bad).toBeUndefined();
    expect(loadConfig(file('agent:\n  cpus: "0,2-3"\n'), {}).agent.cpus).toBe('0,2-3');
    expect(loadConfig(undefined, { LOUPE_CPUS: '1' }).agent.cpus).toBe('1');
    expect(loadConfig(undefined, {}).agent.cpus).toBeUndefined();
  });

  it('turns executable globs into anchored path patterns', () => {
    const g = globToRegExp('/srv/*/bin/front*');
    expect(g.test('/srv/shop/bin/frontend')).toBe(true);
    expect(g.test('/srv/shop/x/bin/frontend')).toBe(false);
    expect(globToRegExp('**/frontend').test('/opt/a/b/frontend')).toBe(true);
    expect(globToRegExp('/usr/bin/node?').test('/usr/bin/node2')).toBe(true);
    expect(globToRegExp('/a.b/c').test('/aXb/c')).toBe(false);
  });

  it('lets LOUPE_* variables override the file', () => {
    const c = loadConfig(file('discovery:\n  ports: [1]\nexport:\n  otlp: false\n'), { LOUPE_PORTS: '8080, 9090', LOUPE_OTLP: 'true', LOUPE_ROUTES: '/a/{x},/b/{y}' });
    expect(c.discovery.ports).toEqual([8080, 9090]);
    expect(c.export.otlp).toBe(true);
    expect(c.routes.patterns).toEqual(['/a/{x}', '/b/{y}']);
    expect(() => loadConfig(undefined, { LOUPE_REDACT: 'maybe' })).toThrow(/LOUPE_REDACT=maybe: expected true or false/);
    expect(() => loadConfig(undefined, { LOUPE_PORTS: '70000' })).toThrow(/^LOUPE_PORTS=70000: discovery\.ports\[0\]: Number must be less than or equal to 65535$/);
  });

  it('routes and service rules recorded in a capture header name spans in its replay', () => {
    const s = new Script();
    const [curl, front] = s.connection({ pid: 3, tid: 3, fd: 3, port: 40000 }, { pid: 1, tid: 11, fd: 5, port: 8080 });
    for (const p of ['/factorial/5', '/health']) {
      s.send(curl, get(p));
      s.recv(front, get(p));
      s.send(front, ok());
      s.recv(curl, ok());
    }
    const spans: Span[] = [];
    const header = {
      ...HEADER,
      processes: [
        { pid: 1, exe: '/srv/bin/front' },
        { pid: 3, exe: '/usr/bin/curl' },
      ],
      config: { routes: { patterns: ['/factorial/{n}'], ignore: ['/health'], heuristic: true }, services: [{ exe: '/front$', name: 'storefront' }] },
    };
    const p = new Pipeline(header, [{ onSpan: (x) => spans.push(x) }]);
    p.push(s.events);
    p.finish();
    const servers = spans.filter((x) => x.kind === 'server');
    expect(servers.map((x) => [x.service, x.name, x.attributes['http.route'] ?? null])).toEqual([
      ['storefront', 'GET /factorial/{n}', '/factorial/{n}'],
      ['storefront', 'GET', null],
    ]);
  });

  it('turns propagation off for the processes a rule with propagate: false names first, and leaves it on for the rest', () => {
    const c = loadConfig(file('services:\n  - { exe: "/legacy$", name: legacy, propagate: false }\n  - { exe: "/front$", name: front }\n'));
    expect(propagatesByRules({ pid: 1, exe: '/srv/legacy' }, c.services)).toBe(false);
    expect(propagatesByRules({ pid: 2, exe: '/srv/front' }, c.services)).toBe(true);
    expect(propagatesByRules({ pid: 3, exe: '/usr/bin/curl' }, c.services)).toBe(true);
    expect(() => loadConfig(file('services:\n  - { exe: "x", name: x, propagate: "no" }\n'))).toThrow(/services\[0\]\.propagate/);
  });
});
