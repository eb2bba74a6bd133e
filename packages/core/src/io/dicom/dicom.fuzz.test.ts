/**
 * Fuzz: mutated real and written DICOM files (bit flips, truncations, inserted and deleted bytes, length
 * fields rewritten) must only ever give FormatError, GeometryError or LimitError, never hang, and a
 * successful read must not allocate more voxels than its input bytes can justify:
 *   native pixel data: every voxel needs at least one input byte, and resampling (missing or irregular
 *   slices) can at most multiply the slice count by 8 (+8 slices), so voxels <= 16 x input bytes;
 *   compressed: decoded bytes <= MAX_COMPRESSION_RATIO x compressed bytes + 64 KiB per frame, so
 *   voxels <= 16 x (MAX_COMPRESSION_RATIO x input bytes + 64 KiB per file).
 * A seeded PRNG makes every case reproducible from its index.
 */
import dicomParser from 'dicom-parser';
import { describe, expect, it } from 'vitest';
import { FormatError, GeometryError, LimitError } from '../../errors.js';
import { createVolume, indexToPatientFrom } from '../../volume/volume.js';
import type { NamedBytes } from '../types.js';
import { MAX_COMPRESSION_RATIO } from './pixels.js';
import { readDicomSeries } from './series.js';
import { readDir } from '../../test-helpers/data.js';
import { writeDicomSeries } from './writer.js';
import { uniformSource as mulberry32 } from '../../math/random.js';

/** Offsets of element length fields (explicit VR short and long forms), found once per file. */
function lengthFields(bytes: Uint8Array): number[] {
  try {
    const ds = dicomParser.parseDicom(bytes);
    return Object.values(ds.elements)
      .filter((e) => e.dataOffset >= 8 && e.dataOffset <= bytes.length)
      .map((e) => e.dataOffset - (e.vr && ['OB', 'OW', 'SQ', 'UN', 'UT', 'OF'].includes(e.vr) ? 4 : 2));
  } catch {
    return [];
  }
}

function mutate(src: Uint8Array, rnd: () => number, fields: number[], focus: number): Uint8Array {
  const pick = (n: number) => Math.floor(rnd() * n);
  // Half the mutations land in the header region, where most parsing decisions are made.
  const pos = () => (rnd() < 0.5 ? pick(Math.min(src.length, focus)) : pick(src.length));
  const kind = pick(7);
  let b = src.slice();
  switch (kind) {
    case 0: {
      const flips = 1 + pick(8);
      for (let i = 0; i < flips; i++) b[pos()] ^= 1 << pick(8);
      break;
    }
    case 1:
      b = b.slice(0, pick(b.length));
      break;
    case 2: {
      const p = pos();
      const ins = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, p));
      out.set(ins, p);
      out.set(b.subarray(p), p + ins.length);
      b = out;
      break;
    }
    case 3: {
      const p = pos();
      const len = 1 + pick(64);
      b = Uint8Array.from([...b.subarray(0, p), ...b.subarray(Math.min(b.length, p + len))]);
      break;
    }
    case 4: {
      if (fields.length) {
        const f = fields[pick(fields.length)];
        const values = [0, 1, 0xff, 0xffff, 0xfffe, 0x7fffffff, 0xffffffff, pick(1 << 16), pick(2 ** 31)];
        const v = values[pick(values.length)];
        for (let i = 0; i < 4 && f + i < b.length; i++) b[f + i] = (v >>> (8 * i)) & 0xff;
      } else b[pos()] = pick(256);
      break;
    }
    case 5: {
      const p = pos();
      const len = Math.min(b.length - p, 1 + pick(32));
      b.fill(rnd() < 0.5 ? 0xff : 0, p, p + len);
      break;
    }
    default: {
      // Copy a chunk of the file over another place (plausible-looking garbage).
      const from = pos();
      const to = pos();
      const len = Math.min(64, b.length - from, b.length - to);
      if (len > 0) b.set(src.subarray(from, from + len), to);
    }
  }
  return b;
}

interface Corpus {
  label: string;
  files: NamedBytes[];
  compressed: boolean;
  cases: number;
}

function tinySeries(): NamedBytes[] {
  const data = new Int16Array(8 * 6 * 3).map((_, i) => ((i * 2654435761) >>> 22) - 512);
  const v = createVolume({ data, dims: [8, 6, 3], indexToPatient: indexToPatientFrom([-10, 20, 30], [0.5, 0.6, 1.5]) });
  return writeDicomSeries(v, { seriesDescription: 'fuzz' });
}

/** Returns true when the mutated input still gave a volume. */
async function runCase(files: NamedBytes[], compressed: boolean): Promise<boolean> {
  const inputBytes = files.reduce((s, f) => s + f.bytes.length, 0);
  try {
    const r = await readDicomSeries(files);
    for (const s of r.series) {
      const bound = compressed ? 16 * (MAX_COMPRESSION_RATIO * inputBytes + 65536 * files.length) : 16 * inputBytes;
      expect(s.volume.data.length).toBeLessThanOrEqual(bound);
    }
    return true;
  } catch (e) {
    if (!(e instanceof FormatError || e instanceof GeometryError || e instanceof LimitError)) {
      throw new Error(`unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
    }
    return false;
  }
}

describe('DICOM fuzz', () => {
  const corpora: Corpus[] = [
    { label: 'written 3-slice series', files: tinySeries(), compressed: false, cases: 6000 },
    {
      label: 'malformed files',
      files: readDir('malformed').filter((f) => f.bytes.length < 20000),
      compressed: false,
      cases: 2000,
    },
    {
      label: 'single-frame CT, all syntaxes',
      files: readDir('transfer-syntaxes', 'ct-single-frame'),
      compressed: true,
      cases: 1200,
    },
    {
      label: 'enhanced CT',
      files: readDir('transfer-syntaxes', 'enhanced-ct-multiframe'),
      compressed: true,
      cases: 200,
    },
  ];
  for (const corpus of corpora) {
    it(`${corpus.label}: ${corpus.cases} mutations give only typed errors, bounded allocations, no hangs`, async () => {
      const fields = corpus.files.map((f) => lengthFields(f.bytes));
      let slowestMs = 0;
      let loaded = 0;
      let ran = 0;
      for (let c = 0; c < corpus.cases; c++) {
        const rnd = mulberry32(c * 7919 + corpus.label.length);
        const which = Math.floor(rnd() * corpus.files.length);
        const target = corpus.files[which];
        const focus = Math.min(target.bytes.length, 2048);
        const mutated = { name: `${target.name}#${c}`, bytes: mutate(target.bytes, rnd, fields[which], focus) };
        // Written series: mutate one file and read it with its two intact siblings.
        const files = corpus.label.startsWith('written')
          ? corpus.files.map((f, i) => (i === which ? mutated : f))
          : [mutated];
        const t = performance.now();
        try {
          if (await runCase(files, corpus.compressed)) loaded++;
        } catch (e) {
          throw new Error(`case ${c} (${mutated.name}): ${(e as Error).message}`, { cause: e });
        }
        slowestMs = Math.max(slowestMs, performance.now() - t);
        ran++;
      }
      expect(ran).toBe(corpus.cases);
      // Some mutations must still load, or the fuzz would only exercise the first checks (the small
      // malformed files are all broken to begin with, so none of their mutants is expected to load).
      if (corpus.label !== 'malformed files') expect(loaded).toBeGreaterThan(corpus.cases * 0.05);
      // A hang would show as one very slow case; the slowest real decode here takes well under 1 s.
      expect(slowestMs).toBeLessThan(3000);
    }, 120_000);
  }
});
