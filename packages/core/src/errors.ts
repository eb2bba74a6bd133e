/**
 * One error class per family. Each names the file or object it is about and what is wrong,
 * so a message can be shown to a user as it is. Never throw strings.
 */
export class CorridorError extends Error {
  /** The file, series or object the error is about (a path, a UID, a path id), when known. */
  readonly source: string | undefined;
  constructor(message: string, source?: string, options?: { cause?: unknown }) {
    super(source ? `${source}: ${message}` : message, options);
    this.name = new.target.name;
    this.source = source;
  }
}

/** Bytes that are not a valid file of the claimed format, or use a feature the reader refuses. */
export class FormatError extends CorridorError {}

/** Geometry that is inconsistent or cannot be represented (singular matrices, uneven slices, tilt). */
export class GeometryError extends CorridorError {}

/** A request for more memory than the input can justify, or than the platform can give. */
export class LimitError extends CorridorError {}

/** Bad arguments from a caller (CLI flags, API parameters). */
export class UsageError extends CorridorError {}

/** Long work stopped because its caller asked (an AbortSignal); nothing it would have returned is kept. */
export class CancelledError extends CorridorError {}

/**
 * Why a write failed or was refused: an errno code of the file system ('ENOSPC', 'EACCES', ...), or
 * 'input' (the target is an input of the same command), 'kind' (the target is a file of another kind),
 * 'foreign' (a folder holds files the command did not make), 'locked' (another writer holds the file),
 * 'conflict' (the file kept changing under an update).
 */
export type WriteErrorCode = string;

/** A file that could not be written, or that a command refused to write; the previous version is unchanged. */
export class WriteError extends CorridorError {
  readonly code: WriteErrorCode;
  constructor(message: string, file: string, code: WriteErrorCode, options?: { cause?: unknown }) {
    super(message, file, options);
    this.code = code;
  }
}
