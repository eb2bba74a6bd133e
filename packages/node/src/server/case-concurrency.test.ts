/**
 * 20 clients each make 50 edits of one plan with the revision they read (issue 19): exactly one winner per
 * revision, the others 409 (with the winner's document to build on), a missing If-Match 428, the revision
 * count equal to the successes, and along the history every revision advancing exactly the winner's edit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CaseStore } from './case-store.js';
import { startServer, type RunningServer } from './server.js';
import { http, json } from '../test-helpers/http.js';
import { planText, stopServed } from '../test-helpers/case-fixtures.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let dir: string;
let webRoot: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-case-conc-'));
  webRoot = path.join(dir, 'web');
  await mkdir(webRoot, { recursive: true });
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html>');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function serve(): Promise<{ srv: RunningServer; store: CaseStore }> {
  const store = CaseStore.open(path.join(dir, 'cases.sqlite'));
  return { srv: await startServer({ webRoot, port: 0, store }), store };
}

describe('20 clients, 50 edits each, of one plan', () => {
  it('one winner per revision, the rest 409, missing If-Match 428, no edit lost', async () => {
    const s = await serve();
    const port = s.srv.port;
    try {
      const CLIENTS = 20,
        EDITS = 50;
      await http(port, { method: 'POST', path: '/api/cases', body: '{"id":"conc"}' });
      const initial = planText(
        Array.from({ length: CLIENTS }, (_, i) => ({ id: `c${i}`, name: `c${i} edit 0`, x: i })),
      );
      const url = '/api/cases/conc/plans/shared';
      expect(
        (await http(port, { method: 'PUT', path: url, headers: { 'if-none-match': '*' }, body: initial })).status,
      ).toBe(201);

      const wins: { revision: number; client: number; edit: number }[] = [];
      let conflicts = 0,
        missing = 0,
        other = 0;
      const client = async (i: number) => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        type Doc = { paths: { id: string; name: string; entry: number[] }[] };
        try {
          // Read once; after that every answer carries the revision to build on: ours when we win, the
          // winner's (with its document) in a 409.
          const first = await http(port, { path: url, agent });
          let doc = JSON.parse(first.body) as Doc;
          let etag = String(first.headers.etag);
          for (let k = 1; k <= EDITS; k++) {
            let sentWithout = false;
            let lost = 0;
            for (;;) {
              const mine = doc.paths.find((p) => p.id === `c${i}`);
              if (!mine) throw new Error(`path c${i} lost`);
              mine.name = `c${i} edit ${k}`;
              mine.entry[0] += 0.5;
              const body = JSON.stringify(doc);
              if (k % 10 === 0 && i % 4 === 0 && !sentWithout) {
                sentWithout = true;
                const m = await http(port, { method: 'PUT', path: url, body, agent });
                if (m.status === 428) missing++;
                else other++;
              }
              const w = await http(port, { method: 'PUT', path: url, headers: { 'if-match': etag }, body, agent });
              if (w.status === 200) {
                wins.push({ revision: json<{ revision: number }>(w).revision, client: i, edit: k });
                etag = String(w.headers.etag);
                break;
              }
              if (w.status !== 409) {
                other++;
                throw new Error(`unexpected ${w.status}: ${w.body}`);
              }
              conflicts++;
              lost++;
              // Back off, exponentially with jitter after each loss in a row, as a polite client would.
              await sleep(Math.random() * Math.min(2 ** lost, 40));
              const cur = json<{ error: { current: { etag: string; document: Doc } } }>(w).error.current;
              expect(cur.etag).not.toBe(etag);
              expect(w.headers.etag).toBe(cur.etag);
              etag = cur.etag;
              doc = cur.document;
            }
          }
        } finally {
          agent.destroy();
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
      const ms = performance.now() - t0;
      console.log(
        `concurrency: ${wins.length} saves, ${conflicts} conflicts (409), ${missing} missing If-Match (428) in ${ms.toFixed(0)} ms`,
      );
      expect(other).toBe(0);
      expect(wins).toHaveLength(CLIENTS * EDITS);
      expect(missing).toBe((CLIENTS / 4) * (EDITS / 10));
      expect(conflicts).toBeGreaterThan(0);
      // Exactly one winner per revision: revisions 2..1001, each once.
      expect(wins.map((w) => w.revision).sort((a, b) => a - b)).toEqual(
        Array.from({ length: CLIENTS * EDITS }, (_, j) => j + 2),
      );
      const hist = json<{ revisions: { revision: number }[] }>(await http(port, { path: `${url}/revisions` }));
      expect(hist.revisions).toHaveLength(1 + wins.length);
      // No update lost: along the history each revision advances exactly one client's path by one edit,
      // the client the server said won that revision.
      const byRev = new Map(wins.map((w) => [w.revision, w]));
      const names = (b: string) => (JSON.parse(b) as { paths: { name: string }[] }).paths.map((p) => p.name);
      let prev = names(initial);
      const revs = s.store.history('conc', 'plans', 'shared');
      for (const r of revs.slice(1)) {
        const cur = names(s.store.read('conc', 'plans', 'shared', r.revision)?.body ?? '');
        const changed = cur.flatMap((n, j) => (n !== prev[j] ? [j] : []));
        const w = byRev.get(r.revision);
        expect(changed, `revision ${r.revision}`).toEqual([w?.client]);
        expect(cur[w?.client ?? -1]).toBe(`c${w?.client} edit ${w?.edit}`);
        expect(prev[w?.client ?? -1]).toBe(`c${w?.client} edit ${(w?.edit ?? 0) - 1}`);
        prev = cur;
      }
      expect(prev).toEqual(Array.from({ length: CLIENTS }, (_, i) => `c${i} edit ${EDITS}`));
      expect(s.store.check()).toEqual([]);
    } finally {
      await stopServed(s);
    }
  });
});
