import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const cap = (n: string) => path.join(ROOT, 'captures', n);
const diff = (...args: string[]) => spawnSync('node', [CLI, 'diff', ...args], { encoding: 'utf8' });

describe('loupe diff', () => {
  it('finds nothing between a capture and itself, and --check exits 0', () => {
    const r = diff(cap('factorial-live.loupe'), cap('factorial-live.loupe'), '--check');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/same shapes, operations and error rates\n$/);
    expect(r.stdout).not.toMatch(/^[+~-] /m);
  });

  it('shows operations and trace shapes one capture has and the other lacks; --check exits 4', () => {
    const r = diff(cap('factorial-live.loupe'), cap('polyglot-live.loupe'), '--check');
    expect(r.status).toBe(4);
    expect(r.stdout).toMatch(/^- frontend SERVER GET \/factorial\/x\n {4}A: 1 calls, 0 err, .* B: —$/m);
    expect(r.stdout).toMatch(/^- 1 -> 0 {2}curl CLIENT GET > frontend SERVER GET \/factorial\/x$/m);
    expect(r.stdout).toMatch(/^ {2}3 -> 3 {2}curl CLIENT GET > frontend SERVER GET \/factorial\/\{id\} > frontend CLIENT GET > backend SERVER GET \/compute$/m);
  });

  it('--check exits 4 when an operation goes from no errors to all errors, its shapes the same', () => {
    const dir = tempDir();
    const good = path.join(dir, 'good.jsonl');
    expect(spawnSync('node', [CLI, 'convert', cap('factorial.loupe'), good], { encoding: 'utf8' }).status).toBe(0);
    // Every answer a 500 instead of a 200, byte for byte as long.
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, fs.readFileSync(good, 'utf8').replaceAll('HTTP/1.1 200 OK', 'HTTP/1.1 500 OK'));
    const r = diff(good, bad, '--check');
    expect(r.status, r.stdout).toBe(4);
    expect(r.stdout).toMatch(/^~ backend SERVER GET \/compute\n.*\n {4}error rate 0% -> 100%$/m);
    expect(r.stdout).not.toMatch(/^[+-] /m); // the same operations and shapes: only the errors moved
    expect(r.stdout).toMatch(/shapes, operations or error rates differ\n$/);
  });

  it('gives the same comparison as JSON', () => {
    const r = diff(cap('factorial-live.loupe'), cap('shop-live.loupe'), '--format', 'json');
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout) as { changed: boolean; operations: Array<{ key: string; a?: unknown; b?: { count: number } }> };
    expect(d.changed).toBe(true);
    expect(d.operations.find((o) => o.key === 'shop CLIENT SELECT orders')).toMatchObject({ b: { count: 3 } });
    expect(d.operations.find((o) => o.key === 'shop CLIENT SELECT orders')!.a).toBeUndefined();
  });
});
