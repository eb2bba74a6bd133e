/**
 * Before a command writes, it checks its outputs: never over one of its own inputs (compared by real
 * path, so `plan ct.nii.gz --out ./ct.nii.gz` or a link is caught), never over an existing file of
 * another kind than the command makes (a CT where a plan goes, a JSON that is not a plan), unless the
 * user says --force. Throws WriteError ('input', 'kind') naming the file.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { WriteError } from '@corridor/core';

/** What a command writes. */
export type OutputKind =
  | 'plan'
  | 'volume'
  | 'png'
  | 'dicom'
  | 'phantom-truth'
  | 'text'
  | 'verification'
  | 'transform'
  | 'cement'
  | 'pdf'
  | 'html';

const KIND_NAMES: Record<OutputKind, string> = {
  plan: 'a plan (plan.json or 3D Slicer markups)',
  volume: 'an image volume (NIfTI or NRRD)',
  png: 'a PNG image',
  dicom: 'a DICOM file',
  'phantom-truth': "a phantom's truth.json",
  text: 'a text file',
  verification: 'a verification report (JSON)',
  transform: 'a transform (.json with movingToFixed, or an ITK .tfm)',
  cement: 'a cement report (JSON)',
  pdf: 'a PDF document',
  html: 'an HTML document',
};

export interface PlannedOutput {
  file: string;
  kind: OutputKind;
}

const HEAD_BYTES = 65536;

async function head(file: string): Promise<Uint8Array> {
  const h = await fsp.open(file, 'r');
  try {
    const buf = new Uint8Array(HEAD_BYTES);
    const { bytesRead } = await h.read(buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

const ascii = (b: Uint8Array, start: number, n: number) => String.fromCharCode(...b.subarray(start, start + n));

function gunzipHead(b: Uint8Array): Uint8Array {
  try {
    return zlib.gunzipSync(b, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch {
    return new Uint8Array(0);
  }
}

function isNifti(b: Uint8Array): boolean {
  if (b.length < 348) return false;
  const magic = ascii(b, 344, 3);
  if (magic === 'n+1' || magic === 'ni1') return true;
  return ascii(b, 4, 3) === 'n+2' || ascii(b, 4, 3) === 'ni2';
}

function isVolume(b: Uint8Array): boolean {
  if (ascii(b, 0, 4) === 'NRRD') return true;
  if (b[0] === 0x1f && b[1] === 0x8b) return isNifti(gunzipHead(b));
  return isNifti(b);
}

/** The whole file as JSON, or undefined when it is not JSON. */
async function jsonOf(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

async function isKind(file: string, kind: OutputKind, b: Uint8Array): Promise<boolean> {
  switch (kind) {
    case 'volume':
      return isVolume(b);
    case 'png':
      return b[0] === 0x89 && ascii(b, 1, 3) === 'PNG';
    case 'dicom':
      return ascii(b, 128, 4) === 'DICM';
    case 'text':
      return !b.includes(0);
    case 'pdf':
      return ascii(b, 0, 5) === '%PDF-';
    case 'html':
      return !b.includes(0) && /^\s*(<!doctype html|<html)/i.test(ascii(b, 0, Math.min(b.length, 256)));
    case 'plan': {
      if (b[0] === 0x1f || b.includes(0)) return false;
      const doc = (await jsonOf(file)) as Record<string, unknown> | undefined;
      if (!doc || typeof doc !== 'object') return false;
      const corridorPlan = Array.isArray(doc.paths) && 'schemaVersion' in doc;
      const slicer = Array.isArray(doc.markups);
      return corridorPlan || slicer;
    }
    case 'verification': {
      if (b[0] === 0x1f || b.includes(0)) return false;
      const doc = (await jsonOf(file)) as Record<string, unknown> | undefined;
      return !!doc && typeof doc === 'object' && doc.kind === 'corridor-verification';
    }
    case 'transform': {
      if (b[0] === 0x1f || b.includes(0)) return false;
      if (/^\s*#\s*Insight Transform File/.test(ascii(b, 0, Math.min(b.length, 64)))) return true;
      const doc = (await jsonOf(file)) as Record<string, unknown> | undefined;
      return !!doc && typeof doc === 'object' && ('movingToFixed' in doc || 'fixedToMoving' in doc);
    }
    case 'cement': {
      if (b[0] === 0x1f || b.includes(0)) return false;
      const doc = (await jsonOf(file)) as Record<string, unknown> | undefined;
      return !!doc && typeof doc === 'object' && doc.kind === 'corridor-cement';
    }
    case 'phantom-truth': {
      if (b[0] === 0x1f || b.includes(0)) return false;
      const doc = (await jsonOf(file)) as Record<string, unknown> | undefined;
      return !!doc && typeof doc === 'object' && 'boneGroups' in doc && 'criticalLabelIds' in doc;
    }
  }
}

/** Real path of a file that may not exist yet: its folder's real path and its name. */
async function realOf(file: string): Promise<string> {
  const abs = path.resolve(file);
  try {
    return await fsp.realpath(abs);
  } catch {
    try {
      return path.join(await fsp.realpath(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

const FORCE = 'use --force to overwrite it';

/**
 * Refuse outputs that would replace an input (a file, or a file inside an input folder) or an existing
 * file of another kind, unless `force`. `allowInput` lists outputs that are meant to be read and updated
 * (plan --append).
 */
export async function checkOutputs(
  outputs: PlannedOutput[],
  inputs: string[],
  options: { force?: boolean; allowInput?: string[] } = {},
): Promise<void> {
  if (options.force) return;
  const realInputs = await Promise.all(inputs.map(realOf));
  const allowed = new Set(await Promise.all((options.allowInput ?? []).map(realOf)));
  for (const out of outputs) {
    const real = await realOf(out.file);
    const st = await fsp.stat(real).catch(() => null);
    if (!allowed.has(real)) {
      for (let n = 0; n < inputs.length; n++) {
        const inp = realInputs[n];
        // A new file in an input folder replaces nothing; an existing one may be one of the inputs read.
        if (real === inp || (st && real.startsWith(inp + path.sep))) {
          const what = real === inp ? `is the input ${inputs[n]}` : `lies in the input folder ${inputs[n]}`;
          throw new WriteError(
            `${what} of this command; refusing to write ${KIND_NAMES[out.kind]} over it (${FORCE})`,
            out.file,
            'input',
          );
        }
      }
    }
    if (!st) continue; // not there yet
    if (st.isDirectory()) throw new WriteError('is a folder, not a file; nothing was written', out.file, 'EISDIR');
    if (!st.isFile() || st.size === 0) continue;
    if (!(await isKind(real, out.kind, await head(real)))) {
      throw new WriteError(
        `exists and is not ${KIND_NAMES[out.kind]}; refusing to overwrite it (${FORCE})`,
        out.file,
        'kind',
      );
    }
  }
}
