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

/**
 * A file whose bytes are read only when a reader gets to it, so a caller with many files never holds
 * them all at once (readDicomSeries reads one, keeps what series assembly needs and moves on).
 */
export interface LazyNamedBytes {
  name: string;
  read: () => Promise<Uint8Array>;
}
