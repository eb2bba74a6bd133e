/**
 * One error class per family. Each names the file or object it is about and what is wrong,
 * so a message can be shown to a user as it is. Never throw strings.
 */
export class CorridorError extends Error {
  /**
   * The family's name, written out in each class (not taken from the constructor) so that a minifying
   * bundler, which renames classes, cannot turn "FormatError: ..." into "Wt: ...".
   */
  override readonly name: string = 'CorridorError';
  /** The file, series or object the error is about (a path, a UID, a path id), when known. */
  readonly source: string | undefined;
  constructor(message: string, source?: string, options?: { cause?: unknown }) {
    super(source ? `${source}: ${message}` : message, options);
    this.source = source;
  }
}

/** Bytes that are not a valid file of the claimed format, or use a feature the reader refuses. */
export class FormatError extends CorridorError {
  override readonly name: string = 'FormatError';
}

/** Geometry that is inconsistent or cannot be represented (singular matrices, uneven slices, tilt). */
export class GeometryError extends CorridorError {
  override readonly name: string = 'GeometryError';
}

/** A request for more memory than the input can justify, or than the platform can give. */
export class LimitError extends CorridorError {
  override readonly name: string = 'LimitError';
}

/** Bad arguments from a caller (CLI flags, API parameters). */
export class UsageError extends CorridorError {
  override readonly name: string = 'UsageError';
}

/** Long work stopped because its caller asked (an AbortSignal); nothing it would have returned is kept. */
export class CancelledError extends CorridorError {
  override readonly name: string = 'CancelledError';
}

/**
 * Why a write failed or was refused: an errno code of the file system ('ENOSPC', 'EACCES', ...), or
 * 'input' (the target is an input of the same command), 'kind' (the target is a file of another kind),
 * 'foreign' (a folder holds files the command did not make), 'locked' (another writer holds the file),
 * 'conflict' (the file kept changing under an update).
 */
export type WriteErrorCode = string;

/** A file that could not be written, or that a command refused to write; the previous version is unchanged. */
export class WriteError extends CorridorError {
  override readonly name: string = 'WriteError';
  readonly code: WriteErrorCode;
  constructor(message: string, file: string, code: WriteErrorCode, options?: { cause?: unknown }) {
    super(message, file, options);
    this.code = code;
  }
}
