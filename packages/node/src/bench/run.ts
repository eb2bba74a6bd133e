/**
 * `npm run bench`: runs every benchmark in this process, one after another (so they do not compete for
 * the two cores), and writes a markdown table with the machine and the figures.
 */
import { writeFileAtomic } from '../io/atomic-write.js';
import os from 'node:os';
import type { BenchRow } from './types.js';
import { benchDicom } from './dicom.js';
import { benchPhantom } from './phantom.js';
import { benchPlan } from './plan.js';
import { benchDrr } from './drr.js';
import { benchIo } from './io.js';
import { benchVerify } from './verify.js';
import { benchRegister } from './register.js';
import { benchRegister2d } from './register2d.js';
import { benchRecon } from './recon.js';
import { benchCement } from './cement.js';
import { benchStore } from './store.js';
import { benchPacs } from './pacs.js';

const suites: Record<string, () => Promise<BenchRow[]>> = {
  dicom: benchDicom,
  phantom: benchPhantom,
  plan: benchPlan,
  drr: benchDrr,
  io: benchIo,
  verify: benchVerify,
  register: benchRegister,
  register2d: benchRegister2d,
  recon: benchRecon,
  cement: benchCement,
  store: benchStore,
  pacs: benchPacs,
};

/** `extra` suites come from outside this package (the workstation's, which lives in packages/web). */
export async function runBenchmarks(
  only: string[],
  outFile: string,
  extra: Record<string, () => Promise<BenchRow[]>> = {},
): Promise<string> {
  const all = { ...suites, ...extra };
  const names = only.length ? only : Object.keys(all);
  const lines = [
    '# Corridor benchmarks',
    '',
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString()}`,
    '',
    '| suite | benchmark | value | unit | notes |',
    '| --- | --- | ---: | --- | --- |',
  ];
  for (const name of names) {
    const suite = all[name];
    if (!suite) throw new Error(`unknown benchmark suite "${name}" (have: ${Object.keys(all).join(', ')})`);
    process.stderr.write(`bench: ${name} ...\n`);
    for (const r of await suite()) {
      const line = `| ${name} | ${r.name} | ${formatValue(r.value)} | ${r.unit} | ${r.notes} |`;
      lines.push(line);
      process.stderr.write(`  ${r.name}: ${formatValue(r.value)} ${r.unit} (${r.notes})\n`);
    }
  }
  const table = lines.join('\n') + '\n';
  await writeFileAtomic(outFile, table);
  return table;
}

/** Two decimals for ordinary figures, but a small non-zero one (a largest difference of 1e-9 mm) keeps
 * its magnitude in exponent form instead of printing as a misleading 0.00. */
function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 0.01) return v.toExponential(1);
  return v.toFixed(Math.abs(v) >= 100 ? 0 : 2);
}
