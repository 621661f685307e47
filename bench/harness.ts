/** Minimal benchmark harness: warm up, then the median of timed rounds. Wall clock is fine here: this is not the core. */

export interface Result {
  name: string;
  medianMs: number;
  bytes: number;
  messages: number;
}

export function measure(name: string, bytes: number, run: () => number, rounds = 15): Result {
  for (let i = 0; i < 3; i++) run(); // let the JIT settle
  const times: number[] = [];
  let messages = 0;
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    messages = run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { name, medianMs: times[Math.floor(times.length / 2)]!, bytes, messages };
}

export function report(title: string, results: Result[]): void {
  console.log(`\n${title}`);
  console.log('| parser | MB/s | messages/s | median ms per pass |');
  console.log('|---|---:|---:|---:|');
  for (const r of results) {
    const s = r.medianMs / 1000;
    console.log(`| ${r.name} | ${(r.bytes / 1e6 / s).toFixed(1)} | ${Math.round(r.messages / s).toLocaleString('en-US')} | ${r.medianMs.toFixed(2)} |`);
  }
}
