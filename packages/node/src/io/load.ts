/**
 * Loading images from the file system: a file or a folder, any format Corridor reads. The parsing is
 * core's (on bytes); this module only finds files, reads bytes and hands detached data files to the readers.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  FormatError,
  UsageError,
  readDicomSeries,
  readMetaImage,
  readNifti,
  readNrrd,
  sniffFormat,
  type LoadedSeries,
  type NamedBytes,
} from '@corridor/core';

export interface LoadResult {
  series: LoadedSeries[];
  /** Files in a folder that were not part of any series, with the reason. */
  skipped: { name: string; reason: string }[];
}

export interface LoadOptions {
  onProgress?: (done: number, total: number) => void;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Reads a detached data file named in a header, relative to the header's folder, refusing to leave it. */
function detachedReader(headerPath: string) {
  const dir = path.dirname(path.resolve(headerPath));
  return (fileName: string): Uint8Array => {
    const p = path.resolve(dir, fileName);
    if (path.relative(dir, p).startsWith('..')) {
      throw new FormatError(`detached data file "${fileName}" lies outside the header's folder`, headerPath);
    }
    try {
      return readFileSync(p);
    } catch (err) {
      throw new FormatError(`cannot read detached data file "${fileName}": ${(err as Error).message}`, headerPath);
    }
  };
}

/** Read one non-DICOM image file; null when the bytes are not one of those formats. */
export function readVolumeFile(file: NamedBytes): LoadedSeries | null {
  const format = sniffFormat(file.name, file.bytes);
  switch (format) {
    case 'nifti':
      return readNifti(file.bytes, file.name);
    case 'nrrd':
      return readNrrd(file.bytes, file.name, detachedReader(file.name));
    case 'metaimage':
      return readMetaImage(file.bytes, file.name, detachedReader(file.name));
    default:
      return null;
  }
}

async function readBytes(p: string): Promise<Uint8Array> {
  try {
    return await readFile(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError('no such file or folder', p);
    if (code === 'EACCES') throw new UsageError('permission denied', p);
    throw new FormatError(`cannot read: ${(err as Error).message}`, p);
  }
}

/**
 * Load every series under a path. A file is read as its format; a folder's NIfTI/NRRD/MetaImage files
 * are one series each and all other files are offered to the DICOM reader, which groups them by series.
 */
export async function loadPath(p: string, options: LoadOptions = {}): Promise<LoadResult> {
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new UsageError('no such file or folder', p);
  }
  const files = st.isDirectory() ? await listFiles(p) : [p];
  if (files.length === 0) throw new FormatError('folder holds no files', p);
  const series: LoadedSeries[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const dicomCandidates: NamedBytes[] = [];
  for (const f of files) {
    // Detached data files are read through their header, not on their own.
    if (st.isDirectory() && /\.(raw|zraw|img)(\.gz)?$/i.test(f)) continue;
    const bytes = await readBytes(f);
    const format = sniffFormat(f, bytes);
    if (format && format !== 'dicom') {
      const s = readVolumeFile({ name: f, bytes });
      if (s) series.push(s);
    } else {
      dicomCandidates.push({ name: f, bytes });
    }
  }
  if (dicomCandidates.length > 0) {
    if (series.length === 0 || dicomCandidates.some((c) => sniffFormat(c.name, c.bytes) === 'dicom')) {
      try {
        const result = await readDicomSeries(dicomCandidates, { onProgress: options.onProgress });
        series.push(...result.series);
        skipped.push(...result.skipped);
      } catch (err) {
        // With other series found, unreadable extra files are reported, not fatal.
        if (series.length === 0 || !(err instanceof FormatError)) throw err;
        for (const c of dicomCandidates) skipped.push({ name: c.name, reason: err.message });
      }
    } else {
      for (const c of dicomCandidates) skipped.push({ name: c.name, reason: 'not an image file Corridor reads' });
    }
  }
  return { series, skipped };
}
