/**
 * The generated offsets table (scripts/go-offsets.ts) against DWARF, release
 * by release of the matrix (scenarios/go-releases/releases.tsv): each
 * release's gofactorial, built with DWARF, has exactly the table's offsets;
 * built stripped (-ldflags=-s -w), its probe plan takes them from the table,
 * the same as from DWARF, and can inject. Builds are cached (build/go-releases).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../test/helpers';
import { planGoProbes, TABLE_FIELDS } from '../sources/live/go-probes';
import { GoBinary } from './goelf';
import { GENERATED_GO_OFFSETS } from './go-offsets.generated';

const SCRIPT = path.join(ROOT, 'scripts/go-releases.sh');
const releases = execFileSync(SCRIPT, ['list'], { encoding: 'utf8' }).trim().split('\n');
const reason = spawnSync('go', ['version']).status !== 0 ? 'go is not installed' : spawnSync('objdump', ['--version']).status !== 0 ? 'objdump (binutils) is not installed' : '';

/** A release's build, or why it could not be built (a toolchain the module proxy did not serve). */
function build(release: string, mode: 'exe' | 'stripped'): string {
  const r = spawnSync(SCRIPT, ['build', release, mode], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`go-releases.sh build ${release} ${mode}: ${r.stderr}`);
  return r.stdout.trim();
}

describe.skipIf(Boolean(reason))(`the Go offsets table${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('has a row for every release of the matrix, and no other', () => {
    expect(Object.keys(GENERATED_GO_OFFSETS).sort()).toEqual([...releases].sort());
  });

  for (const release of releases) {
    it(`${release}: DWARF gives the table's offsets; stripped, the plan reads the table and can inject`, async () => {
      const binary = build(release, 'exe');
      const resolved = await new GoBinary(binary).resolveFields([...TABLE_FIELDS]);
      const fromDwarf: Record<string, number> = {};
      for (const [field, r] of resolved) if (!(r instanceof Error) && r.from === 'dwarf') fromDwarf[field] = r.offset;
      expect(fromDwarf).toEqual(GENERATED_GO_OFFSETS[release]);
      const withDwarf = await planGoProbes(binary);
      const stripped = await planGoProbes(build(release, 'stripped'));
      expect(stripped.offsetsFrom).toBe('table');
      expect(withDwarf.offsetsFrom).toBe('dwarf');
      // gRPC's come only from DWARF: the stripped plan leaves them (and the gRPC probes) out.
      const { grpc_stream_method: _a, grpc_server_conn: _b, grpc_cc_target: _c, ...rest } = withDwarf.offsets;
      expect(stripped.offsets).toEqual(rest);
      expect(stripped.canInject).toBe(true);
      expect(stripped.swissMap).toBe(withDwarf.swissMap);
      // Go 1.24 made maps swiss tables.
      expect(withDwarf.swissMap).toBe(Number(release.split('.')[1]) >= 24);
    }, 600_000);
  }
});
