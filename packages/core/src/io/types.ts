import type { Volume } from '../volume/volume.js';

export type ImageFormat = 'nifti' | 'nrrd' | 'metaimage' | 'dicom';

/** One image series read from bytes: the volume plus anything the user should know about how it was read. */
export interface LoadedSeries {
  format: ImageFormat;
  volume: Volume;
  /** Human-readable notes about recoverable problems (each names the file and the problem). */
  warnings: string[];
}

/** A file handed to a reader: a name for messages and its bytes. Core never touches a file system. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}
