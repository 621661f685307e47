/** Kernel monotonic ns -> wall-clock Unix ns, using the capture's boot time. */
export function wallNs(bootTimeNs: bigint, monotonicNs: bigint): bigint {
  return bootTimeNs + monotonicNs;
}

export function formatDuration(ns: bigint): string {
  const n = Number(ns);
  if (n < 1_000) return `${n} ns`;
  if (n < 1_000_000) return `${(n / 1_000).toFixed(1)} µs`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(3)} ms`;
  return `${(n / 1_000_000_000).toFixed(3)} s`;
}
