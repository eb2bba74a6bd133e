import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared real-data folder: `<repository>/../shared/data`, or CORRIDOR_SHARED_DATA when set.
 * Found by walking up from this file to the repository root (the folder with package.json + packages/).
 */
export function sharedDataDir(): string {
  if (process.env.CORRIDOR_SHARED_DATA) return process.env.CORRIDOR_SHARED_DATA;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let n = 0; n < 8; n++) {
    if (existsSync(path.join(dir, 'packages')) && existsSync(path.join(dir, 'package.json'))) {
      return path.join(dir, '..', 'shared', 'data');
    }
    dir = path.dirname(dir);
  }
  return path.resolve('..', 'shared', 'data');
}
