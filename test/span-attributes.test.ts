/** Every `loupe.*` span attribute is named in one place and documented in docs/formats.md; no other is set. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOUPE_ATTR } from '../src/parsers/spans';
import { ROOT, sourceFiles } from './helpers';

describe('loupe.* span attributes', () => {
  it('are each documented in docs/formats.md', () => {
    const formats = fs.readFileSync(path.join(ROOT, 'docs/formats.md'), 'utf8');
    for (const name of Object.values(LOUPE_ATTR)) expect(formats, name).toContain(`| \`${name}\` |`);
  });

  it('are set by name from LOUPE_ATTR, never spelled out elsewhere in the correlator and exporters', () => {
    for (const file of [...sourceFiles(path.join(ROOT, 'src/correlator')), ...sourceFiles(path.join(ROOT, 'src/export'))]) {
      if (file.endsWith('attributes.ts')) continue;
      const spelled = [...fs.readFileSync(file, 'utf8').matchAll(/'(loupe\.[a-z_.]+)'/g)].map((m) => m[1]!).filter((n) => Object.values(LOUPE_ATTR).includes(n as never));
      expect(spelled, path.relative(ROOT, file)).toEqual([]);
    }
  });
});
