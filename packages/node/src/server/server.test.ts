import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, symlink, rm, utimes } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CONTENT_SECURITY_POLICY, hostAllowed, startServer, type RunningServer } from './server.js';
import { webBuildState } from './build.js';
import { resolvePort } from '../cli/start.js';

/** A raw GET with a chosen Host header (fetch does not let us set Host). */
function get(
  port: number,
  urlPath: string,
  host = `127.0.0.1:${port}`,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, method, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('workstation server', () => {
  let dir: string;
  let root: string;
  let srv: RunningServer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-server-'));
    root = path.join(dir, 'dist');
    await mkdir(path.join(root, 'assets'), { recursive: true });
    await writeFile(path.join(root, 'index.html'), '<!doctype html><title>app</title>');
    await writeFile(path.join(root, 'assets', 'main-abc.js'), 'console.log(1)');
    await writeFile(path.join(dir, 'secret.txt'), 'patient data');
    await symlink(path.join(dir, 'secret.txt'), path.join(root, 'link.txt'));
    srv = await startServer({ webRoot: root, port: 0 });
  });

  afterAll(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on the loopback address and says so in its URL', () => {
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}/`);
    expect(srv.port).toBeGreaterThan(0);
  });

  it('serves index.html at / with the CSP that forbids other origins', async () => {
    const r = await get(srv.port, '/');
    expect(r.status).toBe(200);
    expect(r.body).toBe('<!doctype html><title>app</title>');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'self'");
    expect(r.headers['cache-control']).toBe('no-cache');
  });

  it('serves hashed assets as immutable JavaScript', async () => {
    const r = await get(srv.port, '/assets/main-abc.js');
    expect(r.status).toBe(200);
    expect(r.body).toBe('console.log(1)');
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['cache-control']).toContain('immutable');
  });

  it('refuses paths outside the app folder, encoded or through a symlink', async () => {
    for (const p of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/link.txt',
      '/%00',
      '/%E0%A4%A',
    ]) {
      const r = await get(srv.port, p);
      // Dot segments and malformed escapes are refused as bad requests; the symlink is not found.
      expect(r.status, p).toBe(p === '/link.txt' ? 404 : 400);
      expect(r.body).not.toContain('patient data');
    }
  });

  it('refuses requests addressed to another host name (DNS rebinding)', async () => {
    const r = await get(srv.port, '/', `evil.example:${srv.port}`);
    expect(r.status).toBe(403);
    expect((await get(srv.port, '/', `localhost:${srv.port}`)).status).toBe(200);
  });

  it('answers 400 to targets a URL parser would read as a host, 403 first for a foreign Host', async () => {
    const logged: [string, number][] = [];
    const s2 = await startServer({ webRoot: root, port: 0, onRequest: (_m, p, status) => logged.push([p, status]) });
    try {
      for (const p of ['//..%2f..%2fetc/passwd', '//evil.example/index.html', '/\\..%2fsecret.txt', '//']) {
        const r = await get(s2.port, p);
        expect(r.status, p).toBe(400);
        expect(r.body, p).toMatch(/^bad request/);
        expect((await get(s2.port, p, `evil.example:${s2.port}`)).status, p).toBe(403);
      }
      expect(logged.some(([, status]) => status === 500)).toBe(false);
      expect(logged[0]).toEqual(['//..%2f..%2fetc/passwd', 400]);
    } finally {
      await s2.close();
    }
  });

  it('answers only GET and HEAD', async () => {
    expect((await get(srv.port, '/', undefined, 'POST')).status).toBe(405);
    const head = await get(srv.port, '/', undefined, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('reports health as JSON', async () => {
    const r = await get(srv.port, '/api/health');
    expect(JSON.parse(r.body)).toEqual({ schemaVersion: 1, ok: true, app: 'corridor', cases: false, pacs: false });
  });

  it('refuses to start without a build, and on a taken port, with a typed error', async () => {
    await expect(startServer({ webRoot: path.join(dir, 'nothing'), port: 0 })).rejects.toThrow(/not built/);
    await expect(startServer({ webRoot: root, port: srv.port })).rejects.toThrow(/already in use/);
  });
});

describe('hostAllowed', () => {
  it('accepts loopback names on the bound port only', () => {
    expect(hostAllowed('127.0.0.1:8080', '127.0.0.1', 8080)).toBe(true);
    expect(hostAllowed('localhost:8080', '127.0.0.1', 8080)).toBe(true);
    expect(hostAllowed('[::1]:8080', '::1', 8080)).toBe(true);
    expect(hostAllowed('127.0.0.1:8081', '127.0.0.1', 8080)).toBe(false);
    expect(hostAllowed('127.0.0.1', '127.0.0.1', 80)).toBe(true);
    expect(hostAllowed(undefined, '127.0.0.1', 8080)).toBe(false);
    expect(hostAllowed('attacker.test:8080', '0.0.0.0', 8080)).toBe(false);
  });
});

describe('resolvePort', () => {
  it('takes --port, then PORT, then 8080, and rejects non-numbers', () => {
    expect(resolvePort('9000', '7000')).toBe(9000);
    expect(resolvePort(undefined, '7000')).toBe(7000);
    expect(resolvePort(undefined, undefined)).toBe(8080);
    expect(resolvePort('0', undefined)).toBe(0);
    expect(() => resolvePort('80a', undefined)).toThrow(/--port/);
    expect(() => resolvePort(undefined, '70000')).toThrow(/PORT/);
  });
});

describe('webBuildState', () => {
  it('is stale when a source is newer than the build, fresh otherwise', async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 'corridor-build-'));
    const web = path.join(d, 'web');
    await mkdir(path.join(web, 'src'), { recursive: true });
    await mkdir(path.join(web, 'dist'), { recursive: true });
    await mkdir(path.join(d, 'core', 'src'), { recursive: true });
    await writeFile(path.join(web, 'src', 'main.ts'), 'x');
    await writeFile(path.join(d, 'core', 'src', 'a.ts'), 'x');
    expect((await webBuildState(web)).built).toBe(false);
    await writeFile(path.join(web, 'dist', 'index.html'), 'x');
    const t = Date.now() / 1000;
    for (const p of [
      path.join(web, 'src', 'main.ts'),
      path.join(web, 'src'),
      path.join(d, 'core', 'src', 'a.ts'),
      path.join(d, 'core', 'src'),
    ])
      await utimes(p, t - 100, t - 100);
    await utimes(path.join(web, 'dist', 'index.html'), t - 50, t - 50);
    const fresh = await webBuildState(web);
    expect(fresh.built).toBe(true);
    expect(fresh.fresh).toBe(true);
    // A core source edited after the build makes it stale: the app bundles core.
    await utimes(path.join(d, 'core', 'src', 'a.ts'), t, t);
    expect((await webBuildState(web)).fresh).toBe(false);
    await rm(d, { recursive: true, force: true });
  });
});
