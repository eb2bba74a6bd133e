/**
 * The case store: one SQLite database file (node:sqlite) holding every case of this workstation.
 *
 * A case holds named documents of a few kinds: its series (files on disk or references into a PACS), plans,
 * registrations, verification and cement results, and its own metadata (kind 'case', name 'case'). Every
 * save of a document is a new revision; no revision is ever changed or removed. Each revision keeps its
 * JSON text, the SHA-256 of that text (UTF-8) and the SHA-256 of the revision before it, so the history
 * of a document is a chain that `check()` verifies end to end.
 *
 * Durability: write-ahead log (journal_mode=WAL) with synchronous=FULL, so a save returns only after its
 * commit is in the log on disk; a process killed at any moment (or the machine losing power, on a disk
 * that honours fsync) loses nothing that was acknowledged, and a half-done transaction is never visible.
 *
 * Concurrency: a save names the revision it was made on (its ETag); the store compares it with the
 * current one inside the write transaction and refuses a stale one (code 'stale'), so two editors of one
 * document can never overwrite each other silently.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CorridorError } from '@corridor/core';
import { BlobStore } from './blob-store.js';
import { openDatabase, type DatabaseSync, type SqlValue, type StatementSync } from './sqlite.js';

/** The kinds of documents a case holds (the URL segment names them). */
export const DOCUMENT_KINDS = ['series', 'plans', 'registrations', 'verifications', 'cement'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];
/** The case's own metadata document lives under this kind and name. */
export const CASE_KIND = 'case';
export const CASE_DOC = 'case';
type AnyKind = DocumentKind | typeof CASE_KIND;

/**
 * A case id or document name: ASCII letters, digits, '_' and '-', in parts joined by single dots, 1-64
 * characters. No '/', '\\', '%', NUL, leading dot or '..' can be part of one.
 */
export const NAME_RE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
export const MAX_NAME_LENGTH = 64;

export function isValidName(s: string): boolean {
  return s.length >= 1 && s.length <= MAX_NAME_LENGTH && NAME_RE.test(s);
}

export function isDocumentKind(s: string): s is DocumentKind {
  return (DOCUMENT_KINDS as readonly string[]).includes(s);
}

/** 'io': the file cannot be opened or its folder made; 'corrupt': it is not a case store in good order. */
export type CaseStoreErrorCode = 'not-found' | 'exists' | 'stale' | 'invalid' | 'corrupt' | 'io';

/** A refused store operation; `current` is the document's head when the refusal was about its revision. */
export class CaseStoreError extends CorridorError {
  override readonly name: string = 'CaseStoreError';
  readonly code: CaseStoreErrorCode;
  readonly current: DocumentHead | undefined;
  constructor(message: string, source: string, code: CaseStoreErrorCode, current?: DocumentHead) {
    super(message, source);
    this.code = code;
    this.current = current;
  }
}

export interface DocumentHead {
  caseId: string;
  kind: string;
  name: string;
  revision: number;
  sha256: string;
  updatedAt: string;
  /** The strong entity tag of this revision: `"<revision>:<first 16 hex digits of sha256>"`. */
  etag: string;
}

export interface RevisionInfo {
  revision: number;
  sha256: string;
  /** SHA-256 of the revision before (null for revision 1). */
  parentSha256: string | null;
  createdAt: string;
  bytes: number;
  etag: string;
}

export interface CaseSummary {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
  documents: number;
}

export interface CaseDetail extends CaseSummary {
  /** The head of the case's metadata document (its ETag guards updates of the metadata). */
  meta: DocumentHead;
  documentsByKind: Record<DocumentKind, DocumentHead[]>;
}

/** What a save expects: the ETags it was made on (If-Match), or that the document does not exist yet. */
export type SaveExpectation = { ifMatch: string[] } | { create: true };

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function etagOf(revision: number, sha256: string): string {
  return `"${revision}:${sha256.slice(0, 16)}"`;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS cases (
  id TEXT PRIMARY KEY,
  title TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS documents (
  case_id TEXT NOT NULL REFERENCES cases(id),
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  revision INTEGER NOT NULL CHECK (revision >= 1),
  sha256 TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (case_id, kind, name)
) STRICT;
CREATE TABLE IF NOT EXISTS revisions (
  case_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  revision INTEGER NOT NULL CHECK (revision >= 1),
  body TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  parent_sha256 TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (case_id, kind, name, revision),
  FOREIGN KEY (case_id, kind, name) REFERENCES documents(case_id, kind, name)
) STRICT;
`;

function str(v: SqlValue | undefined): string {
  if (typeof v !== 'string') throw new Error(`expected a text column, got ${typeof v}`);
  return v;
}
function num(v: SqlValue | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`expected an integer column, got ${typeof v}`);
}

function headOf(r: Record<string, SqlValue>): DocumentHead {
  const revision = num(r.revision);
  const sha = str(r.sha256);
  return {
    caseId: str(r.case_id),
    kind: str(r.kind),
    name: str(r.name),
    revision,
    sha256: sha,
    updatedAt: str(r.updated_at),
    etag: etagOf(revision, sha),
  };
}

export class CaseStore {
  readonly file: string;
  /** The image files of the cases' series, beside the database (`<file>.blobs/`, blob-store.ts). */
  readonly blobs: BlobStore;
  private readonly db: DatabaseSync;

  private constructor(file: string, db: DatabaseSync, blobs: BlobStore) {
    this.file = file;
    this.db = db;
    this.blobs = blobs;
  }

  /** Open the store in `file` (created, with its folder, when missing). */
  static open(file: string): CaseStore {
    const abs = path.resolve(file);
    try {
      mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new CaseStoreError(`cannot make the case store's folder: ${(err as Error).message}`, abs, 'io');
    }
    let db: DatabaseSync;
    try {
      db = openDatabase(abs);
    } catch (err) {
      if (err instanceof CorridorError) throw err;
      throw new CaseStoreError(`cannot open the case store: ${(err as Error).message}`, abs, 'io');
    }
    try {
      db.exec('PRAGMA busy_timeout = 5000');
      const mode = db.prepare('PRAGMA journal_mode = WAL').get();
      if (String(mode?.journal_mode).toLowerCase() !== 'wal') {
        throw new CaseStoreError(
          `cannot switch the database to write-ahead logging (journal_mode is ${String(mode?.journal_mode)})`,
          abs,
          'corrupt',
        );
      }
      db.exec('PRAGMA synchronous = FULL');
      db.exec('PRAGMA foreign_keys = ON');
      db.exec('BEGIN IMMEDIATE');
      try {
        db.exec(SCHEMA);
        const v = db.prepare("SELECT value FROM store_meta WHERE key = 'schemaVersion'").get();
        if (!v) {
          db.prepare("INSERT INTO store_meta (key, value) VALUES ('schemaVersion', ?)").run(String(SCHEMA_VERSION));
        } else if (Number(v.value) > SCHEMA_VERSION) {
          throw new CaseStoreError(
            `the case store has schema version ${String(v.value)}, newer than this Corridor (${SCHEMA_VERSION})`,
            abs,
            'invalid',
          );
        }
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      db.close();
      if (err instanceof CorridorError) throw err;
      throw new CaseStoreError(`cannot open the case store: ${(err as Error).message}`, abs, 'corrupt');
    }
    let blobs: BlobStore;
    try {
      blobs = new BlobStore(`${abs}.blobs`);
    } catch (err) {
      db.close();
      throw new CaseStoreError(`cannot make the blob folder: ${(err as Error).message}`, `${abs}.blobs`, 'io');
    }
    return new CaseStore(abs, db, blobs);
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  private readonly statements = new Map<string, StatementSync>();

  /** A prepared statement, prepared once per store (preparing costs more than running these). */
  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** The pragmas that make commits durable, as SQLite reports them (for tests and `check`). */
  settings(): { journalMode: string; synchronous: number } {
    const j = this.stmt('PRAGMA journal_mode').get();
    const s = this.stmt('PRAGMA synchronous').get();
    return { journalMode: String(j?.journal_mode), synchronous: num(s?.synchronous) };
  }

  private transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.db.exec('COMMIT');
      return r;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  listCases(): CaseSummary[] {
    return this.db
      .prepare(
        `SELECT c.id, c.title, c.created_at, c.updated_at,
                (SELECT count(*) FROM documents d WHERE d.case_id = c.id AND d.kind != '${CASE_KIND}') AS n
         FROM cases c ORDER BY c.created_at, c.id`,
      )
      .all()
      .map((r) => ({
        id: str(r.id),
        title: r.title === null ? null : str(r.title),
        createdAt: str(r.created_at),
        updatedAt: str(r.updated_at),
        documents: num(r.n),
      }));
  }

  /** Create a case with its metadata document (revision 1); a random id when none is given. */
  createCase(id: string | undefined, metaBody: string, title: string | null): DocumentHead {
    const caseId = id ?? randomUUID();
    if (!isValidName(caseId)) throw new CaseStoreError('invalid case id', caseId, 'invalid');
    return this.transaction(() => {
      if (this.stmt('SELECT 1 FROM cases WHERE id = ?').get(caseId)) {
        throw new CaseStoreError('a case with this id exists', caseId, 'exists');
      }
      const now = new Date().toISOString();
      this.db
        .prepare('INSERT INTO cases (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)')
        .run(caseId, title, now, now);
      return this.writeRevision(caseId, CASE_KIND, CASE_DOC, metaBody, null, now);
    });
  }

  getCase(caseId: string): CaseDetail | undefined {
    const c = this.stmt('SELECT id, title, created_at, updated_at FROM cases WHERE id = ?').get(caseId);
    if (!c) return undefined;
    const heads = this.db
      .prepare('SELECT * FROM documents WHERE case_id = ? ORDER BY kind, name')
      .all(caseId)
      .map(headOf);
    const documentsByKind = Object.fromEntries(DOCUMENT_KINDS.map((k) => [k, [] as DocumentHead[]])) as Record<
      DocumentKind,
      DocumentHead[]
    >;
    let meta: DocumentHead | undefined;
    for (const h of heads) {
      if (h.kind === CASE_KIND) meta = h;
      else if (isDocumentKind(h.kind)) documentsByKind[h.kind].push(h);
    }
    if (!meta) throw new CaseStoreError('the case has no metadata document', caseId, 'corrupt');
    return {
      id: str(c.id),
      title: c.title === null ? null : str(c.title),
      createdAt: str(c.created_at),
      updatedAt: str(c.updated_at),
      documents: heads.length - 1,
      meta,
      documentsByKind,
    };
  }

  hasCase(caseId: string): boolean {
    return this.stmt('SELECT 1 FROM cases WHERE id = ?').get(caseId) !== undefined;
  }

  listDocuments(caseId: string, kind: AnyKind): DocumentHead[] {
    return this.db
      .prepare('SELECT * FROM documents WHERE case_id = ? AND kind = ? ORDER BY name')
      .all(caseId, kind)
      .map(headOf);
  }

  head(caseId: string, kind: AnyKind, name: string): DocumentHead | undefined {
    const r = this.db
      .prepare('SELECT * FROM documents WHERE case_id = ? AND kind = ? AND name = ?')
      .get(caseId, kind, name);
    return r ? headOf(r) : undefined;
  }

  /** The text of a revision (the current one by default) with its head-like description. */
  read(
    caseId: string,
    kind: AnyKind,
    name: string,
    revision?: number,
  ): { body: string; info: RevisionInfo; head: DocumentHead } | undefined {
    const head = this.head(caseId, kind, name);
    if (!head) return undefined;
    const rev = revision ?? head.revision;
    const r = this.db
      .prepare('SELECT * FROM revisions WHERE case_id = ? AND kind = ? AND name = ? AND revision = ?')
      .get(caseId, kind, name, rev);
    if (!r) return undefined;
    const body = str(r.body);
    const sha = str(r.sha256);
    if (sha256Hex(body) !== sha) {
      throw new CaseStoreError(`revision ${rev} does not match its checksum`, `${caseId}/${kind}/${name}`, 'corrupt');
    }
    return { body, info: revisionInfo(r), head };
  }

  history(caseId: string, kind: AnyKind, name: string): RevisionInfo[] {
    return this.db
      .prepare(
        `SELECT revision, sha256, parent_sha256, created_at, length(CAST(body AS BLOB)) AS bytes FROM revisions
         WHERE case_id = ? AND kind = ? AND name = ? ORDER BY revision`,
      )
      .all(caseId, kind, name)
      .map(revisionInfo);
  }

  /**
   * Save a new revision of a document. `expect` is the ETags the edit was made on (any may match the
   * current revision) or `{ create: true }` for a document that must not exist yet. Refusals: 'not-found'
   * (no such case, or no such document to update), 'stale' (the document has moved on, or exists already
   * on create), with the current head.
   */
  save(caseId: string, kind: AnyKind, name: string, body: string, expect: SaveExpectation): DocumentHead {
    return this.transaction(() => this.applySave(caseId, kind, name, body, expect));
  }

  /**
   * The same save, committed together with the other saves queued in the same turn of the event loop: one
   * transaction, one fsync for all of them (group commit), each resolved only after that commit, each
   * refused on its own (a savepoint per save) without touching the others. Saves apply in call order.
   */
  saveQueued(
    caseId: string,
    kind: AnyKind,
    name: string,
    body: string,
    expect: SaveExpectation,
  ): Promise<DocumentHead> {
    return new Promise((resolve, reject) => {
      this.queue.push({ run: () => this.applySave(caseId, kind, name, body, expect), resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private queue: { run: () => DocumentHead; resolve: (h: DocumentHead) => void; reject: (e: unknown) => void }[] = [];

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: ({ ok: true; head: DocumentHead } | { ok: false; err: unknown })[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const op of batch) op.reject(err);
      return;
    }
    for (const op of batch) {
      this.db.exec('SAVEPOINT op');
      try {
        results.push({ ok: true, head: op.run() });
        this.db.exec('RELEASE op');
      } catch (err) {
        this.db.exec('ROLLBACK TO op');
        this.db.exec('RELEASE op');
        results.push({ ok: false, err });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // the failed COMMIT may have rolled back already
      }
      for (const op of batch) op.reject(err);
      return;
    }
    batch.forEach((op, i) => {
      const r = results[i];
      if (r.ok) op.resolve(r.head);
      else op.reject(r.err);
    });
  }

  /** Inside a transaction: check the expectation and write the revision. */
  private applySave(caseId: string, kind: AnyKind, name: string, body: string, expect: SaveExpectation): DocumentHead {
    const where = `${caseId}/${kind}/${name}`;
    if (!isValidName(caseId) || !isValidName(name)) throw new CaseStoreError('invalid name', where, 'invalid');
    if (!this.hasCase(caseId)) throw new CaseStoreError('no such case', caseId, 'not-found');
    const current = this.head(caseId, kind, name);
    if ('create' in expect) {
      if (current) throw new CaseStoreError('the document exists already', where, 'stale', current);
    } else {
      if (!current) throw new CaseStoreError('no such document', where, 'not-found');
      if (!expect.ifMatch.includes(current.etag)) {
        throw new CaseStoreError(
          `the document is at revision ${current.revision}, not the one this edit was made on`,
          where,
          'stale',
          current,
        );
      }
    }
    const now = new Date().toISOString();
    const head = this.writeRevision(caseId, kind, name, body, current ?? null, now);
    if (kind === CASE_KIND) {
      this.stmt('UPDATE cases SET title = ?, updated_at = ? WHERE id = ?').run(titleOf(body), now, caseId);
    } else {
      this.stmt('UPDATE cases SET updated_at = ? WHERE id = ?').run(now, caseId);
    }
    return head;
  }

  /** Inside a transaction: append the next revision and move the head. */
  private writeRevision(
    caseId: string,
    kind: string,
    name: string,
    body: string,
    current: DocumentHead | null,
    now: string,
  ): DocumentHead {
    const sha = sha256Hex(body);
    const revision = current ? current.revision + 1 : 1;
    if (current) {
      this.db
        .prepare(
          'UPDATE documents SET revision = ?, sha256 = ?, updated_at = ? WHERE case_id = ? AND kind = ? AND name = ?',
        )
        .run(revision, sha, now, caseId, kind, name);
    } else {
      this.db
        .prepare('INSERT INTO documents (case_id, kind, name, revision, sha256, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(caseId, kind, name, revision, sha, now);
    }
    this.db
      .prepare(
        `INSERT INTO revisions (case_id, kind, name, revision, body, sha256, parent_sha256, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(caseId, kind, name, revision, body, sha, current ? current.sha256 : null, now);
    return { caseId, kind, name, revision, sha256: sha, updatedAt: now, etag: etagOf(revision, sha) };
  }

  /**
   * The case's secret key for replacing UIDs on export (core's UidMap), made by `make` on the first
   * export and kept (durably) so that every export of the case maps each UID the same way.
   */
  exportKey(caseId: string, make: () => string): string {
    const k = `exportKey.${caseId}`;
    return this.transaction(() => {
      const r = this.stmt('SELECT value FROM store_meta WHERE key = ?').get(k);
      if (r) return str(r.value);
      const v = make();
      this.stmt('INSERT INTO store_meta (key, value) VALUES (?, ?)').run(k, v);
      return v;
    });
  }

  /**
   * Verify the whole store: SQLite's integrity check, then for every document that its revisions run
   * 1..head without a gap, each body matches its checksum, each names its predecessor's checksum, and the
   * head names the last one. Returns the problems found (empty when all is well).
   */
  check(): string[] {
    const problems: string[] = [];
    const ic = this.stmt('PRAGMA integrity_check').all();
    for (const r of ic)
      if (String(r.integrity_check) !== 'ok') problems.push(`integrity: ${String(r.integrity_check)}`);
    const heads = new Map<string, DocumentHead>();
    for (const h of this.stmt('SELECT * FROM documents').all().map(headOf)) {
      heads.set(`${h.caseId}/${h.kind}/${h.name}`, h);
    }
    let key = '';
    let expected = 1;
    let prevSha: string | null = null;
    const finish = () => {
      if (!key) return;
      const h = heads.get(key);
      if (!h) problems.push(`${key}: revisions without a document`);
      else {
        if (h.revision !== expected - 1)
          problems.push(`${key}: head is revision ${h.revision}, last is ${expected - 1}`);
        if (h.sha256 !== prevSha) problems.push(`${key}: head checksum differs from the last revision's`);
        heads.delete(key);
      }
    };
    for (const r of this.stmt('SELECT * FROM revisions ORDER BY case_id, kind, name, revision').all()) {
      const k = `${str(r.case_id)}/${str(r.kind)}/${str(r.name)}`;
      if (k !== key) {
        finish();
        key = k;
        expected = 1;
        prevSha = null;
      }
      const rev = num(r.revision);
      const sha = str(r.sha256);
      if (rev !== expected) problems.push(`${k}: revision ${rev} where ${expected} was expected`);
      if (sha256Hex(str(r.body)) !== sha) problems.push(`${k}: revision ${rev} does not match its checksum`);
      if ((r.parent_sha256 ?? null) !== prevSha) problems.push(`${k}: revision ${rev} names the wrong parent`);
      expected = rev + 1;
      prevSha = sha;
    }
    finish();
    for (const k of heads.keys()) problems.push(`${k}: a document without revisions`);
    return problems;
  }
}

function revisionInfo(r: Record<string, SqlValue>): RevisionInfo {
  const revision = num(r.revision);
  const sha = str(r.sha256);
  return {
    revision,
    sha256: sha,
    parentSha256: r.parent_sha256 === null || r.parent_sha256 === undefined ? null : str(r.parent_sha256),
    createdAt: str(r.created_at),
    bytes: r.bytes === undefined ? Buffer.byteLength(str(r.body)) : num(r.bytes),
    etag: etagOf(revision, sha),
  };
}

function titleOf(metaBody: string): string | null {
  try {
    const v = JSON.parse(metaBody) as { title?: unknown };
    return typeof v.title === 'string' ? v.title : null;
  } catch {
    return null;
  }
}
