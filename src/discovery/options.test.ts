import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CONFIG_SCHEMA, loadConfig } from './config';
import { configAsFlags, flagHelp, flagSpecs, KEYED_OPTIONS, OPTIONS, optionsTable } from './options';

const ROOT = path.join(__dirname, '..', '..');

/** Every leaf of the schema: `section.key`, or a top-level key whose value is not a section. */
function schemaKeys(): string[] {
  return Object.entries(CONFIG_SCHEMA.shape).flatMap(([name, schema]) => {
    let inner: z.ZodTypeAny = schema;
    while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner._def.innerType;
    return inner instanceof z.ZodObject ? Object.keys(inner.shape as object).map((k) => `${name}.${k}`) : [name];
  });
}

const valueAt = (config: unknown, key: string) => key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);

describe('the option table', () => {
  it('declares every key of the configuration schema, and no other', () => {
    expect(KEYED_OPTIONS.map((o) => o.key).sort()).toEqual(schemaKeys().sort());
  });

  it('gives each option the default the schema gives', () => {
    const defaults = CONFIG_SCHEMA.parse({});
    for (const o of KEYED_OPTIONS) expect(valueAt(defaults, o.key), o.key).toEqual(o.default);
  });

  it('sets each key from its variable, as the kind says', () => {
    const samples: Record<string, [string, unknown]> = {
      int: ['4096', 4096],
      'int-list': ['1, 2', [1, 2]],
      'string-list': ['/a,/b', ['/a', '/b']],
      bool: ['false', false],
      string: ['0', '0'],
    };
    for (const o of KEYED_OPTIONS.filter((x) => x.env)) {
      const [text, value] =
        o.key === 'discovery.exe' ? ['api', 'api'] : o.key === 'export.prometheus_port' ? ['9400', 9400] : o.key === 'capture.ring_mb' ? ['8', 8] : samples[o.kind]!;
      expect(valueAt(loadConfig(undefined, { [o.env!]: text }), o.key), o.env).toEqual(value);
    }
  });

  it('is what run and record take as flags, and a configuration stands for the same flags', () => {
    expect(Object.keys(flagSpecs(true)).sort()).toEqual(
      OPTIONS.filter((o) => o.flag)
        .map((o) => o.flag)
        .sort(),
    );
    expect(Object.keys(flagSpecs(false))).not.toContain('record');
    const args = ['--pid', '7', '--pid', '8', '--no-go', '--max-payload', '100', '-o', 'x.loupe'];
    const { values } = parseArgs({ args, options: flagSpecs(false) });
    expect(values).toMatchObject({ pid: ['7', '8'], 'no-go': true, 'max-payload': '100', output: 'x.loupe', quiet: false });
    const config = CONFIG_SCHEMA.parse({ discovery: { pids: [7] }, go: { enabled: false }, export: { otlp: true, prometheus_port: 0 } });
    expect(configAsFlags(config)).toEqual({ pid: [7], 'no-go': true, otlp: true, 'max-payload': 65536, 'ring-mb': 16 });
  });

  it('gives `loupe help` a line per flag and docs/options.md its table', () => {
    const help = flagHelp();
    for (const o of OPTIONS.filter((x) => x.flag)) expect(help).toContain(`--${o.flag}`);
    const doc = fs.readFileSync(path.join(ROOT, 'docs/options.md'), 'utf8');
    const start = doc.indexOf('<!-- options:begin -->\n') + '<!-- options:begin -->\n'.length;
    expect(doc.slice(start, doc.indexOf('<!-- options:end -->'))).toBe(optionsTable());
  });
});
