#!/usr/bin/env node
// npm run bench [-- SUITE ...]: runs the benchmarks (built code) and writes bench/results.md.
// Suites: dicom, phantom, plan, drr, io, verify, register, register2d, recon, cement, store, pacs (packages/node) and workstation (packages/web, headless Chromium).
import { fileURLToPath } from 'node:url';
import { runBenchmarks } from '../packages/node/dist/bench/run.js';
import { workstationBench } from '../packages/web/bench/workstation.mjs';

const out = fileURLToPath(new URL('./results.md', import.meta.url));
const table = await runBenchmarks(process.argv.slice(2), out, { workstation: () => workstationBench() });
console.log(table);
