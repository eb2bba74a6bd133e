/**
 * Test-only child process for atomic-write.test.ts, run as `node child.mjs MODE ...`:
 * - `burst FILE`: saves a growing plan-like JSON over FILE, again and again, until killed; each version
 *   n holds n paths and the SHA-256 of its paths, so a reader can tell a complete version from a torn one.
 * - `append FILE ID DELAY_MS`: adds one path ID to the plan in FILE with appendToPlanFile (plan --append's
 *   guarded update), waiting DELAY_MS between its read and its write.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Plan } from '@corridor/core';
import { writeFileAtomic } from '../io/atomic-write.js';
import { appendToPlanFile } from '../cli/plan.js';

const [mode, file, id, delay] = process.argv.slice(2);

function lastVersion(): number {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { n: number }).n;
  } catch {
    return 0;
  }
}

if (mode === 'burst') {
  for (let n = lastVersion() + 1; ; n++) {
    const paths = Array.from({ length: n }, (_, i) => ({ id: `p${i}`, pad: 'x'.repeat(4000) }));
    const sha = createHash('sha256').update(JSON.stringify(paths)).digest('hex');
    await writeFileAtomic(file, JSON.stringify({ n, sha, paths }));
  }
} else if (mode === 'append') {
  const plan: Plan = {
    schemaVersion: 1,
    volume: { file: 'ct.nii.gz', indexToPatient: Float64Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]) },
    paths: [{ id, name: `writer ${id}`, kind: 'screw', diameterMm: 7.3, entry: [0, 0, 0], target: [10, 0, 0] }],
  };
  const ms = Number(delay);
  await appendToPlanFile(file, plan, 'ct.nii.gz', () => new Promise((r) => setTimeout(r, ms)));
} else {
  throw new Error(`unknown mode ${mode}`);
}
