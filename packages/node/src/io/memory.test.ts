/**
 * Peak memory of loading large and hostile files (issue 14), measured in a child process (loadPath, as
 * every command loads): process.resourceUsage().maxRSS after the load minus before, against the bytes
 * the input justifies (the volume's voxel bytes; for the deflated DICOM, its data set). The bound: 1.25
 * times those bytes, plus the compressed file's own bytes (held while inflating), plus FIXED_MIB.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleForNode } from '../test-helpers/bundle.js';
import { MiB, peakOfLoad, writeBombCases, type BombCase } from './bomb-cases.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let dir: string;
let child: string;
let cases: BombCase[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-memory-'));
  child = await bundleForNode(path.join(here, '../bench/peak-child.ts'), path.join(dir, 'child.mjs'));
  cases = await writeBombCases(dir, 0.5); // 128 MiB volumes: big enough that the fixed part is small
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * The fixed part: V8 frees inflate's output chunks (ArrayBuffers outside its heap) only once some 64 MiB of
 * them accumulate, so a streamed inflate peaks about that far above its output (measured 76 MiB for the
 * NIfTI bomb); code and codecs add the rest.
 */
const FIXED_MIB = 96;

describe('peak memory of a load is within 1.25 x the justified bytes + the compressed input + 96 MiB', () => {
  it('raw and gzip NIfTI, a NIfTI bomb and a deflated DICOM bomb', async () => {
    const lines: string[] = [];
    for (const c of cases) {
      const r = await peakOfLoad(child, c.file);
      // A compressed file's own bytes are held while it inflates (the raw file's bytes are the volume).
      const input = c.name.endsWith('.nii') ? 0 : c.fileBytes;
      const bound = (1.25 * c.justifiedBytes + input) / MiB + FIXED_MIB;
      lines.push(
        `base ${(r as { baseMiB?: number }).baseMiB?.toFixed(0)} MiB; ` +
          `${c.name}: file ${(c.fileBytes / MiB).toFixed(1)} MiB, justified ${(c.justifiedBytes / MiB).toFixed(0)} MiB, ` +
          `peak growth ${r.grownMiB.toFixed(0)} MiB (${((r.grownMiB * MiB) / c.justifiedBytes).toFixed(2)}x), ` +
          `bound ${bound.toFixed(0)}, ${r.ms.toFixed(0)} ms: ${r.result}`,
      );
      expect(r.result, c.name).toContain(c.expect);
      expect(r.grownMiB, c.name).toBeLessThan(bound);
    }
    console.log(lines.join('\n'));
  }, 240_000);
});
