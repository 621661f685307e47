/**
 * Minimal benchmark harness. Candidates run interleaved, round by round, so
 * machine noise lands on all of them alike; each reports the median round.
 * Wall clock is fine here: this is not the core.
 */

export interface Candidate {
  name: string;
  /** Runs one pass and returns how many messages it saw (checked by the caller). */
  run: () => number;
}

export interface Result {
  name: string;
  medianMs: number;
  bytes: number;
  messages: number;
}

export function compare(bytes: number, candidates: Candidate[], rounds = 21): Result[] {
  for (let i = 0; i < 5; i++) for (const c of candidates) c.run(); // let the JIT settle
  const times = candidates.map(() => [] as number[]);
  const messages = candidates.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    candidates.forEach((c, i) => {
      const t0 = process.hrtime.bigint();
      messages[i] = c.run();
      times[i]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return candidates.map((c, i) => {
    const sorted = times[i]!.sort((a, b) => a - b);
    return { name: c.name, medianMs: sorted[Math.floor(sorted.length / 2)]!, bytes, messages: messages[i]! };
  });
}

/** compare() for candidates whose pass is asynchronous (kafkajs decodes a Fetch response with promises). */
export async function compareAsync(bytes: number, candidates: Array<{ name: string; run: () => number | Promise<number> }>, rounds = 21): Promise<Result[]> {
  for (let i = 0; i < 5; i++) for (const c of candidates) await c.run();
  const times = candidates.map(() => [] as number[]);
  const messages = candidates.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of candidates.entries()) {
      const t0 = process.hrtime.bigint();
      messages[i] = await c.run();
      times[i]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return candidates.map((c, i) => {
    const sorted = times[i]!.sort((a, b) => a - b);
    return { name: c.name, medianMs: sorted[Math.floor(sorted.length / 2)]!, bytes, messages: messages[i]! };
  });
}

/** With `ratio`, a last column says how many times faster the first row is than each. */
export function report(title: string, results: Result[], ratio = true): void {
  const first = results[0]!;
  console.log(`\n${title}`);
  console.log(`| parser | MB/s | messages/s | median ms per pass |${ratio ? ' first row faster by |' : ''}`);
  console.log(`|---|---:|---:|---:|${ratio ? '---:|' : ''}`);
  for (const r of results) {
    const s = r.medianMs / 1000;
    const cells = [r.name, (r.bytes / 1e6 / s).toFixed(1), Math.round(r.messages / s).toLocaleString('en-US'), r.medianMs.toFixed(2)];
    if (ratio) cells.push(`${(r.medianMs / first.medianMs).toFixed(2)}x`);
    console.log(`| ${cells.join(' | ')} |`);
  }
}
