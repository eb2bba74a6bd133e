/** One row of the benchmark table. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  notes: string;
}

/** Median wall time in ms of `runs` calls (after one warm-up call), with the last result. */
export async function timeMedian<T>(runs: number, fn: () => Promise<T> | T): Promise<{ ms: number; result: T }> {
  let result = await fn();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    result = await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], result };
}
