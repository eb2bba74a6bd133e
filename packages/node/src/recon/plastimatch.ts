/**
 * Our C-arm CT projections in plastimatch's `fdk` input format, and a runner for `plastimatch fdk`, so
 * that a reconstruction can be checked against an independent reconstructor on the very same data.
 *
 * The format (plastimatch's proj_image.cxx, proj_matrix.cxx, proj_image_dir.cxx; its documentation page
 * "Projection matrix file format"): a folder of images named prefix + number + ".pfm" (any prefix without
 * digits; the number is read with the same zero padding), each with a ".txt" of the same stem holding,
 * white-space separated: the image centre (column, row, pixels: where the perpendicular from the source
 * meets the detector; the first pixel's centre is (0, 0)), the 3x4 projection matrix row by row, SAD, SID
 * (mm) and the unit normal from the image centre toward the source. A world point x maps to
 * column = ic[0] + (M0 . x) / (M2 . x), row = ic[1] + (M1 . x) / (M2 . x); the backprojection weighs each
 * view by (SAD / SID)^2 / (M2 . x)^2, so M2 . x must be the depth along the central ray over SID
 * (plastimatch's fdk.cxx, project_volume_onto_image_c). The ".pfm" here is plastimatch's reading of it:
 * "Pf", "columns rows", a scale line, then columns x rows float32 in the machine's order (little-endian),
 * row 0 first (plastimatch reads the raster top row first, unlike the PFM convention's bottom row first).
 *
 * plastimatch's world frame is what the matrices say: we write them in LPS mm less `frameOriginLps`
 * (default the scan's isocentre), because `plastimatch fdk` reconstructs a box centred on its world
 * origin (`--volume-size`, `--dim`); its output's Offset plus frameOriginLps is then LPS.
 *
 * plastimatch's fdk weights nothing but (SAD/depth)^2 and filters each row by a cosine-rolled-off ramp
 * (ramp_filter.cxx, no cosine pre-weight, no short-scan weights: it assumes a full rotation). Our scans are
 * short scans, so by default (`weighted: true`) the written images are our projections times the cosine
 * weight and Parker's weight, exactly as core's fdkFilterKernel weighs them before its ramp.
 */
import { mkdirSync, readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import {
  ReconError,
  createVolume,
  ROW_PADDINGS,
  parkerWeight,
  readMetaImage,
  scanProjection,
  type CbctProjections,
  type CbctScan,
  type Point3,
  type ReconGrid,
  type RowPadding,
  type Volume,
} from '@corridor/core';

const DEG = Math.PI / 180;

/** One view's geometry as plastimatch's projection matrix file holds it. */
export interface PlastimatchMatrix {
  /** Image centre (column, row), pixels, first pixel's centre at (0, 0). */
  ic: [number, number];
  /** 3x4, row-major, world (LPS mm less the frame origin) -> pixels relative to ic, depth / SID. */
  matrix: Float64Array;
  sadMm: number;
  sidMm: number;
  /** Unit vector from the image centre toward the source (world). */
  nrm: Point3;
}

/**
 * plastimatch's matrix for our projection P (LPS mm -> pixel, third coordinate the depth from the source
 * along the central ray, as carm/geometry.ts projectionMatrix), in the world x_pm = x_lps - frameOrigin.
 */
export function plastimatchMatrix(
  P: ArrayLike<number>,
  sidMm: number,
  sadMm: number,
  frameOrigin: Point3,
): PlastimatchMatrix {
  // Shift the world: P' [x_pm; 1] = P [x_pm + o; 1].
  const Q = new Float64Array(12);
  for (let r = 0; r < 3; r++) {
    Q[r * 4] = P[r * 4];
    Q[r * 4 + 1] = P[r * 4 + 1];
    Q[r * 4 + 2] = P[r * 4 + 2];
    Q[r * 4 + 3] =
      P[r * 4 + 3] + P[r * 4] * frameOrigin[0] + P[r * 4 + 1] * frameOrigin[1] + P[r * 4 + 2] * frameOrigin[2];
  }
  const s = Math.hypot(Q[8], Q[9], Q[10]);
  if (!(s > 0)) throw new ReconError('projection matrix has no depth row');
  // Depth scale: our third row is the depth in mm when its direction part is a unit vector.
  const d: Point3 = [Q[8] / s, Q[9] / s, Q[10] / s];
  // Principal point: where the central ray (direction d through the source) meets the detector.
  const ic: [number, number] = [
    (Q[0] * d[0] + Q[1] * d[1] + Q[2] * d[2]) / s,
    (Q[4] * d[0] + Q[5] * d[1] + Q[6] * d[2]) / s,
  ];
  const M = new Float64Array(12);
  for (let c = 0; c < 4; c++) {
    const w = Q[8 + c] / s;
    M[c] = (Q[c] / s - ic[0] * w) / sidMm;
    M[4 + c] = (Q[4 + c] / s - ic[1] * w) / sidMm;
    M[8 + c] = w / sidMm;
  }
  return { ic, matrix: M, sadMm, sidMm, nrm: [-d[0], -d[1], -d[2]] };
}

const num = (x: number) => x.toExponential(12);

/** The text of a plastimatch projection matrix file (its reader takes numbers only, no comments). */
export function plastimatchMatrixText(m: PlastimatchMatrix): string {
  const M = m.matrix;
  const rows = [0, 1, 2].map((r) => [M[r * 4], M[r * 4 + 1], M[r * 4 + 2], M[r * 4 + 3]].map(num).join(' '));
  return [`${num(m.ic[0])} ${num(m.ic[1])}`, ...rows, num(m.sadMm), num(m.sidMm), m.nrm.map(num).join(' '), ''].join(
    '\n',
  );
}

/** A float image as plastimatch's pfm reader takes it (row 0 first, little-endian float32). */
export function plastimatchPfm(data: Float32Array, columns: number, rows: number): Uint8Array {
  if (data.length !== columns * rows) throw new ReconError(`image holds ${data.length} values, not ${columns}x${rows}`);
  const head = new TextEncoder().encode(`Pf\n${columns} ${rows}\n-1\n`);
  const out = new Uint8Array(head.length + 4 * data.length);
  out.set(head, 0);
  const dv = new DataView(out.buffer, head.length);
  for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
  return out;
}

export interface PlastimatchWriteOptions {
  /** Multiply by the cosine and Parker weights (default true: plastimatch's fdk applies neither). */
  weighted?: boolean;
  /** LPS point that becomes plastimatch's world origin (default the scan's isocentre). */
  frameOriginLps?: Point3;
  /**
   * Widen each row the way our FDK pads it before its ramp (core's fdkFilterKernel): to the FFT length
   * (power of two, at least twice the columns), half the pad beyond each edge, the weighted row's edge
   * continued ('continue': point-symmetric about the edge value, at least 0; 'edge': the edge value; both
   * cosine-tapered to 0; 'zero': zeros), written as a wider detector (the image centre moved by the left
   * pad). plastimatch's ramp is a circular convolution over the image width, so on these rows it filters
   * what ours filters. Default none: the detector as acquired (plastimatch then wraps each truncated row
   * around, and a patient wider than the field reconstructs with its truncation unhandled).
   */
  padding?: RowPadding;
}

export interface PlastimatchProjectionSet {
  dir: string;
  views: number;
  columns: number;
  rows: number;
  weighted: boolean;
  frameOriginLps: Point3;
  /** Columns added before the acquired ones (0 without padding); `columns` counts them. */
  padLeft: number;
  padding: RowPadding | 'none';
}

/**
 * The pad of one weighted row as core's fdkFilterKernel computes it (its circular index nc + k, k < padRight,
 * lies right of the row; k >= padRight wraps to the left of it): `out[at - padLeft ..]` and
 * `out[at + nc ..]`, the row itself at `out[at ..]`.
 */
function padRow(
  row: Float64Array,
  out: Float32Array,
  at: number,
  padLeft: number,
  padRight: number,
  padding: RowPadding,
): void {
  const nc = row.length,
    pad = padLeft + padRight;
  for (let k = 0; k < pad; k++) {
    const right = k < padRight;
    const tIdx = right ? k + 1 : pad - k;
    const t = right ? (k + 0.5) / padRight : (pad - k - 0.5) / padLeft;
    const taper = padding === 'zero' ? 0 : 0.5 * (1 + Math.cos(Math.PI * t));
    const e = right ? nc - 1 : 0;
    const mi = right ? Math.max(nc - 1 - tIdx, 0) : Math.min(tIdx, nc - 1);
    let val = row[e];
    if (padding === 'continue') val = Math.max(0, 2 * val - row[mi]);
    out[right ? at + nc + k : at + k - pad] = val * taper;
  }
}

/** Writes view n as image_NNNNN.pfm and image_NNNNN.txt into `dir` (created). */
export function writePlastimatchProjections(
  dir: string,
  proj: CbctProjections,
  scan: CbctScan,
  opts: PlastimatchWriteOptions = {},
): PlastimatchProjectionSet {
  const { columns: nc, rows: nr, views: nv } = proj;
  if (nc !== scan.columns || nr !== scan.rows || nv !== scan.views.length)
    throw new ReconError(
      `projections ${nv} x ${nc}x${nr} do not match the scan ${scan.views.length} x ${scan.columns}x${scan.rows}`,
    );
  const weighted = opts.weighted ?? true;
  const o = opts.frameOriginLps ?? scan.isocenter;
  const padding = opts.padding;
  if (padding !== undefined && !ROW_PADDINGS.includes(padding))
    throw new ReconError(`row padding "${String(padding)}" is not one of ${ROW_PADDINGS.join(', ')}`);
  // Padded width as fdk.ts filterSetup chooses it; the right pad is the first half (fdkFilterKernel's layout).
  let width = nc;
  if (padding !== undefined) {
    width = 1;
    while (width < 2 * nc) width <<= 1;
  }
  const pad = width - nc,
    padRight = pad >> 1,
    padLeft = pad - padRight;
  mkdirSync(dir, { recursive: true });
  const sid = scan.sidMm;
  const c0 = (nc - 1) / 2,
    r0 = (nr - 1) / 2;
  const delta = ((scan.arcDeg - 180) / 2) * DEG;
  const dBeta = scan.stepDeg * DEG;
  const img = new Float32Array(width * nr);
  const row = new Float64Array(nc);
  const digits = String(nv - 1).length < 5 ? 5 : String(nv - 1).length;
  for (let v = 0; v < nv; v++) {
    const src = proj.data.subarray(v * nc * nr, (v + 1) * nc * nr);
    for (let r = 0; r < nr; r++) {
      const yd = (r - r0) * scan.rowSpacingMm;
      for (let c = 0; c < nc; c++) {
        let w = 1;
        if (weighted) {
          const xd = (c - c0) * scan.columnSpacingMm;
          w = (sid / Math.sqrt(sid * sid + xd * xd + yd * yd)) * parkerWeight(v * dBeta, Math.atan(xd / sid), delta);
        }
        row[c] = src[r * nc + c] * w;
      }
      const at = r * width + padLeft;
      for (let c = 0; c < nc; c++) img[at + c] = row[c];
      if (padding !== undefined) padRow(row, img, at, padLeft, padRight, padding);
    }
    const stem = path.join(dir, `image_${String(v).padStart(digits, '0')}`);
    writeFileSync(`${stem}.pfm`, plastimatchPfm(img, width, nr));
    const m = plastimatchMatrix(scanProjection(scan, v), sid, scan.sodMm, o);
    m.ic[0] += padLeft;
    writeFileSync(`${stem}.txt`, plastimatchMatrixText(m));
  }
  return {
    dir,
    views: nv,
    columns: width,
    rows: nr,
    weighted,
    frameOriginLps: [o[0], o[1], o[2]],
    padLeft,
    padding: padding ?? 'none',
  };
}

/** The plastimatch executable (CORRIDOR_PLASTIMATCH, else `plastimatch` on PATH), or null when absent. */
export function findPlastimatch(): string | null {
  const env = process.env.CORRIDOR_PLASTIMATCH;
  if (env) return env;
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!d) continue;
    const f = path.join(d, 'plastimatch');
    try {
      if (statSync(f).isFile()) return f;
    } catch {
      // not in this directory
    }
  }
  return null;
}

export interface PlastimatchFdkRun {
  /** plastimatch's output, indexToPatient moved back into LPS (Offset + frameOriginLps). */
  volume: Volume;
  wallMs: number;
  stdout: string;
}

/**
 * Runs `plastimatch fdk` on a written set onto the box centred on the frame origin with the grid's dims and
 * extent (dims x spacing), and reads its MetaImage back. The grid must be axis-aligned about the frame
 * origin (cbctGrid's default about the isocentre is).
 */
export async function runPlastimatchFdk(
  set: PlastimatchProjectionSet,
  grid: ReconGrid,
  outFile: string,
  exe: string = findPlastimatch() ?? 'plastimatch',
): Promise<PlastimatchFdkRun> {
  const m = grid.indexToPatient;
  if (
    m[1] !== 0 ||
    m[2] !== 0 ||
    m[4] !== 0 ||
    m[6] !== 0 ||
    m[8] !== 0 ||
    m[9] !== 0 ||
    !(m[0] > 0 && m[5] > 0 && m[10] > 0)
  )
    throw new ReconError('plastimatch fdk reconstructs axis-aligned grids with positive spacing only');
  const sp = [m[0], m[5], m[10]];
  const size = grid.dims.map((n, a) => n * sp[a]);
  const args = [
    'fdk',
    '-I',
    set.dir,
    '-O',
    outFile,
    '-r',
    grid.dims.join(' '),
    '-z',
    size.map((s) => s.toFixed(6)).join(' '),
    '-f',
    'ramp',
  ];
  const t0 = performance.now();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(exe, args, { maxBuffer: 64 << 20 }, (err, out, errOut) => {
      if (err) reject(new ReconError(`plastimatch fdk failed: ${err.message}\n${errOut}`, exe));
      else resolve(out);
    });
  });
  const wallMs = performance.now() - t0;
  const files = readdirSync(path.dirname(outFile));
  if (!files.includes(path.basename(outFile)))
    throw new ReconError(`plastimatch fdk wrote no ${outFile} (folder holds ${files.join(', ')})`, exe);
  const read = readMetaImage(
    new Uint8Array(readFileSync(outFile)),
    outFile,
    (f) => new Uint8Array(readFileSync(path.join(path.dirname(outFile), f))),
  ).volume;
  const o = set.frameOriginLps;
  const g = Float64Array.from(read.indexToPatient);
  g[3] += o[0];
  g[7] += o[1];
  g[11] += o[2];
  const volume = createVolume({ data: read.data, dims: read.dims, indexToPatient: g, meta: { source: outFile } });
  return { volume, wallMs, stdout };
}
