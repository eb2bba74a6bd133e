/**
 * Test-only child for codec-pool.test.ts, run as `node child.mjs FOLDER`: loads a JPEG 2000 folder through
 * loadPath (which installs the codec pool) and prints the pool's size and the volume's dims; then simply
 * ends, so the test can check that idle workers do not keep the process alive.
 */
import { loadPath } from '../io/load.js';
import { installCodecPool } from '../io/codec-pool.js';

const { series } = await loadPath(process.argv[2]);
console.log(JSON.stringify({ pool: installCodecPool()?.size ?? 0, dims: series[0].volume.dims }));
