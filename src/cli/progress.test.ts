import { describe, expect, it } from 'vitest';
import { ProgressBar, progressLine } from './progress';

describe('replay progress', () => {
  it('draws the share done', () => {
    expect(progressLine(0, 2e6, 10)).toBe('loupe: replaying [..........] 0% (0.0 of 2.0 MB)');
    expect(progressLine(1e6, 2e6, 10)).toBe('loupe: replaying [#####.....] 50% (1.0 of 2.0 MB)');
    expect(progressLine(3e6, 2e6, 10)).toBe('loupe: replaying [##########] 100% (3.0 of 2.0 MB)');
  });

  it('redraws in place, at most every 200 ms unless done, and clears its line', () => {
    const out: string[] = [];
    const bar = new ProgressBar((s) => out.push(s));
    bar.update(1, 10);
    bar.update(2, 10); // too soon: skipped
    bar.update(10, 10); // done: always drawn
    bar.clear();
    expect(out).toEqual([`\r${progressLine(1, 10)}`, `\r${progressLine(10, 10)}`, '\r\x1b[K']);
  });
});
