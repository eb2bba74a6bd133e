/**
 * Case store benchmarks (issue 19): the case server in this process on a fresh SQLite file (WAL,
 * synchronous=FULL: every acknowledged save is on disk), driven over HTTP on loopback.
 * - saves per second with 20 concurrent clients, each saving its own plan with If-Match (the commits of
 *   one event-loop turn share one fsync);
 * - the p50 and p99 latency of a plan save under that load (request sent to response read);
 * - one client saving alone, for comparison: bounded by one fsync per save on this disk.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CaseStore } from '../server/case-store.js';
import { startServer } from '../server/server.js';
import type { BenchRow } from './types.js';

function put(
  port: number,
  urlPath: string,
  body: string,
  headers: Record<string, string>,
  agent: Agent,
): Promise<{ status: number; etag: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'PUT',
        agent,
        headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: String(res.headers.etag) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A plan like the workstation saves: four paths with their map settings (~1 KB). */
function planText(edit: number): string {
  const paths = ['s1', 's2', 'alar-left', 'alar-right'].map((id, i) => ({
    id,
    name: `${id} (edit ${edit})`,
    kind: 'screw',
    diameterMm: 7.3,
    entry: [-80 + i * 10 + edit * 0.01, 20.5, -310.25],
    target: [60 - i * 10, 25.5, -305.75],
    marginMm: 1,
    map: { source: 'intensity', boneMask: 'demineralized', cropAround: [[0, 20, -300]] },
  }));
  return JSON.stringify({
    schemaVersion: 1,
    volume: {
      file: 'ct.nii.gz',
      indexToPatient: [
        [0.8, 0, 0, -200],
        [0, 0.8, 0, -180],
        [0, 0, 1, -400],
        [0, 0, 0, 1],
      ],
    },
    paths,
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function benchStore(): Promise<BenchRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-store-'));
  const web = path.join(dir, 'web');
  await mkdir(web);
  await writeFile(path.join(web, 'index.html'), '<!doctype html>');
  const store = CaseStore.open(path.join(dir, 'cases.sqlite'));
  const srv = await startServer({ webRoot: web, port: 0, store });
  const port = srv.port;
  const CLIENTS = 20,
    SAVES = 100;
  try {
    store.createCase('bench', '{"title":"bench"}', 'bench');
    const client = async (i: number, saves: number, lat: number[]) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const url = `/api/cases/bench/plans/p${i}`;
      let r = await put(port, url, planText(0), { 'if-none-match': '*' }, agent);
      for (let k = 1; k <= saves; k++) {
        const t = performance.now();
        r = await put(port, url, planText(k), { 'if-match': r.etag }, agent);
        lat.push(performance.now() - t);
        if (r.status !== 200) throw new Error(`save ${k} of ${url} answered ${r.status}`);
      }
      agent.destroy();
    };
    // One client alone first.
    const alone: number[] = [];
    const ta = performance.now();
    await client(99, SAVES, alone);
    const aloneS = (performance.now() - ta) / 1000;
    // Then 20 at once.
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i, SAVES, lat)));
    const s = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    alone.sort((a, b) => a - b);
    const problems = store.check();
    if (problems.length) throw new Error(`the store does not check out after the benchmark: ${problems.join('; ')}`);
    const note = `${CLIENTS} clients x ${SAVES} saves of their own plan (~${(planText(1).length / 1024).toFixed(1)} KB), If-Match, WAL + synchronous=FULL`;
    return [
      {
        name: 'plan saves per second, 20 concurrent clients',
        value: (CLIENTS * SAVES) / s,
        unit: 'saves/s',
        notes: note,
      },
      { name: 'plan save latency p99, 20 concurrent clients', value: percentile(lat, 99), unit: 'ms', notes: note },
      { name: 'plan save latency p50, 20 concurrent clients', value: percentile(lat, 50), unit: 'ms', notes: note },
      {
        name: 'plan saves per second, one client',
        value: SAVES / aloneS,
        unit: 'saves/s',
        notes: `one save at a time: one fsync each (p99 ${percentile(alone, 99).toFixed(1)} ms)`,
      },
    ];
  } finally {
    await srv.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
