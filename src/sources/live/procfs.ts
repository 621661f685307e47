/**
 * What /proc says about a process, for the capture's process table. Read at
 * the edge (never inside the core), and only for processes the agent watches.
 */
import * as fs from 'node:fs';
import type { ProcessInfo } from '../../events/capture';

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

/** The process as /proc shows it now, or undefined when it is gone. */
export function processInfo(pid: number): ProcessInfo | undefined {
  let exe: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
  const info: ProcessInfo = { pid, exe };
  const stat = read(`/proc/${pid}/stat`);
  // comm may hold spaces and parentheses: the fields after it start after the last ')'.
  const close = stat?.lastIndexOf(')') ?? -1;
  if (stat && close > 0) {
    info.comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (Number.isInteger(ppid)) info.ppid = ppid;
  }
  const cmdline = read(`/proc/${pid}/cmdline`);
  if (cmdline) info.cmdline = cmdline.split('\0').filter((s, i, all) => s !== '' || i < all.length - 1);
  // An exec record names the path the program was started by (a symlink's own name, say);
  // argv[0] is that path when it leads to the same executable, so both ways name it alike.
  const argv0 = info.cmdline?.[0];
  if (argv0?.startsWith('/') && argv0 !== exe) {
    try {
      if (fs.realpathSync(argv0) === exe) info.exe = argv0;
    } catch {
      /* argv[0] is not a path to it */
    }
  }
  // OTEL_SERVICE_NAME in the program's environment names its service, as OTel SDKs and Beyla read it.
  const service = /(?:^|\0)OTEL_SERVICE_NAME=([^\0]+)/.exec(read(`/proc/${pid}/environ`) ?? '')?.[1];
  if (service) info.service = service;
  return info;
}

/** Every pid now running. */
export function allPids(): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}
