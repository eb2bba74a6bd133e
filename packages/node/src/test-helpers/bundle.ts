/**
 * Test-only: bundle a TypeScript entry (with @corridor/core from source) into one ES module, so a test
 * can run it as a real child process (`node file.mjs`) without `npm run build`.
 */
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

export async function bundleForNode(entry: string, outFile: string): Promise<string> {
  await build({
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    alias: { '@corridor/core': path.join(root, 'packages/core/src/index.ts') },
    // A require() inside a bundled CommonJS package needs this banner in ESM.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return outFile;
}
