/** CPU lists in taskset's syntax (`1`, `0,2`, `2-3`): the configuration's `agent.cpus` and the agent's pinning read them. */
/**
 * A CPU list as taskset and /sys/devices/system/cpu/online write it ("1",
 * "0,2", "2-3,6"), as sorted unique numbers; undefined when it is not one.
 */
export function parseCpuList(text: string): number[] | undefined {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,4})(?:-(\d{1,4}))?\s*$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return undefined;
    for (let c = from; c <= to; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}
