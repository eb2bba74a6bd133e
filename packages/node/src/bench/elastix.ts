/**
 * Debian's elastix beside Corridor (issue 17): the register benchmark writes both images as MetaImage
 * (.mha, ITK's physical space, which is LPS mm: our indexToPatient is written as it is, no RAS flip),
 * runs elastix's usual rigid set-up (EulerTransform, Mattes MI, 4 resolutions, adaptive stochastic
 * gradient descent, as elastix's model zoo Parameters_Rigid) and reads back TransformParameters.0.txt:
 * the Euler transform maps a fixed physical point to the moving one (fixedToMoving), as ours.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mat4Invert, type Mat4, type Volume } from '@corridor/core';

/** elastix's rigid parameter file: the model zoo's Parameters_Rigid, as a user would run it. */
export const ELASTIX_RIGID_PARAMETERS = `(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(FixedImageDimension 3)
(MovingImageDimension 3)
(UseDirectionCosines "true")
(Registration "MultiResolutionRegistration")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Optimizer "AdaptiveStochasticGradientDescent")
(Transform "EulerTransform")
(Metric "AdvancedMattesMutualInformation")
(AutomaticScalesEstimation "true")
(AutomaticTransformInitialization "true")
(HowToCombineTransforms "Compose")
(NumberOfHistogramBins 32)
(ErodeMask "false")
(NumberOfResolutions 4)
(MaximumNumberOfIterations 250)
(NumberOfSpatialSamples 2048)
(NewSamplesEveryIteration "true")
(ImageSampler "RandomCoordinate")
(BSplineInterpolationOrder 1)
(FinalBSplineInterpolationOrder 3)
(DefaultPixelValue -1024)
(WriteResultImage "false")
(ResultImagePixelType "short")
(ResultImageFormat "mha")
`;

/**
 * A volume as MetaImage: Offset the first voxel's centre, ElementSpacing the column norms of
 * indexToPatient, TransformMatrix the direction of each index axis in turn (ITK's MetaImageIO reads axis
 * i's direction from elements 3i..3i+2). `uint8` writes MET_UCHAR (masks), otherwise MET_FLOAT.
 */
export function metaImage(v: Volume, type: 'float32' | 'uint8' = 'float32'): Uint8Array {
  const m = v.indexToPatient;
  const spacing = [0, 1, 2].map((a) => Math.hypot(m[a], m[4 + a], m[8 + a]));
  const dir: number[] = [];
  for (let a = 0; a < 3; a++) for (let r = 0; r < 3; r++) dir.push(m[r * 4 + a] / spacing[a]);
  const header =
    `ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\nCompressedData = False\n` +
    `TransformMatrix = ${dir.join(' ')}\nOffset = ${m[3]} ${m[7]} ${m[11]}\nElementSpacing = ${spacing.join(' ')}\n` +
    `DimSize = ${v.dims.join(' ')}\nElementType = ${type === 'uint8' ? 'MET_UCHAR' : 'MET_FLOAT'}\nElementDataFile = LOCAL\n`;
  const h = new TextEncoder().encode(header);
  const n = v.dims[0] * v.dims[1] * v.dims[2];
  const body = type === 'uint8' ? Uint8Array.from(v.data, (x) => (x ? 1 : 0)) : Float32Array.from(v.data);
  const out = new Uint8Array(h.length + n * body.BYTES_PER_ELEMENT);
  out.set(h);
  out.set(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), h.length);
  return out;
}

/**
 * fixedToMoving of an elastix EulerTransform: x -> R (x - c) + c + t, with ITK's Euler3DTransform order
 * R = Rz(gamma) Rx(alpha) Ry(beta) (ComputeZYX false, elastix's default), parameters
 * (alpha, beta, gamma, tx, ty, tz) and c the CenterOfRotationPoint, all in ITK's LPS mm.
 */
export function eulerFixedToMoving(params: readonly number[], centre: readonly number[]): Mat4 {
  if (params.length !== 6 || centre.length !== 3) throw new Error('elastix: an EulerTransform has 6 parameters');
  const [a, b, g] = params;
  const rx = [1, 0, 0, 0, Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a)];
  const ry = [Math.cos(b), 0, Math.sin(b), 0, 1, 0, -Math.sin(b), 0, Math.cos(b)];
  const rz = [Math.cos(g), -Math.sin(g), 0, Math.sin(g), Math.cos(g), 0, 0, 0, 1];
  const mul = (p: number[], q: number[]) =>
    [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => p[i * 3] * q[j] + p[i * 3 + 1] * q[3 + j] + p[i * 3 + 2] * q[6 + j]));
  const r = mul(mul(rz, rx), ry);
  const m = new Float64Array(16);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) m[i * 4 + j] = r[i * 3 + j];
    m[i * 4 + 3] =
      centre[i] + params[3 + i] - (r[i * 3] * centre[0] + r[i * 3 + 1] * centre[1] + r[i * 3 + 2] * centre[2]);
  }
  m[15] = 1;
  return m;
}

/** The numbers of one `(Name v1 v2 ...)` line of an elastix parameter file. */
function numbers(text: string, name: string, file: string): number[] {
  const line = new RegExp(`^\\(${name}\\s+([^)]*)\\)`, 'm').exec(text);
  if (!line) throw new Error(`${file}: no ${name}`);
  return line[1].trim().split(/\s+/).map(Number);
}

/** fixedToMoving from an elastix TransformParameters file's text (an EulerTransform). */
export function readElastixEuler(text: string, file: string): Mat4 {
  const kind = /^\(Transform\s+"([^"]+)"\)/m.exec(text)?.[1];
  if (kind !== 'EulerTransform') throw new Error(`${file}: transform ${kind ?? 'none'}, not an EulerTransform`);
  return eulerFixedToMoving(numbers(text, 'TransformParameters', file), numbers(text, 'CenterOfRotationPoint', file));
}

export function elastixAvailable(): boolean {
  return spawnSync('elastix', ['--version'], { encoding: 'utf8' }).status === 0;
}

export interface ElastixRun {
  /** Wall time of the elastix process, ms (writing the images not counted). */
  ms: number;
  /** User + system CPU time of elastix, ms, when /usr/bin/time is there. */
  cpuMs?: number;
  fixedToMoving: Mat4;
  movingToFixed: Mat4;
}

/**
 * Runs elastix on (fixed, moving), with optional masks (nonzero: where that image's data count), in a
 * temporary folder; throws with elastix's reason when it fails. A moving mask much smaller than the
 * fixed image stops elastix ("Too many samples map outside moving image buffer"): give a small field of
 * view as the fixed image with a fixed mask instead.
 */
export function runElastix(
  fixed: Volume,
  moving: Volume,
  o: { fixedMask?: Volume; movingMask?: Volume } = {},
): ElastixRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'corridor-elastix-'));
  try {
    writeFileSync(path.join(dir, 'fixed.mha'), metaImage(fixed));
    writeFileSync(path.join(dir, 'moving.mha'), metaImage(moving));
    writeFileSync(path.join(dir, 'rigid.txt'), ELASTIX_RIGID_PARAMETERS);
    const args = ['-f', 'fixed.mha', '-m', 'moving.mha', '-p', 'rigid.txt', '-out', '.'];
    if (o.fixedMask) {
      writeFileSync(path.join(dir, 'fmask.mha'), metaImage(o.fixedMask, 'uint8'));
      args.push('-fMask', 'fmask.mha');
    }
    if (o.movingMask) {
      writeFileSync(path.join(dir, 'mmask.mha'), metaImage(o.movingMask, 'uint8'));
      args.push('-mMask', 'mmask.mha');
    }
    const timed = existsSync('/usr/bin/time');
    const t0 = performance.now();
    const r = timed
      ? spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', 'elastix', ...args], { cwd: dir, encoding: 'utf8' })
      : spawnSync('elastix', args, { cwd: dir, encoding: 'utf8' });
    const ms = performance.now() - t0;
    const file = path.join(dir, 'TransformParameters.0.txt');
    if (r.status !== 0 || !existsSync(file)) {
      // elastix's own reason: the "Description:" line of the ITK exception it logs.
      const log = r.stdout + r.stderr;
      const why = /Description:\s*(.*)/.exec(log)?.[1] ?? log.slice(-300).replace(/\s+/g, ' ');
      throw new Error(`elastix failed (status ${String(r.status)}): ${why.trim()}`);
    }
    const cpu = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
    const fixedToMoving = readElastixEuler(readFileSync(file, 'utf8'), file);
    const movingToFixed = mat4Invert(new Float64Array(16), fixedToMoving);
    if (!movingToFixed) throw new Error(`${file}: singular transform`);
    return {
      ms,
      ...(cpu ? { cpuMs: 1000 * (Number(cpu[1]) + Number(cpu[2])) } : {}),
      fixedToMoving,
      movingToFixed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
