/**
 * Loading images from the file system: a file or a folder, any format Corridor reads. The parsing is
 * core's (on bytes); this module only finds files, reads bytes and hands detached data files to the readers.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import {
  FormatError,
  UsageError,
  looksLikeDicomSeg,
  mightBeDicom,
  readDicomSegLabels,
  readDicomSeries,
  readMetaImage,
  readNifti,
  readNrrd,
  sniffFormat,
  type LazyNamedBytes,
  type VoxelLimits,
  type LoadedSeries,
  type NamedBytes,
  type SegValueMode,
  type Volume,
} from '@corridor/core';

import { installCodecPool } from './codec-pool.js';

export interface LoadResult {
  series: LoadedSeries[];
  /** Files in a folder that were not part of any series, with the reason. */
  skipped: { name: string; reason: string }[];
}

export interface LoadOptions extends VoxelLimits {
  onProgress?: (done: number, total: number) => void;
}

/** What a stat describes when it is not a regular file ("a FIFO (named pipe)"), or null for a regular file. */
function notRegular(st: Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Whether p lies strictly inside dir (both real, absolute paths). */
function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * Paths are opened only after stat says "regular file" (a FIFO is never opened: opening one blocks), and
 * non-blocking, without following links (the path is already real), so a swap in between cannot hang us.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

/** A regular file found under a path: its name for messages and its real path for reading. */
interface FoundFile {
  name: string;
  real: string;
  size: number;
}

type Skipped = { name: string; reason: string }[];

/**
 * Regular files under dir, sorted, hidden names left out. A symbolic link is followed when its real path
 * stays inside the folder and is a regular file not listed already; anything else is skipped with a reason.
 */
async function listFiles(
  root: string,
  rootReal: string,
  dir: string,
  out: FoundFile[],
  skipped: Skipped,
  seen: Set<string>,
): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      await listFiles(root, rootReal, p, out, skipped, seen);
      continue;
    }
    // Folders are entered only as real directories, so a plain entry's real path is its place under rootReal.
    let real = path.join(rootReal, path.relative(root, p));
    if (e.isSymbolicLink()) {
      try {
        real = await realpath(p);
      } catch {
        skipped.push({ name: p, reason: 'symbolic link whose target does not exist: skipped' });
        continue;
      }
      if (!inside(rootReal, real)) {
        skipped.push({ name: p, reason: 'symbolic link to a file outside the folder: not followed' });
        continue;
      }
    }
    let st: Stats;
    try {
      st = await stat(real);
    } catch (err) {
      skipped.push({ name: p, reason: `cannot stat: ${(err as Error).message}` });
      continue;
    }
    if (st.isDirectory()) {
      skipped.push({ name: p, reason: 'symbolic link to a folder: not followed (its files are read where they lie)' });
      continue;
    }
    const kind = notRegular(st);
    if (kind) {
      skipped.push({ name: p, reason: `${kind}, not a regular file: not read` });
      continue;
    }
    if (seen.has(real)) {
      skipped.push({ name: p, reason: 'the same file as one listed before (a link): read once' });
      continue;
    }
    seen.add(real);
    out.push({ name: p, real, size: st.size });
  }
}

/** Read up to maxBytes of an open file from its start. */
function readOpenSync(fd: number, size: number): Uint8Array {
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? buf : buf.subarray(0, off);
}

/** Reads a detached data file named in a header: a regular file whose real path lies in the header's folder. */
function detachedReader(headerPath: string) {
  return (fileName: string): Uint8Array => {
    const given = path.dirname(path.resolve(headerPath));
    const p = path.resolve(given, fileName);
    const what = `detached data file "${fileName}"`;
    let dir: string, real: string;
    try {
      dir = realpathSync.native(given);
      real = realpathSync.native(p);
    } catch (err) {
      throw new FormatError(`cannot read ${what}: ${(err as Error).message}`, headerPath);
    }
    // Real paths on both sides: a symbolic link cannot carry the data file out of the folder.
    if (!inside(dir, real)) {
      const how = inside(dir, path.resolve(dir, fileName)) ? ' (through a symbolic link)' : '';
      throw new FormatError(`${what} lies outside the header's folder${how}`, headerPath);
    }
    let fd: number;
    try {
      const kind = notRegular(statSync(real));
      if (kind) throw new FormatError(`${what} is ${kind}, not a regular file: refused`, headerPath);
      fd = openSync(real, OPEN_FLAGS);
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw new FormatError(`cannot read ${what}: ${(err as Error).message}`, headerPath);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new FormatError(`${what} is not a regular file: refused`, headerPath);
      return readOpenSync(fd, st.size);
    } finally {
      closeSync(fd);
    }
  };
}

/** Read one non-DICOM image file (its bytes are handed over: voxels may view them); null when not one of those formats. */
export function readVolumeFile(file: NamedBytes, limits: VoxelLimits = {}): LoadedSeries | null {
  const format = sniffFormat(file.name, file.bytes);
  switch (format) {
    case 'nifti':
      // The bytes were read for this call: uncompressed voxels are viewed in place, not copied.
      return readNifti(file.bytes, file.name, { maxVoxelBytes: limits.maxVoxelBytes, adoptBytes: true });
    case 'nrrd':
      return readNrrd(file.bytes, file.name, detachedReader(file.name), limits);
    case 'metaimage':
      return readMetaImage(file.bytes, file.name, detachedReader(file.name), limits);
    default:
      return null;
  }
}

const cannotRead = (err: unknown, name: string) => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UsageError('no such file or folder', name);
  if (code === 'EACCES') return new UsageError('permission denied', name);
  return new FormatError(`cannot read: ${(err as Error).message}`, name);
};

/** The first maxBytes (default all) of a regular file; refuses anything else without blocking on it. */
async function readRegular(f: FoundFile, maxBytes = Infinity): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(f.real, OPEN_FLAGS);
  } catch (err) {
    throw cannotRead(err, f.name);
  }
  try {
    const st = await handle.stat();
    const kind = notRegular(st);
    if (kind) throw new FormatError(`${kind}, not a regular file: refused`, f.name);
    const size = Math.min(st.size, maxBytes);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await handle.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } catch (err) {
    throw err instanceof FormatError ? err : cannotRead(err, f.name);
  } finally {
    await handle.close();
  }
}

/** Enough of a file to tell its format (sniffFormat, mightBeDicom) without reading it whole. */
const HEAD_BYTES = 4096;

/**
 * Load every series under a path. A file is read as its format; a folder's NIfTI/NRRD/MetaImage files
 * are one series each and the files that may be DICOM go to the DICOM reader, which groups them by series.
 * A folder is read file by file: each file's head tells its format, files that are no image are skipped
 * unread, and a DICOM file's bytes are read only when the DICOM reader gets to it.
 */
export async function loadPath(p: string, options: LoadOptions = {}): Promise<LoadResult> {
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new UsageError('no such file or folder', p);
  }
  const isDir = st.isDirectory();
  const series: LoadedSeries[] = [];
  const skipped: Skipped = [];
  const files: FoundFile[] = [];
  if (isDir) {
    await listFiles(p, await realpath(p), p, files, skipped, new Set());
    if (files.length === 0) {
      const listed = skipped.slice(0, 5).map((s) => `${s.name}: ${s.reason}`);
      const why = skipped.length ? `; skipped: ${listed.join('; ')}` : '';
      throw new FormatError(`folder holds no files${why}`, p);
    }
  } else {
    const kind = notRegular(st);
    if (kind) throw new UsageError(`${kind}, not a regular file: Corridor reads files and folders`, p);
    files.push({ name: p, real: await realpath(p), size: st.size });
  }
  const dicomCandidates: LazyNamedBytes[] = [];
  let sawDicom = false;
  for (const f of files) {
    // Detached data files are read through their header, not on their own.
    if (isDir && /\.(raw|zraw|img)(\.gz)?$/i.test(f.name)) continue;
    const head = await readRegular(f, HEAD_BYTES);
    const format = sniffFormat(f.name, head);
    if (format && format !== 'dicom') {
      const bytes = head.length === f.size ? head : await readRegular(f);
      const s = readVolumeFile({ name: f.name, bytes }, { maxVoxelBytes: options.maxVoxelBytes });
      if (s) series.push(s);
    } else if (!isDir || format === 'dicom' || mightBeDicom(head, f.size)) {
      sawDicom ||= format === 'dicom';
      const whole = head.length === f.size ? head : null; // (a longer file's head is not kept)
      dicomCandidates.push({ name: f.name, read: () => (whole ? Promise.resolve(whole) : readRegular(f)) });
    } else {
      skipped.push({ name: f.name, reason: 'not an image file Corridor reads' });
    }
  }
  if (dicomCandidates.length > 0) {
    if (series.length === 0 || sawDicom) {
      installCodecPool(); // JPEG 2000 / HTJ2K frames decode on worker threads, in parallel
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
  if (series.length === 0) {
    const listed = skipped
      .slice(0, 5)
      .map((s) => `${s.name}: ${s.reason}`)
      .join('; ');
    throw new FormatError(`no image series could be read from ${files.length} file(s): ${listed}`, p);
  }
  return { series, skipped };
}

export interface LabelsLoadResult {
  /** The labels, on the grid given when they came from a DICOM SEG. */
  volume: Volume;
  /** The DICOM SEG read ('seg'), or an image file or series ('image'). */
  from: 'seg' | 'image';
  warnings: string[];
}

export interface LabelsLoadOptions extends LoadOptions {
  /** How a SEG's segment numbers become label values (see segmentLabelValues); default 'auto'. */
  segValues?: SegValueMode;
}

/**
 * Load a segmentation for planning on `grid` (the CT): a DICOM SEG file, or a folder holding one SEG, is
 * read onto the CT's grid (readDicomSegLabels: one of another series or grid is refused); anything else
 * is loaded as an image (one series) and must then lie on the CT's grid itself.
 */
export async function loadLabelsPath(
  p: string,
  grid: Volume,
  options: LabelsLoadOptions = {},
): Promise<LabelsLoadResult> {
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new UsageError('no such file or folder', p);
  }
  const files: FoundFile[] = [];
  if (st.isDirectory()) await listFiles(p, await realpath(p), p, files, [], new Set());
  else if (!notRegular(st)) files.push({ name: p, real: await realpath(p), size: st.size });
  const segs: FoundFile[] = [];
  for (const f of files) {
    if (/\.(raw|zraw|img|nii|gz|nrrd|nhdr|mha|mhd|json)$/i.test(f.name)) continue;
    if (looksLikeDicomSeg(await readRegular(f, HEAD_BYTES))) segs.push(f);
  }
  if (segs.length > 1) {
    throw new UsageError(
      `holds ${segs.length} DICOM SEG files (${segs
        .slice(0, 3)
        .map((f) => path.basename(f.name))
        .join(', ')}${segs.length > 3 ? ', ...' : ''}): give the one to plan with`,
      p,
    );
  }
  if (segs.length === 1) {
    const f = segs[0];
    const r = readDicomSegLabels(await readRegular(f), f.name, grid, options.segValues);
    return { volume: r.volume, from: 'seg', warnings: r.warnings };
  }
  const { series } = await loadPath(p, options);
  if (series.length !== 1) throw new UsageError(`expected one image series, found ${series.length}`, p);
  return { volume: series[0].volume, from: 'image', warnings: series[0].warnings };
}
