/**
 * Reading a request body with limits: a claimed Content-Length over the limit is refused before a byte of
 * the body is read; a body that grows past it (chunked) is cut off there; a gzip body is inflated as it
 * arrives and refused as soon as the inflated text passes the limit, so a small bomb never becomes a large
 * buffer; the text must be UTF-8 and JSON.
 */
import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';

/** An HTTP refusal: status, a stable code for clients, a message for people. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, unknown> | undefined;
  /** Close the connection after answering (the rest of the body is not read). */
  readonly close: boolean;
  constructor(
    status: number,
    code: string,
    message: string,
    opts: { extra?: Record<string, unknown>; close?: boolean } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = opts.extra;
    this.close = opts.close ?? false;
  }
}

function mib(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 1 : 0)} MiB` : `${n} bytes`;
}

/** The body as bytes (inflated when gzip), at most `limit` bytes either way. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const claimed = req.headers['content-length'];
  if (claimed !== undefined) {
    const n = Number(claimed);
    if (!/^\d+$/.test(claimed) || !Number.isSafeInteger(n)) {
      return Promise.reject(
        new HttpError(400, 'bad-content-length', 'Content-Length is not a number', { close: true }),
      );
    }
    if (n > limit) {
      return Promise.reject(
        new HttpError(413, 'too-large', `the body (${n} bytes claimed) is over the limit of ${mib(limit)}`, {
          close: true,
        }),
      );
    }
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    return Promise.reject(
      new HttpError(415, 'unsupported-encoding', `Content-Encoding "${encoding}" is not accepted (only gzip)`, {
        close: true,
      }),
    );
  }
  const gunzip = encoding === 'gzip' ? createGunzip() : null;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let raw = 0;
    let out = 0;
    let done = false;
    const fail = (err: HttpError) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      gunzip?.destroy();
      reject(err);
    };
    const finish = () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, out));
    };
    const onOut = (b: Buffer) => {
      if (done) return;
      out += b.length;
      if (out > limit) {
        fail(
          new HttpError(
            413,
            'too-large',
            gunzip
              ? `the gzip body inflates past the limit of ${mib(limit)} (${raw} bytes received)`
              : `the body is over the limit of ${mib(limit)}`,
            { close: true },
          ),
        );
        return;
      }
      chunks.push(b);
    };
    const onData = (b: Buffer) => {
      raw += b.length;
      if (raw > limit) {
        fail(new HttpError(413, 'too-large', `the body is over the limit of ${mib(limit)}`, { close: true }));
        return;
      }
      if (gunzip) gunzip.write(b);
      else onOut(b);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (gunzip) gunzip.end();
      else finish();
    });
    req.on('error', () => fail(new HttpError(400, 'aborted', 'the request was aborted', { close: true })));
    // A client gone before the end of its body (a complete body may still be inflating: not that).
    req.on('close', () => {
      if (!req.complete) fail(new HttpError(400, 'aborted', 'the request was aborted', { close: true }));
    });
    if (gunzip) {
      gunzip.on('data', onOut);
      gunzip.on('end', finish);
      gunzip.on('error', (e) =>
        fail(new HttpError(400, 'bad-gzip', `the gzip body cannot be inflated: ${e.message}`, { close: true })),
      );
    }
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON object from the request: Content-Type application/json, UTF-8, parsed; its text kept as sent. */
export async function readJsonObject(
  req: IncomingMessage,
  limit: number,
): Promise<{ text: string; value: Record<string, unknown> }> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const m = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/.exec(type.trim());
  if (!m) {
    throw new HttpError(415, 'unsupported-media-type', 'the body must be Content-Type: application/json (UTF-8)', {
      close: true,
    });
  }
  const bytes = await readBody(req, limit);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new HttpError(400, 'bad-utf8', 'the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'bad-json', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(422, 'not-an-object', 'the body must be a JSON object');
  }
  return { text, value: value as Record<string, unknown> };
}
