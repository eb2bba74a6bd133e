/**
 * Where the DICOM codecs' WebAssembly lives: dist/wasm/, emitted by the Vite build (vite.config.ts),
 * next to the assets/ folder of the bundles. Call once in every realm that decodes DICOM (page, case worker).
 */
import { configureDicomCodecs } from '@corridor/core';

export function configureCodecs(): void {
  // Not `new URL(template, import.meta.url)`: Vite would rewrite that pattern into a build-time glob.
  const here = import.meta.url;
  configureDicomCodecs({ locateFile: (fileName) => new URL(`../wasm/${fileName}`, here).href });
}
