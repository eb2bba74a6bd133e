/**
 * SIGKILL of the case server during a burst of saves, 200 times (issue 19): after every restart each
 * acknowledged save is there with the checksum of the text the client sent, each document's history is
 * a complete chain (1..head, each revision naming its parent's checksum, each body matching its own),
 * SQLite's integrity check passes, and any revision beyond the acknowledged ones is exactly a save that
 * was in flight when the server died, never a part of one. CORRIDOR_KILL_RUNS changes the count.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleForNode } from '../test-helpers/bundle.js';
import { http, json } from '../test-helpers/http.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env.CORRIDOR_KILL_RUNS ?? 200);
const sha = (t: string) => createHash('sha256').update(Buffer.from(t, 'utf8')).digest('hex');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface State {
  problems: string[];
  settings: { journalMode: string; synchronous: number };
  docs: Record<string, [number, string, string | null][]>;
}

let dir: string;
let childJs: string;
let webRoot: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-case-kill-'));
  await bundleForNode(path.join(here, '../test-helpers/case-server-child.ts'), path.join(dir, 'child.mjs'), {
    pureCore: true,
  });
  // Started 200 times: V8's compile cache (Node 22.1+) keeps the bundle's compiled code from the first start
  // (flushed once it listens, since a killed child never writes it at exit), about 30 ms of CPU a start.
  childJs = path.join(dir, 'start.mjs');
  await writeFile(
    childJs,
    `import m from 'node:module';\nm.enableCompileCache?.(${JSON.stringify(path.join(dir, 'compile-cache'))});\n` +
      `await import('./child.mjs');\nm.flushCompileCache?.();\n`,
  );
  webRoot = path.join(dir, 'web');
  await mkdir(webRoot, { recursive: true });
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html>');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Start a server child; resolves once it printed its state and listens. */
function startChild(db: string): Promise<{ child: ChildProcessWithoutNullStreams; state: State; port: number }> {
  const child = spawn(process.execPath, [childJs, db, webRoot], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '',
      err = '';
    let state: State | undefined;
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      // Whole lines only: the state comes in 64 KiB pieces.
      const s = /^STATE (.*)\n/m.exec(out);
      if (s && !state) state = JSON.parse(s[1]) as State;
      const l = /^LISTEN (\d+)\n/m.exec(out);
      if (l && state) resolve({ child, state, port: Number(l[1]) });
    });
    child.on('exit', (code) => reject(new Error(`server child exited (${code}) before listening: ${err}`)));
  });
}

/** What the clients sent for one document: acknowledged texts by revision, and texts whose fate is unknown. */
interface Ledger {
  acked: Map<number, string>;
  pending: Map<number, Set<string>>;
  /** The revision and ETag the next save builds on (0 and '' before the document exists). */
  revision: number;
  etag: string;
}

interface ChainStats {
  acks: number;
  inFlightKept: number;
  inFlightLost: number;
  conflicts: number;
}

/** `runs` kill-and-restart cycles of one server on one store, checking the store after each. */
async function killChain(db: string, runs: number): Promise<ChainStats> {
  const docUrls = [
    ...Array.from({ length: 5 }, (_, j) => `/api/cases/k/registrations/d${j}`),
    '/api/cases/k/verifications/shared', // two clients on this one: conflicts under the kills too
  ];
  const key = (u: string) => u.replace('/api/cases/', '');
  const ledgers = new Map<string, Ledger>(
    docUrls.map((u) => [key(u), { acked: new Map(), pending: new Map(), revision: 0, etag: '' }]),
  );
  let acks = 0,
    inFlightKept = 0,
    inFlightLost = 0,
    conflicts = 0,
    seq = 0;

  const verify = (state: State) => {
    expect(state.problems).toEqual([]);
    expect(state.settings).toEqual({ journalMode: 'wal', synchronous: 2 });
    for (const [k, L] of ledgers) {
      const revs = state.docs[k] ?? [];
      const stored = new Map(revs.map(([r, s]) => [r, s]));
      for (const [r, s] of L.acked) expect(stored.get(r), `${k} revision ${r} (acknowledged)`).toBe(s);
      for (const [r, s] of stored) {
        if (L.acked.has(r)) continue;
        // Not acknowledged, yet committed: it must be one of the texts in flight for that revision.
        expect(L.pending.get(r)?.has(s), `${k} revision ${r} is a text a client sent`).toBe(true);
        L.acked.set(r, s);
        inFlightKept++;
      }
      const head = revs.length ? revs[revs.length - 1] : undefined;
      for (const r of L.pending.keys()) if (!stored.has(r)) inFlightLost++;
      L.pending.clear();
      L.revision = head ? head[0] : 0;
      L.etag = head ? `"${head[0]}:${head[1].slice(0, 16)}"` : '';
    }
  };

  let { child, state, port } = await startChild(db);
  expect(state.docs).toEqual({});
  const made = await http(port, { method: 'POST', path: '/api/cases', body: '{"id":"k","title":"kill test"}' });
  expect(made.status).toBe(201);

  for (let run = 0; run < runs; run++) {
    let dead = false;
    let acked: () => void = () => {};
    const firstAck = new Promise<void>((r) => (acked = r));
    const agents: Agent[] = [];
    const client = async (url: string) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      const L = ledgers.get(key(url));
      if (!L) throw new Error(url);
      while (!dead) {
        const body = JSON.stringify({ schemaVersion: 1, run, seq: seq++, pad: 'x'.repeat(seq % 200) });
        const rev = L.revision + 1;
        const pend = L.pending.get(rev) ?? new Set<string>();
        pend.add(sha(body));
        L.pending.set(rev, pend);
        let r;
        try {
          r = await http(port, {
            method: 'PUT',
            path: url,
            headers: L.revision ? { 'if-match': L.etag } : { 'if-none-match': '*' },
            body,
            agent,
          });
        } catch {
          return; // the server died under this save: its fate is read after the restart
        }
        if (r.status === 200 || r.status === 201) {
          const h = json<{ revision: number; sha256: string; etag: string }>(r);
          expect(h.revision).toBe(rev);
          expect(h.sha256).toBe(sha(body));
          L.acked.set(rev, h.sha256);
          pend.delete(h.sha256);
          L.revision = rev;
          L.etag = h.etag;
          acks++;
          acked();
        } else if (r.status === 409) {
          conflicts++;
          pend.delete(sha(body));
          const cur = json<{ error: { current: { revision: number; etag: string } } }>(r).error.current;
          if (cur.revision > L.revision) {
            L.revision = cur.revision;
            L.etag = cur.etag;
          }
        } else throw new Error(`unexpected ${r.status}: ${r.body}`);
      }
    };
    const burst = Promise.all([...docUrls.map((u) => client(u)), client(docUrls[docUrls.length - 1])]);
    // Kill once the burst is under way (its first save acknowledged), a random moment later.
    await Promise.race([firstAck, sleep(300)]);
    await sleep(Math.random() * 15);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    dead = true;
    await burst;
    for (const a of agents) a.destroy();
    ({ child, state, port } = await startChild(db));
    verify(state);
  }
  child.kill('SIGKILL');
  return { acks, inFlightKept, inFlightLost, conflicts };
}

describe('SIGKILL during a burst of saves', () => {
  it(`${RUNS} kills: every acknowledged save intact after restart, histories whole, nothing torn`, async () => {
    // Two stores, each with its own server killed in turn, half the kills each (both cores busy).
    const t0 = performance.now();
    const half = Math.ceil(RUNS / 2);
    const stats = await Promise.all([
      killChain(path.join(dir, 'a', 'cases.sqlite'), half),
      killChain(path.join(dir, 'b', 'cases.sqlite'), RUNS - half),
    ]);
    const sum = (k: keyof ChainStats) => stats.reduce((a, x) => a + x[k], 0);
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `kill test: ${RUNS} kills in ${s} s, ${sum('acks')} acknowledged saves all intact, ${sum('inFlightKept')} ` +
        `in-flight saves committed, ${sum('inFlightLost')} in flight and not committed, ${sum('conflicts')} conflicts (409)`,
    );
    for (const x of stats) expect(x.acks).toBeGreaterThan(RUNS / 2); // the kills hit bursts, not idle servers
  });
});
