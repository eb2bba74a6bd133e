/**
 * Child process for memory.test.ts and the io benchmark (bench/io.ts), run as `node child.mjs FILE`: loads
 * FILE with loadPath (what every command does) and prints, as one JSON line, how far its peak resident
 * memory grew during the load (MiB) and what it read (dims and voxel type) or the error it gave.
 *
 * Peak: Linux's VmHWM of /proc/self/status, reset to the current RSS just before the load (writing 5 to
 * /proc/self/clear_refs). Not getrusage's maxRSS: after fork and exec that keeps the parent's peak (a
 * test runner's hundreds of MiB), which hid the load's. Elsewhere maxRSS is the fallback.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadPath } from '../io/load.js';

function statusKiB(field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let hwm = false;
try {
  writeFileSync('/proc/self/clear_refs', '5');
  hwm = statusKiB('VmHWM') !== undefined;
} catch {
  hwm = false;
}
const file = process.argv[2];
const before = hwm ? (statusKiB('VmRSS') ?? 0) : process.resourceUsage().maxRSS;
const t0 = performance.now();
let result: string;
try {
  const { series } = await loadPath(file);
  const v = series[0].volume;
  result = `${v.dims.join(' x ')} ${v.data.constructor.name}`;
} catch (e) {
  result = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
const ms = performance.now() - t0;
const peak = hwm ? (statusKiB('VmHWM') ?? 0) : process.resourceUsage().maxRSS;
console.log(JSON.stringify({ grownMiB: (peak - before) / 1024, baseMiB: before / 1024, ms, result, hwm }));
