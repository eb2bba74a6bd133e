/**
 * The one way packages/node writes a file: a temporary file in the target's folder (unique name) is
 * written, fsynced, renamed over the target, and the folder is fsynced. A reader, or a crash at any
 * moment, sees the previous version or the new one, never a part of either. On an error the temporary
 * file is removed, the previous version stays as it was, and a WriteError names the file.
 *
 * Updates of an existing file (read, change, write) go through updateFileAtomic: an exclusive lock file
 * beside the target (O_EXCL, holding pid, host and a token) is held across read-change-write, and just
 * before the rename the target is compared with what was read (size, mtime, inode), so another writer,
 * even one that ignores the lock, never has its change silently replaced.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WriteError } from '@corridor/core';

/** The file system calls the writer makes; tests replace some to inject errors (ENOSPC, EACCES, ...). */
export interface AtomicFs {
  open(file: string, flags: string, mode?: number): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
}

const realFs: AtomicFs = {
  open: (f, flags, mode) => fsp.open(f, flags, mode),
  rename: (a, b) => fsp.rename(a, b),
  unlink: (f) => fsp.unlink(f),
};

export interface AtomicWriteOptions {
  /** Replacements for some file system calls (tests). */
  fs?: Partial<AtomicFs>;
  /** Create the target's folder (and its parents) when missing. */
  makeDir?: boolean;
  /** Called after the temporary file is complete and synced, just before the rename; may throw. */
  beforeRename?: () => Promise<void>;
}

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device while writing',
  EDQUOT: 'disk quota exceeded while writing',
  EACCES: 'permission denied while writing (the file or its folder is not writable)',
  EPERM: 'operation not permitted while writing (the file or its folder is protected)',
  EROFS: 'the file system is read-only',
  ENOENT: 'the folder to write in does not exist',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder, not a file',
  EMFILE: 'too many open files while writing',
  ENFILE: 'too many open files while writing',
  EIO: 'input/output error while writing',
  EFBIG: 'the file is too large for the file system',
  ENAMETOOLONG: 'the file name is too long',
};

function errnoCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** A WriteError naming `file` for a file system error (passed through when it already is a WriteError). */
export function writeErrorFor(err: unknown, file: string, existed: boolean): WriteError {
  if (err instanceof WriteError) return err;
  const code = errnoCode(err) ?? 'EUNKNOWN';
  const what = REASONS[code] ?? `cannot write (${code}: ${(err as Error)?.message ?? String(err)})`;
  const kept = existed ? 'the previous version is unchanged' : 'nothing was written';
  return new WriteError(`${what}; ${kept}`, file, code, { cause: err });
}

/** The path to write: a symbolic link's target (so the link stays), else the path itself, absolute. */
async function realTarget(file: string): Promise<{ target: string; existed: boolean; mode?: number }> {
  const abs = path.resolve(file);
  try {
    const target = await fsp.realpath(abs);
    const st = await fsp.stat(target);
    return { target, existed: true, mode: st.mode & 0o7777 };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { target: abs, existed: false };
    throw writeErrorFor(err, file, true);
  }
}

/** A unique temporary name in the folder of `target` (hidden, so it reads as no image). */
export function tempNameFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Errors of fsync on a folder that only say the platform cannot do it (Windows, some file systems). */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EBADF', 'EACCES']);

async function syncDir(dir: string, fs: AtomicFs): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
  } finally {
    await h?.close();
  }
}

/** Write `data` to `file` atomically (see the module comment). Throws WriteError naming `file`. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, options: AtomicWriteOptions = {}) {
  const fs: AtomicFs = { ...realFs, ...options.fs };
  if (options.makeDir) {
    try {
      await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    } catch (err) {
      throw writeErrorFor(err, file, false);
    }
  }
  const { target, existed, mode } = await realTarget(file);
  const tmp = tempNameFor(target);
  let created = false;
  let renamed = false;
  try {
    const h = await fs.open(tmp, 'wx', mode ?? 0o666);
    created = true;
    try {
      await h.writeFile(data);
      await h.sync();
      if (mode !== undefined) await h.chmod(mode); // the umask may have narrowed it at open
    } finally {
      await h.close();
    }
    if (options.beforeRename) await options.beforeRename();
    await fs.rename(tmp, target);
    renamed = true;
    await syncDir(path.dirname(target), fs);
    if (existed) await removeStaleTemps(target);
  } catch (err) {
    if (created && !renamed) await removeQuietly(tmp, fs, err);
    if (renamed) throw writeErrorFor(err, file, false); // the new version is in place, its folder not synced
    throw writeErrorFor(err, file, existed);
  }
}

/** Temporary files older than this whose writer is gone are left by a crash (kill -9, power loss). */
const STALE_TEMP_MS = 60_000;

/**
 * Remove the temporary files of `target` that writers killed mid-write left (their pid, in the name, is
 * no longer running, and they are over a minute old). Only names this module makes are considered.
 */
export async function removeStaleTemps(target: string): Promise<number> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  let removed = 0;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0; // the write itself succeeded; tidying is best effort
  }
  for (const n of names) {
    const m = n.startsWith(prefix) ? /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(n.slice(prefix.length)) : null;
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    const p = path.join(dir, n);
    const st = await fsp.stat(p).catch(() => null);
    if (
      st &&
      Date.now() - st.mtimeMs > STALE_TEMP_MS &&
      (await fsp.unlink(p).then(
        () => true,
        () => false,
      ))
    )
      removed++;
  }
  return removed;
}

/** Remove a temporary file after a failed write; a failure to remove it is added to the original error. */
async function removeQuietly(tmp: string, fs: AtomicFs, original: unknown) {
  try {
    await fs.unlink(tmp);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && original instanceof Error) {
      original.message += ` (the temporary file ${tmp} could not be removed: ${(err as Error).message})`;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Guarded updates: lock file + compare-before-replace.

export interface LockOptions {
  /** How long to wait for another writer's lock before failing (ms, default 30000). */
  timeoutMs?: number;
  /** A lock older than this is stale even when its holder cannot be checked (ms, default 120000). */
  staleMs?: number;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
  since: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A lock file that holds no readable holder this long after it was made is stale: a live writer writes its
 * pid microseconds after creating the file, so an empty one this old was left by a writer killed in between
 * (seen under kill -9 in plan-kill.test.ts on a loaded machine, where waiting for staleMs failed the writer).
 */
const UNREADABLE_LOCK_STALE_MS = 5_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM'; // exists, owned by someone else
  }
}

async function readLock(lockFile: string): Promise<{ info: LockInfo | null; ino: number; mtimeMs: number } | null> {
  try {
    const st = await fsp.stat(lockFile);
    const text = await fsp.readFile(lockFile, 'utf8');
    let info: LockInfo | null = null;
    try {
      info = JSON.parse(text) as LockInfo;
    } catch {
      info = null; // being written, or not ours: judged by age
    }
    return { info, ino: st.ino, mtimeMs: st.mtimeMs };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Remove a stale lock. Breakers are serialised by a second O_EXCL file (`.break`), and the lock is
 * removed only if it is still the very file judged stale (same inode), so two breakers never remove a
 * lock that a live writer has just taken.
 */
async function breakStaleLock(lockFile: string, ino: number): Promise<void> {
  const breaker = `${lockFile}.break`;
  let h: FileHandle;
  try {
    h = await fsp.open(breaker, 'wx');
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    const st = await fsp.stat(breaker).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 10_000) await fsp.unlink(breaker).catch(() => undefined); // a dead breaker
    return;
  }
  try {
    await h.close();
    const st = await fsp.stat(lockFile).catch(() => null);
    if (st && st.ino === ino) await fsp.unlink(lockFile);
  } finally {
    await fsp.unlink(breaker).catch(() => undefined);
  }
}

/** Run `fn` holding an exclusive lock on `file` (the lock file `${file}.lock`). Throws WriteError 'locked'. */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const staleMs = options.staleMs ?? 120_000;
  const lockFile = `${path.resolve(file)}.lock`;
  const me: LockInfo = { pid: process.pid, host: os.hostname(), token: randomBytes(8).toString('hex'), since: '' };
  const t0 = Date.now();
  let wait = 5;
  for (;;) {
    let h: FileHandle | undefined;
    try {
      h = await fsp.open(lockFile, 'wx');
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw writeErrorFor(err, file, true);
    }
    if (h) {
      try {
        me.since = new Date().toISOString();
        await h.writeFile(JSON.stringify(me) + '\n');
      } finally {
        await h.close();
      }
      break;
    }
    const held = await readLock(lockFile);
    if (held) {
      const age = Date.now() - held.mtimeMs;
      const i = held.info;
      const dead = i && i.host === me.host && i.pid !== process.pid && !pidAlive(i.pid);
      if (dead || age > staleMs || (!i && age > Math.min(staleMs, UNREADABLE_LOCK_STALE_MS))) {
        await breakStaleLock(lockFile, held.ino);
        continue;
      }
      if (Date.now() - t0 > timeoutMs) {
        const who = held.info
          ? `process ${held.info.pid} on ${held.info.host} since ${held.info.since}`
          : 'another writer';
        throw new WriteError(
          `is being updated by ${who}; waited ${Math.round(timeoutMs / 1000)} s. ` +
            `If no corridor command is running, remove ${lockFile}`,
          file,
          'locked',
        );
      }
    }
    await sleep(wait + Math.random() * wait);
    wait = Math.min(wait * 2, 100);
  }
  try {
    return await fn();
  } finally {
    const mine = await readLock(lockFile).catch(() => null);
    if (mine?.info?.token === me.token) await fsp.unlink(lockFile).catch(() => undefined);
  }
}

export interface UpdateOptions extends LockOptions, AtomicWriteOptions {
  /** How many times a change by another writer between read and rename is merged again (default 5). */
  attempts?: number;
  /** Test hook: called after the file was read and before the new content is written. */
  afterRead?: () => Promise<void>;
}

interface Snapshot {
  bytes: Uint8Array | null;
  key: string;
}

async function snapshot(file: string): Promise<Snapshot> {
  try {
    const target = await fsp.realpath(file);
    const st = await fsp.stat(target);
    const bytes = await fsp.readFile(target);
    return { bytes, key: `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { bytes: null, key: 'absent' };
    throw writeErrorFor(err, file, true);
  }
}

async function statKey(file: string): Promise<string> {
  try {
    const st = await fsp.stat(await fsp.realpath(file));
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'absent';
    throw err;
  }
}

class Changed extends Error {}

/**
 * Read `file` (null when absent), compute its new content with `update`, and write it atomically, with
 * the file locked and compared before the rename; when it changed meanwhile the update is redone, up to
 * `attempts` times, then a WriteError 'conflict' is thrown. `update` may be called more than once.
 * Returns what `update` returned last.
 */
export async function updateFileAtomic<T extends Uint8Array | string>(
  file: string,
  update: (current: Uint8Array | null) => T | Promise<T>,
  options: UpdateOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 5;
  return withFileLock(
    file,
    async () => {
      for (let n = 0; n < attempts; n++) {
        const before = await snapshot(file);
        const data = await update(before.bytes);
        if (options.afterRead) await options.afterRead();
        try {
          await writeFileAtomic(file, data, {
            ...options,
            beforeRename: async () => {
              if (options.beforeRename) await options.beforeRename();
              if ((await statKey(file)) !== before.key) throw new Changed();
            },
          });
          return data;
        } catch (err) {
          if (!(err instanceof WriteError && err.cause instanceof Changed)) throw err;
        }
      }
      throw new WriteError(
        `changed under this update ${attempts} times (another program is writing it); nothing was written`,
        file,
        'conflict',
      );
    },
    options,
  );
}
