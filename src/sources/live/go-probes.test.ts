import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../../../test/helpers';
import { GO_OFFSETS } from '../../discovery/goelf';
import { CONSTANTS, offsetOf } from '../../events/layout';
import { encodeGoOffsets, isGoBinary, planGoProbes } from './go-probes';

const goVersion = spawnSync('go', ['version'], { encoding: 'utf8' });
const release = /go(\d+\.\d+)/.exec(goVersion.stdout ?? '')?.[0] ?? '';
const reason =
  goVersion.status !== 0
    ? 'go is not installed'
    : spawnSync('objdump', ['--version']).status !== 0
      ? 'objdump (binutils) is not installed'
      : !GO_OFFSETS[release]
        ? `the offsets table has no ${release} (a binary without DWARF would be refused)`
        : '';
if (reason) console.warn(`Go probe plan tests skipped: ${reason}`);

describe.skipIf(Boolean(reason))(`Go probe plans${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let noDwarf = '';
  beforeAll(() => {
    const dir = tempDir();
    noDwarf = path.join(dir, 'backend-nodwarf');
    execFileSync('go', ['build', '-ldflags=-w', '-o', noDwarf, path.join(ROOT, 'scenarios/services/backend.go')], {
      env: { ...process.env, GO111MODULE: 'off' },
      cwd: dir,
    });
  }, 120_000);

  const flags = (b: Buffer) => b.readUInt32LE(offsetOf('loupe_go_offsets', 'flags'));

  it('knows a Go program by its sections, and not a C one', () => {
    expect(isGoBinary(noDwarf)).toBe(true);
    expect(isGoBinary(process.execPath)).toBe(false);
    // Not an ELF file, a Go binary cut inside its section headers, a missing file: no, and no throw.
    expect(isGoBinary('/etc/hostname')).toBe(false);
    const whole = fs.readFileSync(noDwarf);
    const cut = path.join(tempDir(), 'cut');
    fs.writeFileSync(cut, whole.subarray(0, Number(whole.readBigUInt64LE(0x28)) + 100));
    expect(isGoBinary(cut)).toBe(false);
    expect(isGoBinary('/nonexistent/go-program')).toBe(false);
  });

  it('plans entry and RET probes with offsets from the table when the binary has no DWARF', async () => {
    const plan = await planGoProbes(noDwarf);
    expect(plan.offsetsFrom).toBe('table');
    expect(plan.functions).toContain('net/http.serverHandler.ServeHTTP');
    expect(plan.probes.filter(([p]) => p === 'go_serve_http')).toHaveLength(1);
    expect(plan.probes.filter(([p]) => p === 'go_serve_http_ret').length).toBeGreaterThan(0);
    expect(plan.canInject).toBe(true);
    // net/http links crypto/tls: its plaintext probes go on too, with Conn.conn from the table.
    expect(plan.probes.map(([p]) => p)).toEqual(expect.arrayContaining(['go_tls_write', 'go_tls_read', 'go_tls_io_ret']));
    expect(flags(encodeGoOffsets(plan, false)) & CONSTANTS.LOUPE_GO_F_TLS).toBe(CONSTANTS.LOUPE_GO_F_TLS);
    expect(flags(encodeGoOffsets(plan, true)) & CONSTANTS.LOUPE_GO_F_INJECT).toBe(CONSTANTS.LOUPE_GO_F_INJECT);
    expect(flags(encodeGoOffsets(plan, false)) & CONSTANTS.LOUPE_GO_F_INJECT).toBe(0);
    // The itab a net.Conn must have to be followed to an fd: the one nm names (the binary is not position-independent).
    const nm = execFileSync('nm', [noDwarf], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const itab = /^([0-9a-f]+) \S go[.:]itab\.\*net\.TCPConn,net\.Conn$/m.exec(nm)![1]!;
    expect(plan.tcpConnItab).toEqual({ addr: BigInt(`0x${itab}`), pie: false });
    expect(encodeGoOffsets(plan, true).readBigUInt64LE(offsetOf('loupe_go_offsets', 'tcpconn_itab'))).toBe(BigInt(`0x${itab}`));
  });

  it("names the packages that call C code of their own, and not net's resolver", async () => {
    // backend.go is built with cgo on: net reaches getaddrinfo through it, and that is all.
    expect((await planGoProbes(noDwarf)).cCallers).toEqual([]);
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'main.go'),
      'package main\n\n// #include <unistd.h>\nimport "C"\n\nimport (\n\t"fmt"\n\t"net/http"\n)\n\nfunc main() {\n\tfmt.Println(C.getpid())\n\thttp.Get("http://127.0.0.1:1/")\n}\n',
    );
    const bin = path.join(dir, 'ccall');
    execFileSync('go', ['build', '-o', bin, 'main.go'], { env: { ...process.env, CGO_ENABLED: '1', GO111MODULE: 'off' }, cwd: dir });
    expect((await planGoProbes(bin)).cCallers).toEqual(['main']);
  }, 120_000);

  it('keeps the probes but puts no header on a program whose header-map layout it does not know', async () => {
    const table = GO_OFFSETS[release]!;
    // The member of this release's layout (buckets to Go 1.23, a swiss table from 1.24) that goes missing.
    const member = table['hash<string,[]string>.B'] !== undefined ? 'hash<string,[]string>.B' : 'map<string,[]string>.dirPtr';
    const saved = table[member];
    delete table[member];
    try {
      const plan = await planGoProbes(noDwarf);
      expect(plan.probes.length).toBeGreaterThan(0);
      expect(plan.canInject).toBe(false);
      expect(plan.skipped).toContain('traceparent injection off for it: its header map is neither layout Loupe reads');
      expect(plan.skipped).toContain(`${member} is not in its DWARF`);
      expect(flags(encodeGoOffsets(plan, true)) & CONSTANTS.LOUPE_GO_F_INJECT).toBe(0);
    } finally {
      table[member] = saved!;
    }
  });
});
