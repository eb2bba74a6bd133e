#!/usr/bin/env node
// npm run bench [-- SUITE ...]: runs the benchmarks (built code) and writes bench/results.md.
import { fileURLToPath } from 'node:url';
import { runBenchmarks } from '../packages/node/dist/bench/run.js';

const out = fileURLToPath(new URL('./results.md', import.meta.url));
const table = await runBenchmarks(process.argv.slice(2), out);
console.log(table);
