/**
 * One scratch directory per test run, removed when the run ends: every temp
 * file the tests, the programs they build and Go's build work directories
 * make goes under it (TMPDIR), and one Go build cache serves every Go build of
 * the run. With a fresh cache per build, each of the suite's ~20 Go builds
 * compiled the standard library anew and left it in /tmp: CI ran out of disk
 * 907 s into a run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export default function setup(): () => void {
  const saved = { TMPDIR: process.env.TMPDIR, GOCACHE: process.env.GOCACHE };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loupe-run-'));
  // As /tmp is: services the tests run as other users (PostgreSQL as postgres) make their temp files here too.
  fs.chmodSync(root, 0o1777);
  process.env.TMPDIR = root;
  process.env.GOCACHE = path.join(root, 'go-cache');
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    fs.rmSync(root, { recursive: true, force: true });
  };
}
