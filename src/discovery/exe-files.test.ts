import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { exeFilesMatching, exeSearchDirs, kernelDev, USUAL_BIN_DIRS } from './exe-files';

describe('the files --exe matches', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const scratch = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-exe-'));
    dirs.push(d);
    return d;
  };
  const program = (file: string) => fs.writeFileSync(file, '#!/bin/sh\n', { mode: 0o755 });
  const id = (file: string) => {
    const st = fs.statSync(file, { bigint: true });
    return { dev: kernelDev(st.dev), ino: st.ino };
  };

  it('are the executables every name of which matches, links followed; one binary behind a name that does not match is left out', () => {
    const [a, b] = [scratch(), scratch()];
    program(path.join(a, 'curl'));
    program(path.join(a, 'busybox'));
    fs.linkSync(path.join(a, 'busybox'), path.join(a, 'wget')); // one file, two names: wget matches, busybox not
    program(path.join(a, 'notes-curl'));
    fs.chmodSync(path.join(a, 'notes-curl'), 0o644); // not executable
    fs.symlinkSync(path.join(a, 'curl'), path.join(b, 'curl')); // the same file by another path
    fs.symlinkSync(path.join(a, 'missing'), path.join(b, 'dangling'));
    const found = exeFilesMatching(/\/(curl|wget)$/, [a, b, path.join(a, 'absent'), 'relative/dir']);
    expect(found).toEqual([id(path.join(a, 'curl'))]);
    expect(exeFilesMatching(/\/(curl|wget|busybox)$/, [a]).length).toBe(2);
  });

  it("numbers devices as the kernel does (major << 20 | minor), from stat's encoding", () => {
    expect(kernelDev(0xfe00n)).toBe(254n << 20n); // 254:0
    expect(kernelDev(0x0801n)).toBe((8n << 20n) | 1n); // 8:1
    // A minor past 8 bits: glibc puts its high bits above the major's 12.
    const statDev = 0x45n | (0x123n << 8n) | (0x12300n << 12n);
    expect(kernelDev(statDev)).toBe((0x123n << 20n) | 0x12345n);
  });

  it("looks in PATH's directories first, then the usual ones", () => {
    expect(exeSearchDirs({ PATH: '/opt/x/bin::/usr/bin' })).toEqual(['/opt/x/bin', '/usr/bin', ...USUAL_BIN_DIRS]);
  });
});
