/**
 * The executable files `--exe` matches, found at start so the kernel side may
 * treat a process that execs one as chosen before the agent has read its exec
 * record: only such a process may have a byte changed (a TCP option, a
 * traceparent header) while the agent's decision is pending. curl writes its
 * request a few ms after its exec, before any agent could decide; a program
 * nobody selected must get no byte at all.
 *
 * Files are named by device and inode as the kernel numbers them, found under
 * the directories of PATH and the usual bin directories. A file counts only
 * when every name it has there matches: one binary behind many names (busybox)
 * would otherwise let a name --exe does not match pass as one it does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ExeFile {
  /** The kernel's dev_t (major << 20 | minor), as `inode->i_sb->s_dev` holds it. */
  dev: bigint;
  ino: bigint;
}

/** Where programs are exec'd from, besides PATH's directories. */
export const USUAL_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The kernel's dev_t of a device number as stat(2) gives it (glibc's encoding: 12 bits of major, 20 of minor, split). */
export function kernelDev(statDev: bigint): bigint {
  const major = ((statDev >> 8n) & 0xfffn) | ((statDev >> 32n) & ~0xfffn);
  const minor = (statDev & 0xffn) | ((statDev >> 12n) & ~0xffn);
  return (major << 20n) | (minor & 0xfffffn);
}

/** The files under `dirs` that `exe` matches by every name they have there (symbolic links followed). */
export function exeFilesMatching(exe: RegExp, dirs: readonly string[]): ExeFile[] {
  const names = new Map<string, { file: ExeFile; matches: boolean }>();
  for (const dir of new Set(dirs.filter((d) => path.isAbsolute(d)))) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue; // absent, or not readable: nothing is exec'd from it by this name
    }
    for (const entry of entries) {
      const full = path.join(dir, entry);
      const st = fs.statSync(full, { bigint: true, throwIfNoEntry: false });
      if (!st?.isFile() || (st.mode & 0o111n) === 0n) continue;
      const key = `${st.dev}:${st.ino}`;
      const matches = exe.test(full);
      const seen = names.get(key);
      if (seen) seen.matches &&= matches;
      else names.set(key, { file: { dev: kernelDev(st.dev), ino: st.ino }, matches });
    }
  }
  return [...names.values()].filter((n) => n.matches).map((n) => n.file);
}

/** The directories `--exe`'s files are looked for in: PATH's, then the usual ones. */
export function exeSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.PATH ?? '').split(':').filter(Boolean), ...USUAL_BIN_DIRS];
}
