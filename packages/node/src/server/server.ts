/**
 * The local workstation server: serves the built browser app (packages/web/dist) on the loopback
 * interface. Patient data never comes here: images are read and processed in the browser. The server
 * only serves files of the app itself, so the app works with no network at all.
 *
 * Hardening, because a local port is reachable by any web page the physician opens:
 * - it binds to 127.0.0.1 by default;
 * - it answers only requests whose Host header names the loopback address it listens on (a DNS
 *   rebinding page would send its own host name);
 * - it serves only files under the app folder (no `..`, no symlinks out) and only GET/HEAD;
 * - every response carries a Content-Security-Policy that forbids loading anything from elsewhere.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { UsageError } from '@corridor/core';
import { PACS_PREFIX, handlePacsRequest } from './pacs-routes.js';

export interface ServerOptions {
  /** Folder with the built app (index.html, assets/). */
  webRoot: string;
  /** Interface to bind. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Called once per request with method, path and status (for a log line). */
  onRequest?: (method: string, urlPath: string, status: number) => void;
  /** DICOMweb root of the PACS that /api/pacs/dicom-web/ forwards to (server/pacs-routes.ts). */
  pacsUrl?: string;
}

export interface RunningServer {
  server: Server;
  /** http://host:port/ the app is served on. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Nothing may be fetched from another origin: scripts, workers, WASM and data all come from this server
 * ('wasm-unsafe-eval' lets the DICOM codecs compile their WebAssembly; blob: carries worker-made images).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True when a Host header names this server on a loopback name (or, bound elsewhere, the bound host). */
export function hostAllowed(hostHeader: string | undefined, boundHost: string, port: number): boolean {
  if (!hostHeader) return false;
  const h = hostHeader.toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[^:]+)(?::(\d+))?$/.exec(h);
  if (!m) return false;
  const name = m[1];
  const p = m[2] === undefined ? 80 : Number(m[2]);
  if (p !== port) return false;
  if (LOOPBACK_NAMES.has(name)) return true;
  return name === boundHost.toLowerCase() && boundHost !== '0.0.0.0' && boundHost !== '::';
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...securityHeaders() });
  res.end(body);
}

function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

/**
 * The file under root that urlPath names, or null when it names none (outside root, missing, a folder
 * without index.html). Symlinks are resolved and must stay under root.
 */
export async function resolveStatic(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const rel = decoded.replace(/^\/+/, '');
  const realRoot = await realpath(root);
  let p = path.resolve(realRoot, rel);
  if (p !== realRoot && !p.startsWith(realRoot + path.sep)) return null;
  try {
    let s = await stat(p);
    if (s.isDirectory()) {
      p = path.join(p, 'index.html');
      s = await stat(p);
    }
    if (!s.isFile()) return null;
    const real = await realpath(p);
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
    return real;
  } catch {
    return null;
  }
}

/**
 * The URL of a request target in origin form (`/path?query`), or null for anything else: an absolute
 * URL, `*`, or a target starting with `//` or `/\` that a URL parser would read as a host name.
 */
export function parseTarget(target: string): URL | null {
  if (!target.startsWith('/') || /^[/\\]{2}/.test(target)) return null;
  try {
    const url = new URL(target, 'http://localhost');
    return url.host === 'localhost' ? url : null;
  } catch {
    return null;
  }
}

/** The request handler, separate from listening so tests can see what each request gets. */
export function createHandler(options: {
  webRoot: string;
  host: string;
  port: () => number;
  onRequest?: ServerOptions['onRequest'];
  pacsUrl?: string;
}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    // The Host check comes first, before anything reads the target, so a foreign page learns nothing.
    if (!hostAllowed(req.headers.host, options.host, options.port())) {
      send(res, 403, 'forbidden: this server answers only requests addressed to its loopback address\n');
      return options.onRequest?.(method, target, 403);
    }
    const url = parseTarget(target);
    if (!url) {
      send(res, 400, 'bad request: the request target must be a path starting with a single /\n');
      return options.onRequest?.(method, target, 400);
    }
    const done = (status: number) => options.onRequest?.(method, url.pathname, status);
    if (url.pathname === PACS_PREFIX || url.pathname.startsWith(PACS_PREFIX + '/'))
      return done(await handlePacsRequest(req, res, url, options.pacsUrl, securityHeaders()));
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return done(405);
    }
    if (url.pathname === '/api/health') {
      send(res, 200, JSON.stringify({ schemaVersion: 1, ok: true, app: 'corridor' }) + '\n', CONTENT_TYPES['.json']);
      return done(200);
    }
    const file = await resolveStatic(options.webRoot, url.pathname);
    if (!file) {
      send(res, 404, `not found: ${url.pathname}\n`);
      return done(404);
    }
    const s = await stat(file);
    const ext = path.extname(file).toLowerCase();
    // Hashed build assets never change; index.html must be re-read so a rebuild is picked up.
    const immutable = url.pathname.startsWith('/assets/');
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
      'Content-Length': s.size,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...securityHeaders(),
    });
    if (method === 'HEAD') {
      res.end();
      return done(200);
    }
    await new Promise<void>((resolve, reject) => {
      const stream = createReadStream(file);
      stream.on('error', reject);
      stream.on('end', resolve);
      stream.pipe(res);
    });
    done(200);
  };
}

/** Start serving the app; resolves once listening. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`port ${port} is not 0-65535`);
  try {
    const s = await stat(path.join(options.webRoot, 'index.html'));
    if (!s.isFile()) throw new Error('not a file');
  } catch {
    throw new UsageError(
      'the web app is not built (no index.html); run `corridor start` without --no-build',
      options.webRoot,
    );
  }
  let boundPort = port;
  const handler = createHandler({
    webRoot: options.webRoot,
    host,
    port: () => boundPort,
    onRequest: options.onRequest,
    pacsUrl: options.pacsUrl,
  });
  const server = createHttpServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      // A failure while serving a file is reported to the client and the log, never dropped.
      if (!res.headersSent) send(res, 500, `server error: ${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy(err instanceof Error ? err : undefined);
      options.onRequest?.(req.method ?? 'GET', req.url ?? '', 500);
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new UsageError(`port ${port} is already in use (set PORT or --port to another)`, `${host}:${port}`)
          : err,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  boundPort = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port: boundPort,
    url: `http://${urlHost}:${boundPort}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
