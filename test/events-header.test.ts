/**
 * bpf/events.h is the one definition of kernel records. This test reads the
 * header's structs, enums and #defines, has the C compiler report every
 * offset, size and value, and compares them with src/events/layout.ts, so the
 * C side and the TypeScript decoder cannot drift apart silently.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONSTANTS, ENUMS, layoutOf, STRUCT_MEMBERS, type StructName } from '../src/events/layout';

const HEADER = path.resolve(__dirname, '../bpf/events.h');

function findCompiler(): string | undefined {
  for (const cc of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(cc, ['--version'], { stdio: 'ignore' });
      return cc;
    } catch {
      /* try the next */
    }
  }
  return undefined;
}

/** Struct members and enum constants as written in the header (one per line, see its rules). */
function parseHeader(text: string) {
  const structs = new Map<string, string[]>();
  for (const m of text.matchAll(/struct (\w+) \{([^}]*)\};/g)) {
    const members = [...m[2]!.matchAll(/^\s*(?:struct \w+|__[us]\d+|char)\s+(\w+)(?:\[[^\]]+\])?;/gm)].map((x) => x[1]!);
    structs.set(m[1]!, members);
  }
  const enums = new Map<string, string[]>();
  for (const m of text.matchAll(/enum (\w+) \{([^}]*)\};/g)) {
    enums.set(
      m[1]!,
      [...m[2]!.matchAll(/^\s*(\w+)\s*=/gm)].map((x) => x[1]!),
    );
  }
  const defines = [...text.matchAll(/^#define (LOUPE_\w+)[ \t]+\S/gm)].map((m) => m[1]!);
  return { structs, enums, defines };
}

const compiler = findCompiler();
const parsed = parseHeader(fs.readFileSync(HEADER, 'utf8'));

describe('bpf/events.h and src/events/layout.ts agree', () => {
  it('declare the same structs with the same members in the same order', () => {
    expect([...parsed.structs.keys()].sort()).toEqual(Object.keys(STRUCT_MEMBERS).sort());
    for (const [name, members] of parsed.structs) {
      expect(
        STRUCT_MEMBERS[name as StructName].map(([m]) => m),
        name,
      ).toEqual(members);
    }
  });

  it('declare the same enums and constants', () => {
    expect([...parsed.enums.keys()].sort()).toEqual(Object.keys(ENUMS).sort());
    for (const [name, members] of parsed.enums) {
      expect(Object.keys(ENUMS[name as keyof typeof ENUMS]), name).toEqual(members);
    }
    expect(parsed.defines.sort()).toEqual(Object.keys(CONSTANTS).sort());
  });

  it.skipIf(!compiler)(`match the C compiler's offsets, sizes and values${compiler ? '' : ' (skipped: no C compiler; make test installs gcc)'}`, () => {
    const lines: string[] = ['#include <stdio.h>', '#include <stddef.h>', `#include "${HEADER}"`, 'int main(void) {'];
    for (const [name, members] of parsed.structs) {
      lines.push(`printf("sizeof %s %zu\\n", "${name}", sizeof(struct ${name}));`);
      lines.push(`printf("alignof %s %zu\\n", "${name}", _Alignof(struct ${name}));`);
      for (const m of members) {
        lines.push(`printf("offsetof %s.%s %zu\\n", "${name}", "${m}", offsetof(struct ${name}, ${m}));`);
        lines.push(`printf("sizeof %s.%s %zu\\n", "${name}", "${m}", sizeof(((struct ${name} *)0)->${m}));`);
      }
    }
    for (const members of parsed.enums.values()) for (const c of members) lines.push(`printf("value %s %lld\\n", "${c}", (long long)${c});`);
    for (const d of parsed.defines) lines.push(`printf("value %s %lld\\n", "${d}", (long long)(${d}));`);
    lines.push('return 0; }');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-layout-'));
    const source = path.join(dir, 'layout.c');
    const binary = path.join(dir, 'layout');
    fs.writeFileSync(source, lines.join('\n'));
    execFileSync(compiler!, ['-std=c11', '-Wall', '-Werror', '-Wpadded', source, '-o', binary]);
    const facts = new Map(
      execFileSync(binary, { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((l) => {
          const [kind, key, value] = l.split(' ');
          return [`${kind} ${key}`, Number(value)] as const;
        }),
    );
    fs.rmSync(dir, { recursive: true });

    let checked = 0;
    for (const name of Object.keys(STRUCT_MEMBERS) as StructName[]) {
      const layout = layoutOf(name);
      expect(layout.size, `sizeof ${name}`).toBe(facts.get(`sizeof ${name}`));
      expect(layout.align, `alignof ${name}`).toBe(facts.get(`alignof ${name}`));
      for (const [member, m] of Object.entries(layout.members)) {
        expect(m.offset, `offsetof ${name}.${member}`).toBe(facts.get(`offsetof ${name}.${member}`));
        expect(m.size, `sizeof ${name}.${member}`).toBe(facts.get(`sizeof ${name}.${member}`));
        checked++;
      }
    }
    for (const values of Object.values(ENUMS)) {
      for (const [k, v] of Object.entries(values)) expect(v, k).toBe(facts.get(`value ${k}`));
    }
    for (const [k, v] of Object.entries(CONSTANTS)) expect(v, k).toBe(facts.get(`value ${k}`));
    expect(checked).toBeGreaterThan(60);
  });
});

describe('docs/formats.md agrees with the layout', () => {
  it('lists every record type with its value, struct and size', () => {
    const doc = fs.readFileSync(path.resolve(__dirname, '../docs/formats.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `(\w+)` \| (\d+) \| `?(\w+)`?[^|]*\| ([^|]+) \|$/gm)].map((m) => ({ type: m[1]!, value: Number(m[2]), struct: m[3]!, size: m[4]!.trim() }));
    const types = ENUMS.loupe_event_type;
    expect(rows.map((r) => r.type)).toEqual(Object.keys(types).map((k) => k.slice('LOUPE_EV_'.length).toLowerCase()));
    for (const row of rows) {
      expect(row.value, row.type).toBe(types[`LOUPE_EV_${row.type.toUpperCase()}` as keyof typeof types]);
      const struct = row.struct === 'same' ? undefined : (row.struct as StructName);
      if (row.type === 'data') expect(row.size).toBe(`${layoutOf('loupe_data_event').members.payload!.offset} + captured`);
      else if (row.type === 'proc_info') expect(row.size).toBe(`${layoutOf('loupe_proc_info_event').members.json!.offset} + length`);
      else if (struct) expect(Number(row.size), row.type).toBe(layoutOf(struct).size);
    }
  });
});
