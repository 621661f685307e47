/**
 * Loupe runs as root and is told to write into directories others can write
 * to. A symbolic or hard link planted at the output's name must never make it
 * write through the link, nor chmod what the link names (src/events/output-file.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist/cli/main.js');
const CAPTURE = path.join(ROOT, 'captures/factorial.loupe');
const PCAP = path.join(ROOT, 'test/fixtures/http-loopback.pcap');

const WRITERS: Array<[string, (out: string) => string[]]> = [
  ['convert to binary', (out) => ['convert', CAPTURE, out, '--to', 'binary']],
  ['convert to JSONL', (out) => ['convert', CAPTURE, out, '--to', 'jsonl']],
  ['replay -o', (out) => ['replay', CAPTURE, '--format', 'jsonl', '-o', out, '--quiet']],
  ['import -o', (out) => ['import', PCAP, '-o', out]],
  ['report -o', (out) => ['report', CAPTURE, '-o', out]],
];

describe('outputs and planted links', () => {
  for (const [name, args] of WRITERS) {
    it(`${name}: refuses a symbolic link at the output's name, and leaves what it names as it was`, () => {
      const dir = tempDir();
      const victim = path.join(dir, 'victim');
      fs.writeFileSync(victim, 'precious\n');
      fs.chmodSync(victim, 0o644);
      const out = path.join(dir, 'out');
      fs.symlinkSync(victim, out);
      const r = spawnSync('node', [CLI, ...args(out)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${out} is a symbolic link`);
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
      expect(fs.statSync(victim).mode & 0o777).toBe(0o644);
      expect(fs.readlinkSync(out)).toBe(victim);
      expect(fs.readdirSync(dir).sort()).toEqual(['out', 'victim']); // no temporary left behind
    });

    it(`${name}: replaces a file with another hard link by a new file, or refuses it, never writing into the shared one`, () => {
      const dir = tempDir();
      const victim = path.join(dir, 'victim');
      fs.writeFileSync(victim, 'precious\n');
      const out = path.join(dir, 'out');
      fs.linkSync(victim, out);
      const r = spawnSync('node', [CLI, ...args(out)], { encoding: 'utf8' });
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
      if (r.status === 0) expect(fs.statSync(out).ino).not.toBe(fs.statSync(victim).ino);
      else expect(r.stderr).toContain('hard links');
    });

    it(`${name}: writes a new file mode 0600 and an existing one anew, mode 0600`, () => {
      const dir = tempDir();
      const out = path.join(dir, 'out');
      fs.writeFileSync(out, 'old');
      fs.chmodSync(out, 0o644);
      const r = spawnSync('node', [CLI, ...args(out)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(fs.statSync(out).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(out, 'utf8')).not.toBe('old');
      expect(fs.readdirSync(dir)).toEqual(['out']);
    });
  }
});

describe('inputs that are not files', () => {
  it('refuses a FIFO with no writer, a directory, /dev/zero and an endless config with exit 2, at once', () => {
    const dir = tempDir();
    const fifo = path.join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const huge = path.join(dir, 'huge.yaml');
    fs.writeFileSync(huge, `# ${'x'.repeat(2 << 20)}\n`);
    const cases: Array<[string[], RegExp]> = [
      [['replay', fifo], /a FIFO, not a file/],
      [['parse', fifo], /a FIFO, not a file/],
      [['replay', dir], /a directory, not a file/],
      [['view', '/dev/zero'], /a character device, not a file/],
      [['import', fifo, '-o', path.join(dir, 'x.loupe')], /a FIFO, not a file/],
      [['run', '--config', '/dev/zero', '--duration', '1'], /--config \/dev\/zero: a character device, not a file/],
      [['run', '--config', fifo, '--duration', '1'], /a FIFO, not a file/],
      [['record', '--config', huge, '-o', path.join(dir, 'y.loupe'), '--duration', '1'], /more than the 1048576 read/],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect({ status: r.status, signal: r.signal }, `${args.join(' ')}: ${r.stderr}`).toEqual({ status: 2, signal: null });
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});

describe('bounded time with a collector that is down', () => {
  it('replay --otlp of a truncated capture with nobody listening ends at once with exit 2, the records before the fault replayed', () => {
    const dir = tempDir();
    const whole = fs.readFileSync(path.join(ROOT, 'captures/shop-live.loupe'));
    const cut = path.join(dir, 'cut.loupe');
    fs.writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.8)));
    // A port nothing listens on: every export fails at once.
    const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_TIMEOUT: '2000' };
    const r = spawnSync('node', [CLI, 'replay', cut, '--otlp', '--format', 'jsonl'], { encoding: 'utf8', env, timeout: 120_000 });
    expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 2, signal: null });
    expect(r.stderr).toMatch(/truncated/);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThan(10);
  });
});
