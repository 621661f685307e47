/** The README documents every command and flag the CLI's usage text names. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { USAGE } from '../src/cli/main';
import { ROOT } from './helpers';

describe('README and CLI agree', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it('documents every command the usage text lists', () => {
    const commands = [...USAGE.matchAll(/^ {2}loupe (\w+)/gm)].map((m) => m[1]!);
    expect(commands.length).toBeGreaterThanOrEqual(5);
    for (const c of commands) expect(readme, c).toContain(`loupe ${c}`);
  });

  it('documents every flag the usage text lists', () => {
    const flags = [...new Set([...USAGE.matchAll(/(?<![\w-])(--[a-z][a-z-]*|-o)\b/g)].map((m) => m[1]!))];
    expect(flags.length).toBeGreaterThanOrEqual(6);
    for (const f of flags) expect(readme, f).toContain(f);
  });
});
