/** One row of the benchmark table. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  notes: string;
}

/**
 * Median wall time in ms of `runs` calls (after one warm-up call), with the last result; `cpuMs` the
 * median of the same calls' user + system CPU time of this process (on a shared machine the wall time
 * waits for the cores, the CPU time does not).
 */
export async function timeMedian<T>(
  runs: number,
  fn: () => Promise<T> | T,
): Promise<{ ms: number; cpuMs: number; result: T }> {
  let result = await fn();
  const times: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = await fn();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], cpuMs: cpu[Math.floor(cpu.length / 2)], result };
}
