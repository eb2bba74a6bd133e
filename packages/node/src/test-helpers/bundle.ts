/**
 * Test-only: bundle a TypeScript entry (with @corridor/core from source) into one ES module, so a test
 * can run it as a real child process (`node file.mjs`) without `npm run build`.
 */
import { build, type Plugin } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * `pureCore`: treat core's modules as free of side effects, so only those the entry uses are bundled (a
 * child started hundreds of times starts faster without the rest of core).
 */
export async function bundleForNode(
  entry: string,
  outFile: string,
  opts: { pureCore?: boolean } = {},
): Promise<string> {
  const coreSrc = path.join(root, 'packages/core/src') + path.sep;
  const pureCore: Plugin = {
    name: 'pure-core',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === 'pure-core') return undefined;
        const r = await b.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'pure-core',
        });
        return r.path.startsWith(coreSrc) ? { ...r, sideEffects: false } : r;
      });
    },
  };
  await build({
    plugins: opts.pureCore ? [pureCore] : [],
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
