/**
 * The local workstation server: serves the built browser app (packages/web/dist) and the case API
 * (/api/cases, case-api.ts, over the SQLite case store) on the loopback interface. Images are read and
 * processed in the browser; the server keeps the cases' documents (series references, plans, results).
 *
 * Hardening, because a local port is reachable by any web page the physician opens (README.md here):
 * - it binds to 127.0.0.1 by default; bound to any other interface it requires an access token
 *   (Authorization: Bearer, or a cookie set from `?token=`), compared in constant time;
 * - it answers only requests whose Host header names the address it listens on (a DNS rebinding page
 *   would send its own host name), and refuses any request whose Origin is not its own;
 * - bodies are limited (413 before reading a larger Content-Length, gzip inflated under the same limit),
 *   and slow clients are dropped (headersTimeout, requestTimeout, idle timeout);
 * - API names are checked on the raw path (no `..`, encoded or not); files are served only from the app
 *   folder (no `..`, no symlinks out) and only by GET/HEAD;
 * - every response carries a Content-Security-Policy that forbids loading anything from elsewhere.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { UsageError } from '@corridor/core';
import { DEFAULT_UPLOAD_BYTES, handleBlobApi } from './blob-api.js';
import { apiSegments, handleCaseApi, sendError } from './case-api.js';
import type { CaseStore } from './case-store.js';
import { HttpError } from './http-body.js';
import { PACS_PREFIX, handlePacsRequest } from './pacs-routes.js';
import { REPORT_ROUTE, handleReportRequest } from './report-route.js';

export interface ServerOptions {
  /** Folder with the built app (index.html, assets/). */
  webRoot: string;
  /** Interface to bind. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Called once per request with method, path and status (for a log line). */
  onRequest?: (method: string, urlPath: string, status: number) => void;
  /** The case store behind /api/cases (without one those routes answer 503). */
  store?: CaseStore;
  /**
   * Access token every request must carry (Authorization: Bearer TOKEN, or the cookie that `?token=TOKEN`
   * sets). Required when binding beyond loopback; optional on loopback.
   */
  token?: string;
  /** More Host names to answer to (besides loopback names and the bound address). */
  allowedHosts?: string[];
  limits?: Partial<ServerLimits>;
  /** DICOMweb root of the PACS that /api/pacs/dicom-web/ forwards to (server/pacs-routes.ts). */
  pacsUrl?: string;
}

export interface ServerLimits {
  /** Largest request body, bytes, also after gzip inflation. Default 16 MiB. */
  bodyBytes: number;
  /** Time to receive all request headers, ms. Default 10 s. */
  headersTimeoutMs: number;
  /** Time to receive the whole request, ms. Default 30 s. */
  requestTimeoutMs: number;
  /** An idle kept-alive connection is closed after this, ms. Default 5 s. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic either way is dropped after this, ms. Default 60 s. */
  idleTimeoutMs: number;
  /** Open connections at most. Default 256. */
  maxConnections: number;
  /** Largest blob (a series' image file, PUT /api/blobs/{sha256}), bytes. Default 2 GiB. */
  uploadBytes: number;
  /**
   * A blob upload gets requestTimeoutMs plus its size at this rate, bytes per second (default 1 MiB/s:
   * 2 GiB within about 35 minutes); every other request gets requestTimeoutMs.
   */
  uploadMinBytesPerSecond: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  bodyBytes: 16 * 2 ** 20,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxConnections: 256,
  uploadBytes: DEFAULT_UPLOAD_BYTES,
  uploadMinBytesPerSecond: 2 ** 20,
};

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

/** True for an address or name that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * True when a Host header names this server on a loopback name, the bound host, or one of `extra`
 * (lower-case names, IPv6 in brackets).
 */
export function hostAllowed(
  hostHeader: string | undefined,
  boundHost: string,
  port: number,
  extra: ReadonlySet<string> = new Set(),
): boolean {
  if (!hostHeader) return false;
  const h = hostHeader.toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[^:]+)(?::(\d+))?$/.exec(h);
  if (!m) return false;
  const name = m[1];
  const p = m[2] === undefined ? 80 : Number(m[2]);
  if (p !== port) return false;
  if (LOOPBACK_NAMES.has(name) || extra.has(name)) return true;
  const bound = boundHost.toLowerCase();
  return (name === bound || name === `[${bound}]`) && boundHost !== '0.0.0.0' && boundHost !== '::';
}

/** The names a server bound to a wildcard address answers to: this machine's addresses and host name. */
export function localHostNames(): string[] {
  const names = [os.hostname().toLowerCase()];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) names.push(a.family === 'IPv6' ? `[${a.address.toLowerCase()}]` : a.address);
  }
  return names;
}

/** A fresh access token: 32 random bytes, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison of a presented token with the expected one (hashed first: equal lengths). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The cookie that carries the token for the browser (per port: cookies ignore ports). */
export function tokenCookieName(port: number): string {
  return `corridor_token_${port}`;
}

function presentedToken(req: IncomingMessage, port: number): string | undefined {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const cookie = req.headers.cookie;
  if (cookie) {
    const name = tokenCookieName(port);
    for (const part of cookie.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return v.join('=');
    }
  }
  return undefined;
}

/**
 * True when the request may come from this server's own pages: no Origin (not a browser's cross-origin
 * request) or an Origin equal to http://HOST of the request, and no Sec-Fetch-Site naming another site.
 */
export function originAllowed(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  return host !== undefined && origin.toLowerCase() === `http://${host.toLowerCase()}`;
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
 * URL, `*`, a target starting with `//` or `/\` that a URL parser would read as a host name, or one with
 * a dot segment, backslash, NUL or encoded slash in it.
 */
export function parseTarget(target: string): URL | null {
  if (!target.startsWith('/') || /^[/\\]{2}/.test(target)) return null;
  // Dot segments (raw or encoded), backslashes and NUL are never in a link of the app (browsers resolve
  // dot segments before sending): refused here rather than normalised away.
  const q = target.search(/[?#]/);
  for (const raw of (q < 0 ? target : target.slice(0, q)).split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === '.' || seg === '..' || seg.includes('\\') || seg.includes('\0') || seg.includes('/')) return null;
  }
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
  store?: CaseStore;
  token?: string;
  allowedHosts?: ReadonlySet<string>;
  bodyLimit?: number;
  uploadLimit?: number;
  pacsUrl?: string;
}) {
  const bodyLimit = options.bodyLimit ?? DEFAULT_LIMITS.bodyBytes;
  const uploadLimit = options.uploadLimit ?? DEFAULT_LIMITS.uploadBytes;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    // Refusals before the body is read close the connection, so an unread body is never drained.
    const refuse = (status: number, text: string) => {
      res.setHeader('Connection', 'close');
      send(res, status, text);
      return options.onRequest?.(method, target, status);
    };
    // The Host check comes first, before anything reads the target, so a foreign page learns nothing.
    if (!hostAllowed(req.headers.host, options.host, options.port(), options.allowedHosts)) {
      return refuse(403, 'forbidden: this server answers only requests addressed to its own address\n');
    }
    if (!originAllowed(req)) {
      return refuse(403, 'forbidden: requests from pages of another origin are refused\n');
    }
    const url = parseTarget(target);
    if (!url)
      return refuse(
        400,
        'bad request: the request target must be a plain path (one leading /, no dot segments, backslashes or NUL)\n',
      );
    const done = (status: number) => options.onRequest?.(method, url.pathname, status);
    const isApi = target === '/api' || target.startsWith('/api/') || target.startsWith('/api?');
    if (options.token !== undefined && !tokenMatches(presentedToken(req, options.port()), options.token)) {
      const q = url.searchParams.get('token');
      if (!isApi && method === 'GET' && q !== null && tokenMatches(q, options.token)) {
        // The address printed at start: keep the token in an HttpOnly cookie and drop it from the URL.
        url.searchParams.delete('token');
        res.writeHead(303, {
          Location: url.pathname + url.search,
          'Set-Cookie': `${tokenCookieName(options.port())}=${options.token}; HttpOnly; SameSite=Strict; Path=/`,
          'Content-Length': '0',
          ...securityHeaders(),
        });
        res.end();
        return done(303);
      }
      res.setHeader('WWW-Authenticate', 'Bearer realm="corridor"');
      return refuse(401, 'unauthorized: this server needs its access token (Authorization: Bearer TOKEN)\n');
    }
    if (isApi) {
      let status: number;
      try {
        if (url.pathname === PACS_PREFIX || url.pathname.startsWith(PACS_PREFIX + '/')) {
          status = await handlePacsRequest(req, res, url, options.pacsUrl, securityHeaders());
        } else if (url.pathname === REPORT_ROUTE) {
          status = await handleReportRequest(req, res, securityHeaders());
        } else if (url.pathname === '/api/health') {
          if (method !== 'GET' && method !== 'HEAD') {
            throw new HttpError(405, 'method-not-allowed', 'method not allowed', {
              extra: { allow: 'GET, HEAD' },
              close: true,
            });
          }
          send(
            res,
            200,
            // `cases`: whether /api/cases has a store behind it (the workstation falls back to localStorage);
            // `pacs`: whether /api/pacs/dicom-web forwards to a PACS (the PACS panel stays off without one).
            JSON.stringify({
              schemaVersion: 1,
              ok: true,
              app: 'corridor',
              cases: !!options.store,
              pacs: !!options.pacsUrl,
              // The PACS's address (without any user:password), which a case names its series by.
              ...(options.pacsUrl ? { pacsUrl: publicUrl(options.pacsUrl) } : {}),
            }) + '\n',
            CONTENT_TYPES['.json'],
          );
          status = 200;
        } else if (url.pathname === '/api/blobs' || url.pathname.startsWith('/api/blobs/')) {
          status = await handleBlobApi(req, res, apiSegments(target), {
            store: options.store,
            uploadLimit,
            headers: securityHeaders,
          });
        } else {
          status = await handleCaseApi(req, res, apiSegments(target), {
            store: options.store,
            bodyLimit,
            headers: securityHeaders,
            pacsUrl: options.pacsUrl,
          });
        }
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        if (res.headersSent) {
          res.destroy();
        } else {
          sendError(
            req,
            res,
            err.status === 405 ? new HttpError(405, err.code, err.message, { extra: err.extra, close: true }) : err,
            securityHeaders(),
          );
        }
        status = err.status;
      }
      return done(status);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      res.setHeader('Connection', 'close');
      send(res, 405, 'method not allowed\n');
      return done(405);
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

/** A URL without its user and password. */
function publicUrl(u: string): string {
  try {
    const x = new URL(u);
    x.username = '';
    x.password = '';
    return x.toString();
  } catch {
    return '';
  }
}

/** The time a request may take to arrive: requestTimeoutMs, plus its size at the upload rate for a blob upload. */
export function requestDeadlineMs(req: IncomingMessage, limits: ServerLimits): number {
  const n = Number(req.headers['content-length'] ?? 0);
  const upload = req.method === 'PUT' && (req.url ?? '').startsWith('/api/blobs/') && Number.isFinite(n) && n > 0;
  const extra = upload ? (Math.min(n, limits.uploadBytes) / limits.uploadMinBytesPerSecond) * 1000 : 0;
  return limits.requestTimeoutMs + extra;
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
  if (!isLoopbackHost(host) && !options.token) {
    throw new UsageError(
      'binding beyond the loopback interface needs an access token (`corridor start` generates one and shows it)',
      host,
    );
  }
  if (options.token !== undefined && options.token.length < 16) {
    throw new UsageError('the access token must be at least 16 characters', '--token');
  }
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const allowed = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));
  if (host === '0.0.0.0' || host === '::') for (const n of localHostNames()) allowed.add(n);
  let boundPort = port;
  const handler = createHandler({
    webRoot: options.webRoot,
    host,
    port: () => boundPort,
    onRequest: options.onRequest,
    store: options.store,
    token: options.token,
    allowedHosts: allowed,
    bodyLimit: limits.bodyBytes,
    uploadLimit: limits.uploadBytes,
    pacsUrl: options.pacsUrl,
  });
  const server = createHttpServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      // The time for a whole request is kept per request below (a blob upload gets longer); Node's own
      // would cut every request at one limit.
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above at this interval (30 s by default: too coarse for short limits).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      const timer = setTimeout(
        () => {
          if (req.complete) return;
          if (!res.headersSent) {
            res.setHeader('Connection', 'close');
            send(res, 408, 'request timeout: the request took too long to arrive\n');
          }
          req.socket.destroy();
        },
        requestDeadlineMs(req, limits),
      );
      timer.unref();
      const clear = () => clearTimeout(timer);
      req.once('end', clear);
      res.once('close', clear);
      handler(req, res).catch((err: unknown) => {
        // A failure while serving a file is reported to the client and the log, never dropped.
        if (!res.headersSent) send(res, 500, `server error: ${err instanceof Error ? err.message : String(err)}\n`);
        else res.destroy(err instanceof Error ? err : undefined);
        options.onRequest?.(req.method ?? 'GET', req.url ?? '', 500);
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
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
