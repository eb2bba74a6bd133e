/**
 * io benchmark: peak memory of loading each large or hostile file (bomb-cases.ts) beside the file's size
 * and the bytes it justifies. Each load runs in its own process (peak-child.js) so that one case's
 * garbage cannot count against the next; the peak is Linux's VmHWM, reset just before the load.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB, peakOfLoad, writeBombCases } from '../io/bomb-cases.js';
import type { BenchRow } from './types.js';

export async function benchIo(): Promise<BenchRow[]> {
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peak-child.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-io-'));
  const rows: BenchRow[] = [];
  try {
    for (const c of await writeBombCases(dir, 1)) {
      const runs = [];
      for (let n = 0; n < 3; n++) runs.push(await peakOfLoad(child, c.file));
      runs.sort((a, b) => a.grownMiB - b.grownMiB);
      const r = runs[1];
      const input = c.name.endsWith('.nii') ? 0 : c.fileBytes;
      rows.push({
        name: `peak memory loading ${c.name} (file ${(c.fileBytes / MiB).toFixed(1)} MiB)`,
        value: r.grownMiB,
        unit: 'MiB',
        notes:
          `${((r.grownMiB * MiB) / c.justifiedBytes).toFixed(2)}x the ${(c.justifiedBytes / MiB).toFixed(0)} MiB it ` +
          `justifies (${(((r.grownMiB * MiB - input) / c.justifiedBytes) * 1).toFixed(2)}x without the compressed ` +
          `input held); ${r.ms.toFixed(0)} ms; read: ${r.result}; median of 3 processes`,
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
