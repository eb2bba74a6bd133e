/** Which reader a file needs, by content first and by name only when the content says nothing. */
import { inflateCapped, isGzip } from './inflate.js';
import { isMetaImage } from './metaimage.js';
import { isNiftiHeader } from './nifti.js';
import { isNrrd } from './nrrd.js';
import type { ImageFormat } from './types.js';

export function sniffFormat(name: string, bytes: Uint8Array): ImageFormat | null {
  if (isGzip(bytes)) {
    let head: Uint8Array;
    try {
      head = inflateCapped(bytes, { container: 'gzip', maxBytes: 600, verify: false });
    } catch {
      // Corrupt gzip data named .nii.gz is the NIfTI reader's to describe, not "not a DICOM file".
      return /\.nii\.gz$/i.test(name) ? 'nifti' : null;
    }
    if (isNiftiHeader(head)) return 'nifti';
    return /\.nii\.gz$/i.test(name) ? 'nifti' : null;
  }
  // An empty or non-gzip file named .nii.gz: the NIfTI reader says "empty file" or "not gzip data".
  if (/\.nii\.gz$/i.test(name)) return 'nifti';
  if (isNrrd(bytes)) return 'nrrd';
  if (isNiftiHeader(bytes)) return 'nifti';
  if (bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d)
    return 'dicom';
  if (isMetaImage(bytes)) return 'metaimage';
  const lower = name.toLowerCase();
  if (/\.(nii|hdr)$/.test(lower)) return 'nifti';
  if (/\.(nrrd|nhdr)$/.test(lower)) return 'nrrd';
  if (/\.(mha|mhd)$/.test(lower)) return 'metaimage';
  if (/\.(dcm|dicom)$/.test(lower)) return 'dicom';
  return null;
}
