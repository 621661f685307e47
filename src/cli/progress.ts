/**
 * A progress bar on a terminal's stderr for long replays: redrawn in place at
 * most every 200 ms (wall clock is fine here: this is the CLI, not the core).
 */
export function progressLine(done: number, total: number, width = 30): string {
  const f = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(f * width);
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return `loupe: replaying [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(f * 100)}% (${mb(done)} of ${mb(total)} MB)`;
}

export class ProgressBar {
  private last = 0n;
  private shown = false;

  constructor(private readonly write: (s: string) => void) {}

  update(done: number, total: number): void {
    const now = process.hrtime.bigint();
    if (now - this.last < 200_000_000n && done < total) return;
    this.last = now;
    this.shown = true;
    this.write(`\r${progressLine(done, total)}`);
  }

  clear(): void {
    if (this.shown) this.write('\r\x1b[K');
  }
}
