/**
 * Files Loupe writes. The agent runs as root and is often told to write into
 * directories others can write to (/tmp): a name there may be a symbolic
 * link or a hard link planted to make root overwrite, or chmod, a file of
 * its choosing. Two ways to write, neither follows a link:
 *
 *  - whole files (convert, import, replay -o, report -o) go to a private new
 *    file beside the target (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, a random
 *    name) and are renamed over it once complete: rename replaces a link, it
 *    never writes through one, and nobody sees a half-written output;
 *  - streams (run -o, record -o, run --record) are read while they grow, and a
 *    killed recording must still be there: the target itself is opened with
 *    O_NOFOLLOW and without O_TRUNC, checked to be a regular file with one
 *    link (or a FIFO or character device, written as it is), and only then
 *    emptied and made 0600.
 *
 * A target that is a symbolic link is refused either way: replacing
 * /dev/stdout or a link a user set up on purpose is not ours to do.
 */
import { LoupeError } from '../errors';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class OutputError extends LoupeError {
  constructor(message: string) {
    super('LOUPE_OUTPUT', message);
  }
}

/** Write all of `bytes` to an open file: writeSync may write less than it is given. */
export function writeFully(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
}

export interface OutputFile {
  /** The name asked for. */
  readonly path: string;
  /** Where the bytes go until commit (the target itself for streams and devices). */
  readonly writingTo: string;
  write(bytes: Uint8Array): void;
  /** Complete: a whole file is renamed into place. */
  commit(): void;
  /** Give up: a whole file's temporary goes; a stream keeps what it has. */
  abort(): void;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND } = fs.constants;

/** Refuses a target no output may be written to (a symbolic link, a directory): checked before work begins. */
export function checkTarget(target: string): void {
  targetKind(target);
}

function targetKind(target: string): 'absent' | 'file' | 'device' {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new OutputError(`${target}: ${(e as Error).message}`);
  }
  if (st.isSymbolicLink()) throw new OutputError(`${target} is a symbolic link: loupe writes as root and neither follows nor replaces one; name the file itself`);
  if (st.isFile()) return 'file';
  if (st.isFIFO() || st.isCharacterDevice()) return 'device';
  throw new OutputError(`${target} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: name a file to write`);
}

/** An opened fd whose file is no FIFO or device: a regular file with this one name, else refused. */
function checkRegular(fd: number, target: string): void {
  const st = fs.fstatSync(fd);
  if (st.isFIFO() || st.isCharacterDevice()) return;
  if (!st.isFile()) throw new OutputError(`${target} is not a regular file`);
  if (st.nlink !== 1) throw new OutputError(`${target} has ${st.nlink} hard links: loupe writes as root and does not write into a file other names share`);
}

function open(target: string, flags: number): number {
  try {
    return fs.openSync(target, flags, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new OutputError(`${target} is a symbolic link: loupe writes as root and neither follows nor replaces one; name the file itself`);
    throw new OutputError(`${target}: ${(e as Error).message}`);
  }
}

/** A whole file: written to a private temporary beside the target, renamed over it by commit(). */
export function wholeFile(target: string): OutputFile {
  if (targetKind(target) === 'device') return streamFile(target);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW);
  let open_ = true;
  const close = () => {
    if (open_) fs.closeSync(fd);
    open_ = false;
  };
  return {
    path: target,
    writingTo: temp,
    write: (bytes) => writeFully(fd, bytes),
    commit: () => {
      close();
      try {
        fs.renameSync(temp, target);
      } catch (e) {
        fs.rmSync(temp, { force: true });
        throw new OutputError(`${target}: ${(e as Error).message}`);
      }
    },
    abort: () => {
      close();
      fs.rmSync(temp, { force: true });
    },
  };
}

/** A stream: the target itself, written as bytes come (see the module comment for how it is opened). */
export function streamFile(target: string): OutputFile {
  const kind = targetKind(target);
  const fd = open(target, O_WRONLY | O_NOFOLLOW | (kind === 'device' ? O_APPEND : O_CREAT));
  try {
    checkRegular(fd, target);
    const st = fs.fstatSync(fd);
    if (st.isFile()) {
      fs.ftruncateSync(fd, 0);
      fs.fchmodSync(fd, 0o600); // an existing file keeps its old mode on open
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let open_ = true;
  const close = () => {
    if (open_) fs.closeSync(fd);
    open_ = false;
  };
  return { path: target, writingTo: target, write: (bytes) => writeFully(fd, bytes), commit: close, abort: close };
}
