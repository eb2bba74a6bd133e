// Vite build of the workstation. Core is bundled from source (no separate build), every asset is
// emitted locally (no CDN), and workers are ES modules.
import { createLogger, defineConfig, type Plugin } from 'vite';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The DICOM codecs (WebAssembly) fetch their .wasm at run time; emit them as wasm/<name> so the case
 * worker's locateFile finds them on this server.
 */
function dicomCodecWasm(): Plugin {
  const req = createRequire(fileURLToPath(new URL('../core/package.json', import.meta.url)));
  // [the script core imports, the .wasm it fetches from next to itself]
  const files = [
    ['@cornerstonejs/codec-openjpeg/decodewasmjs', 'openjpegwasm_decode.wasm'],
    ['@cornerstonejs/codec-openjph/wasmjs', 'openjphjs.wasm'],
    ['@cornerstonejs/codec-charls/decodewasmjs', 'charlswasm_decode.wasm'],
    ['@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', 'libjpegturbowasm_decode.wasm'],
  ];
  return {
    name: 'corridor-dicom-codec-wasm',
    generateBundle() {
      for (const [script, file] of files) {
        const dir = path.dirname(req.resolve(script));
        this.emitFile({ type: 'asset', fileName: `wasm/${file}`, source: readFileSync(path.join(dir, file)) });
      }
    },
  };
}

/**
 * The emscripten codecs mention Node's fs and path in branches that never run in a browser; Vite warns
 * about each. Those warnings (and only those) are dropped so real ones stand out.
 */
const logger = createLogger('warn');
const warn = logger.warn.bind(logger);
logger.warn = (msg, options) => {
  if (/externalized for browser compatibility, imported by .*@cornerstonejs\/codec-/.test(msg)) return;
  warn(msg, options);
};

export default defineConfig({
  customLogger: logger,
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: {
    alias: { '@corridor/core': fileURLToPath(new URL('../core/src/index.ts', import.meta.url)) },
  },
  plugins: [dicomCodecWasm()],
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 4000,
    assetsInlineLimit: 0,
  },
  logLevel: 'warn',
  server: { host: '127.0.0.1' },
});
