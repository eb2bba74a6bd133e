/* eslint-disable no-restricted-imports -- test-only helper; tsconfig excludes test-helpers/ from the core build */
/** Test-only helpers (Node): locate ../shared/data and read files as NamedBytes. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NamedBytes } from '../io/types.js';

/** <repo>/../shared/data, found by walking up to the folder holding packages/ and package.json. */
export function sharedData(...parts: string[]): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let n = 0; n < 10; n++) {
    if (existsSync(path.join(dir, 'packages')) && existsSync(path.join(dir, 'package.json'))) {
      return path.join(dir, '..', 'shared', 'data', ...parts);
    }
    dir = path.dirname(dir);
  }
  return path.resolve('..', 'shared', 'data', ...parts);
}

export function readNamed(file: string): NamedBytes {
  return { name: path.basename(file), bytes: new Uint8Array(readFileSync(file)) };
}

export function readDir(...parts: string[]): NamedBytes[] {
  const dir = sharedData(...parts);
  return readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort()
    .map((n) => readNamed(path.join(dir, n)));
}
