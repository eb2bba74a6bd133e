/**
 * The case store's image files (blobs): the bytes of the files a series was opened from (a dropped CT, a
 * verification or cement scan, a 3D run written as NIfTI), kept beside the SQLite file in a folder of its
 * own (`<db>.blobs/`, mode 0700), each under the SHA-256 of its bytes (64 hex digits: a name that can be
 * nothing but a file in that folder). A case's series documents name them (`{"blobs": [{sha256, name,
 * bytes}]}`); the same bytes in two cases are kept once.
 *
 * Writing one is atomic and durable: the body streams into a temporary file in the same folder while its
 * SHA-256 is computed; only when every byte came, the count equals the announced size and the digest the
 * announced name, is the file fsynced, renamed to its name and the folder fsynced. A process killed at any
 * moment leaves either the whole blob under its name or a temporary file (removed on the next open),
 * never a part of a blob under a name. A blob is acknowledged only after that rename is on disk, so a
 * series document saved after it never names missing bytes. Reading streams the file while hashing it
 * again: a file changed on disk is cut off (the client sees a broken transfer, never wrong bytes as good).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';

/** A blob's name: the lower-case hex SHA-256 of its bytes. */
export const BLOB_NAME_RE = /^[0-9a-f]{64}$/;

export function isBlobName(s: string): boolean {
  return BLOB_NAME_RE.test(s);
}

export type BlobErrorCode = 'too-large' | 'length-mismatch' | 'checksum-mismatch' | 'aborted' | 'io';

export class BlobError extends Error {
  readonly code: BlobErrorCode;
  constructor(code: BlobErrorCode, message: string) {
    super(message);
    this.name = 'BlobError';
    this.code = code;
  }
}

const TMP_PREFIX = 'tmp-';

export class BlobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Temporary files of uploads a kill interrupted: never acknowledged, never named by a document.
    for (const f of readdirSync(dir)) if (f.startsWith(TMP_PREFIX)) rmSync(path.join(dir, f), { force: true });
  }

  private file(sha256: string): string {
    if (!isBlobName(sha256)) throw new BlobError('io', `not a blob name: ${sha256.slice(0, 80)}`);
    return path.join(this.dir, sha256);
  }

  /** The size of a stored blob, or undefined when there is none of that name. */
  async size(sha256: string): Promise<number | undefined> {
    try {
      const s = await stat(this.file(sha256));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Store `bytes` bytes from `source` under `sha256`: refused (nothing kept) when the stream ends short or
   * long, breaks off, or its digest differs. Resolves once the blob is durable under its name.
   */
  async write(source: Readable, sha256: string, bytes: number): Promise<void> {
    const final = this.file(sha256);
    const tmp = path.join(this.dir, `${TMP_PREFIX}${randomUUID()}`);
    const hash = createHash('sha256');
    let n = 0;
    let out: Writable | undefined;
    try {
      out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      const w = out;
      await new Promise<void>((resolve, reject) => {
        let failed = false;
        const fail = (e: Error) => {
          if (failed) return;
          failed = true;
          source.unpipe?.(w);
          source.pause();
          reject(e);
        };
        w.on('error', (e) => fail(new BlobError('io', `cannot write the blob: ${e.message}`)));
        source.on('data', (c: Buffer) => {
          n += c.length;
          if (n > bytes) {
            fail(new BlobError('length-mismatch', `more than the ${bytes} bytes announced came`));
            return;
          }
          hash.update(c);
          if (!w.write(c)) {
            source.pause();
            w.once('drain', () => source.resume());
          }
        });
        source.on('error', () => fail(new BlobError('aborted', 'the upload was aborted')));
        source.on('close', () => {
          if ((source as { complete?: boolean }).complete === false)
            fail(new BlobError('aborted', 'the upload was aborted'));
        });
        source.on('end', () => {
          if (failed) return;
          w.end(() => resolve());
        });
      });
      if (n !== bytes) throw new BlobError('length-mismatch', `${n} bytes came where ${bytes} were announced`);
      const got = hash.digest('hex');
      if (got !== sha256) {
        throw new BlobError('checksum-mismatch', `the bytes have SHA-256 ${got}, not the ${sha256} they were sent as`);
      }
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      const d = await open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (err) {
      out?.destroy();
      await rm(tmp, { force: true }).catch(() => undefined);
      if (err instanceof BlobError) throw err;
      throw new BlobError('io', `cannot store the blob: ${(err as Error).message}`);
    }
  }

  /** A stream of a stored blob's bytes that fails (errors) when they no longer have its digest. */
  read(sha256: string): Readable {
    const hash = createHash('sha256');
    // The last chunk is held back until the digest is checked: a changed file never arrives whole.
    let held: Buffer | null = null;
    const check = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        const out = held;
        held = chunk;
        done(null, out ?? undefined);
      },
      flush(done) {
        if (hash.digest('hex') !== sha256) {
          done(new BlobError('checksum-mismatch', `blob ${sha256} no longer matches its checksum`));
          return;
        }
        done(null, held ?? undefined);
      },
    });
    const file = createReadStream(this.file(sha256));
    file.on('error', (e) => check.destroy(e));
    return file.pipe(check);
  }

  /** Every stored blob whose bytes do not match its name (for CaseStore.check). */
  async check(): Promise<string[]> {
    const problems: string[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!isBlobName(f)) continue;
      const h = createHash('sha256');
      await new Promise<void>((resolve, reject) => {
        createReadStream(path.join(this.dir, f))
          .on('data', (c) => h.update(c))
          .on('end', resolve)
          .on('error', reject);
      });
      if (h.digest('hex') !== f) problems.push(`blob ${f}: its bytes do not match its checksum`);
    }
    return problems;
  }
}
