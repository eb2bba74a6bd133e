/**
 * The slice of fetch that core's DicomWebClient uses, over node:http/https, one connection per request.
 * Node's built-in fetch (undici) trips an internal assertion and then hangs when a server such as Orthanc
 * closes a kept-alive connection while a streamed answer is paused for back-pressure (seen with Node 20
 * and 24); plain node:http has no such state and streams with back-pressure of its own.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { FetchInit, FetchLike, FetchResponse } from '@corridor/core';

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(typeof reason === 'string' ? reason : 'aborted');
}

export const nodeFetch: FetchLike = (url: string, init: FetchInit = {}) =>
  new Promise<FetchResponse>((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!lib) return reject(new TypeError(`unsupported protocol ${u.protocol}`));
    const signal = init.signal;
    if (signal?.aborted) return reject(toError(signal.reason));
    const req = lib.request(u, { method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false });
    const onAbort = () => req.destroy(toError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => signal?.removeEventListener('abort', onAbort);
    req.once('error', (e) => {
      cleanup();
      reject(e);
    });
    req.once('response', (res: IncomingMessage) => {
      res.once('end', cleanup);
      res.once('close', cleanup);
      resolve(wrap(res));
    });
    void sendBody(req, init.body).catch((e: unknown) => req.destroy(toError(e)));
  });

async function sendBody(req: http.ClientRequest, body: unknown): Promise<void> {
  if (body === undefined || body === null) return void req.end();
  if (typeof body === 'string' || body instanceof Uint8Array) return void req.end(body);
  if (body instanceof Blob) {
    req.setHeader('Content-Length', body.size);
    for await (const chunk of body.stream() as unknown as AsyncIterable<Uint8Array>) {
      if (!req.write(chunk)) await new Promise<void>((r) => req.once('drain', r));
    }
    return void req.end();
  }
  throw new TypeError('unsupported request body');
}

function wrap(res: IncomingMessage): FetchResponse {
  const status = res.statusCode ?? 0;
  let used = false;
  const readAll = async (): Promise<Buffer> => {
    if (used) throw new TypeError('body already read');
    used = true;
    const parts: Buffer[] = [];
    for await (const c of res) parts.push(c as Buffer);
    return Buffer.concat(parts);
  };
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: res.statusMessage ?? '',
    headers: {
      get(name: string) {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    body: {
      getReader() {
        if (used) throw new TypeError('body already read');
        used = true;
        const it = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        return {
          async read() {
            const r = await it.next();
            return r.done
              ? { done: true }
              : { done: false, value: new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length) };
          },
          cancel() {
            res.destroy();
            return Promise.resolve();
          },
        };
      },
    },
    text: async () => (await readAll()).toString('utf8'),
    arrayBuffer: async () => {
      const b = await readAll();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
    },
  };
}
