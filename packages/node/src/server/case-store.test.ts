import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaseStore, CaseStoreError, etagOf, isValidName } from './case-store.js';
import { openDatabase } from './sqlite.js';

const sha = (t: string) => createHash('sha256').update(Buffer.from(t, 'utf8')).digest('hex');

describe('CaseStore', () => {
  let dir: string;
  let file: string;
  let store: CaseStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-store-'));
    file = path.join(dir, 'sub', 'cases.sqlite');
    store = CaseStore.open(file);
  });
  afterEach(async () => {
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs in WAL mode with synchronous=FULL', () => {
    // SQLite reports synchronous as a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    expect(store.settings()).toEqual({ journalMode: 'wal', synchronous: 2 });
  });

  it('keeps every revision with its checksum and its parent, across a reopen', () => {
    store.createCase('c1', '{"title":"Pelvis"}', 'Pelvis');
    const bodies = ['{"a":1}', '{"a":2,"é":"ü"}', '{"a":3}'];
    let h = store.save('c1', 'registrations', 'r', bodies[0], { create: true });
    expect(h.revision).toBe(1);
    for (const b of bodies.slice(1)) h = store.save('c1', 'registrations', 'r', b, { ifMatch: [h.etag] });
    store.close();
    store = CaseStore.open(file);
    const hist = store.history('c1', 'registrations', 'r');
    expect(hist.map((r) => r.revision)).toEqual([1, 2, 3]);
    expect(hist.map((r) => r.sha256)).toEqual(bodies.map(sha));
    expect(hist.map((r) => r.parentSha256)).toEqual([null, sha(bodies[0]), sha(bodies[1])]);
    expect(hist[1].bytes).toBe(Buffer.byteLength(bodies[1]));
    expect(store.read('c1', 'registrations', 'r', 2)?.body).toBe(bodies[1]);
    expect(store.read('c1', 'registrations', 'r')?.head.etag).toBe(etagOf(3, sha(bodies[2])));
    expect(store.getCase('c1')?.title).toBe('Pelvis');
    expect(store.listCases().map((c) => [c.id, c.documents])).toEqual([['c1', 1]]);
    expect(store.check()).toEqual([]);
  });

  it('refuses a stale revision, a second create, and a missing case, with the current head', () => {
    store.createCase('c1', '{}', null);
    const h1 = store.save('c1', 'plans', 'p', '{"v":1}', { create: true });
    const h2 = store.save('c1', 'plans', 'p', '{"v":2}', { ifMatch: [h1.etag] });
    const stale = (() => {
      try {
        store.save('c1', 'plans', 'p', '{"v":3}', { ifMatch: [h1.etag] });
      } catch (e) {
        return e;
      }
    })();
    expect(stale).toBeInstanceOf(CaseStoreError);
    expect((stale as CaseStoreError).code).toBe('stale');
    expect((stale as CaseStoreError).current?.etag).toBe(h2.etag);
    expect(() => store.save('c1', 'plans', 'p', '{}', { create: true })).toThrow(/exists already/);
    expect(() => store.save('nope', 'plans', 'p', '{}', { create: true })).toThrow(/no such case/);
    expect(() => store.save('c1', 'plans', 'q', '{}', { ifMatch: [h1.etag] })).toThrow(/no such document/);
    expect(() => store.createCase('c1', '{}', null)).toThrow(/exists/);
    expect(store.history('c1', 'plans', 'p')).toHaveLength(2);
  });

  it('check() finds a body changed behind its back and a broken chain', () => {
    store.createCase('c1', '{}', null);
    const h = store.save('c1', 'cement', 'L5', '{"v":1}', { create: true });
    store.save('c1', 'cement', 'L5', '{"v":2}', { ifMatch: [h.etag] });
    expect(store.check()).toEqual([]);
    const db = openDatabase(file);
    db.prepare("UPDATE revisions SET body = '{\"v\":9}' WHERE name = 'L5' AND revision = 1").run();
    expect(store.check()).toEqual(['c1/cement/L5: revision 1 does not match its checksum']);
    expect(() => store.read('c1', 'cement', 'L5', 1)).toThrow(/checksum/);
    db.prepare("UPDATE revisions SET body = '{\"v\":1}', parent_sha256 = 'x' WHERE name = 'L5' AND revision = 1").run();
    expect(store.check()).toEqual(['c1/cement/L5: revision 1 names the wrong parent']);
    db.prepare("DELETE FROM revisions WHERE name = 'L5' AND revision = 2").run();
    db.close();
    expect(store.check()).toEqual([
      'c1/cement/L5: revision 1 names the wrong parent',
      'c1/cement/L5: head is revision 2, last is 1',
      "c1/cement/L5: head checksum differs from the last revision's",
    ]);
  });

  it('names the file when it cannot be opened, or is not a database', async () => {
    expect(() => CaseStore.open(dir)).toThrow(CaseStoreError);
    expect(() => CaseStore.open(dir)).toThrow(dir);
    const junk = path.join(dir, 'junk.sqlite');
    await writeFile(junk, 'this is not a database, just text that is long enough to look like a header'.repeat(100));
    expect(() => CaseStore.open(junk)).toThrow(/junk\.sqlite: cannot open the case store/);
  });

  it('accepts only plain names', () => {
    for (const ok of ['a', 'S1', 'plan-1', 'v1.2', 'a_b']) expect(isValidName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '.a', 'a.', 'a..b', 'a/b', 'a\\b', 'a\0', 'a%2e', 'é', 'a b', 'x'.repeat(65)]) {
      expect(isValidName(bad), bad).toBe(false);
    }
    expect(() => store.createCase('../x', '{}', null)).toThrow(/invalid case id/);
  });
});
