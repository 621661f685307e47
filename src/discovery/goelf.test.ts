import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../../test/helpers';
import { ElfError, GO_OFFSETS, GoBinary } from './goelf';

const reason = spawnSync('go', ['version']).status !== 0 ? 'go is not installed' : spawnSync('objdump', ['--version']).status !== 0 ? 'objdump (binutils) is not installed' : '';
if (reason) console.warn(`Go binary tests skipped: ${reason}`);

/** The probe points issue 9 names. */
const PROBES = ['runtime.newproc1', 'runtime.goexit1', 'net/http.serverHandler.ServeHTTP', 'net/http.(*Transport).roundTrip'];

describe.skipIf(Boolean(reason))(`Go binaries${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let bin = '';
  let stripped = '';
  let noDwarf = '';
  beforeAll(() => {
    const dir = tempDir();
    bin = path.join(dir, 'backend');
    stripped = path.join(dir, 'backend-stripped');
    const env = { ...process.env, GO111MODULE: 'off' };
    // A server and a client, so the linker keeps both sides of net/http.
    const src = path.join(dir, 'both.go');
    fs.writeFileSync(
      src,
      'package main\n\nimport (\n\t"net/http"\n\t"os"\n)\n\nfunc main() {\n\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {\n\t\tresp, err := http.Get(os.Args[1])\n\t\tif err == nil {\n\t\t\tresp.Body.Close()\n\t\t}\n\t})\n\thttp.ListenAndServe(os.Args[2], nil)\n}\n',
    );
    execFileSync('go', ['build', '-o', bin, src], { env, cwd: dir });
    execFileSync('go', ['build', '-ldflags=-s -w', '-o', stripped, path.join(ROOT, 'scenarios/services/backend.go')], { env, cwd: dir });
    noDwarf = path.join(dir, 'backend-nodwarf');
    execFileSync('go', ['build', '-ldflags=-w', '-o', noDwarf, path.join(ROOT, 'scenarios/services/backend.go')], { env, cwd: dir });
  }, 120_000);

  it('reads the Go version from .go.buildinfo', () => {
    const info = new GoBinary(bin).buildInfo();
    const go = spawnSync('go', ['version'], { encoding: 'utf8' }).stdout.split(' ')[2];
    expect(info.goVersion).toBe(go);
  });

  it('finds the functions issue 9 probes, and every RET offset it reports holds a RET', async () => {
    const elf = new GoBinary(bin);
    const bytes = fs.readFileSync(bin);
    for (const name of PROBES) {
      const fn = elf.functions().get(name);
      expect(fn, name).toBeDefined();
      // The entry is a real instruction start: Go's functions begin with a stack check or a sub.
      expect(fn!.size).toBeGreaterThan(0);
      const rets = await elf.retOffsets(fn!);
      expect(rets.length, name).toBeGreaterThan(0);
      for (const off of rets) {
        expect(off).toBeGreaterThanOrEqual(fn!.offset);
        expect(off).toBeLessThan(fn!.offset + fn!.size);
        expect(bytes[off], `${name} +${off - fn!.offset}`).toBe(0xc3);
      }
    }
  });

  it('reads struct field offsets from DWARF, and agrees with the versioned table where it has the release', async () => {
    const elf = new GoBinary(bin);
    const goid = await elf.fieldOffset('runtime.g', 'goid');
    expect(goid.from).toBe('dwarf');
    const release = /^go\d+\.\d+/.exec(elf.buildInfo().goVersion)![0];
    const table = GO_OFFSETS[release] ?? {};
    // Every entry of the table for this release is what the DWARF says, read in one pass.
    const fields = Object.keys(table);
    const read = await elf.fieldOffsets(fields);
    expect(read.map((r) => r.from)).toEqual(fields.map(() => 'dwarf'));
    expect(Object.fromEntries(fields.map((f, i) => [f, read[i]!.offset]))).toEqual(table);
    if (GO_OFFSETS[release]) expect(fields).toContain('runtime.g.goid');
    const sched = await elf.fieldOffset('runtime.g', 'sched');
    expect(sched.offset).toBeLessThan(goid.offset); // sched comes before goid in runtime.g
  });

  it('without DWARF uses the table for a known release and refuses an unknown one', async () => {
    const elf = new GoBinary(noDwarf);
    const release = /^go\d+\.\d+/.exec(elf.buildInfo().goVersion)![0];
    if (GO_OFFSETS[release]) expect(await elf.fieldOffset('runtime.g', 'goid')).toEqual({ offset: GO_OFFSETS[release]!['runtime.g.goid'], from: 'table' });
    await expect(elf.fieldOffset('runtime.g', 'no_such_field')).rejects.toThrow(/refusing to guess/);
  });

  it("finds a stripped binary's functions in .gopclntab, where the symbol table had them, and refuses a file with neither", () => {
    const fromPclntab = new GoBinary(stripped).functions();
    // The same program built with its symbol table (and without DWARF, which moves nothing in the text).
    const fromSymtab = new GoBinary(noDwarf).functions();
    for (const fn of ['runtime.newproc1', 'runtime.goexit1', 'net/http.serverHandler.ServeHTTP']) expect(fromPclntab.get(fn)?.offset, fn).toBe(fromSymtab.get(fn)!.offset);
    // Names with an ABI wrapper (NAME.abi0 in .symtab) are one name twice in .gopclntab: the body is taken.
    const both = [...fromSymtab.keys()].filter((n) => fromPclntab.has(n) && !fromSymtab.has(`${n}.abi0`));
    expect(both.length).toBeGreaterThan(1000);
    expect(both.filter((n) => fromPclntab.get(n)!.offset !== fromSymtab.get(n)!.offset).map((n) => [n, fromPclntab.get(n)!.offset, fromSymtab.get(n)!.offset])).toEqual([]);
    expect(() => new GoBinary('/usr/bin/true').functions()).toThrow(/no symbol table \(stripped/);
    expect(() => new GoBinary('/etc/hostname')).toThrow(ElfError);
  });
});
