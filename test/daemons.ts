/**
 * Servers a test starts (nginx, redis-server, PostgreSQL, ...), each leading
 * a process group of its own, and killed with their groups by stopDaemons
 * when the file's tests end: nginx's workers outlive a killed master otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

const started: ChildProcess[] = [];

/** Each file that starts servers calls `afterAll(stopDaemons)` at its top (a module shared by files registers once only). */
export function stopDaemons(): void {
  for (const c of started.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

export function daemon(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', opts.quiet ? 'ignore' : 'inherit'], cwd: opts.cwd, env: opts.env ?? process.env, detached: true });
  started.push(child);
  return child;
}

/** Waits until something accepts connections on the port (or the process that should is gone). */
export async function listening(port: number, child: ChildProcess): Promise<void> {
  const open = () =>
    spawnSync(process.execPath, ['-e', `require('net').connect(${port},'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`]).status === 0;
  while (!open()) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited with ${child.exitCode} before listening on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
