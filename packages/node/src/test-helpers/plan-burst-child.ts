/**
 * Test-only child process for plan-kill.test.ts, run as `node child.mjs CT LABELS OUT`: the full CLI
 * (`corridor plan ... --append`) in a loop until killed, each save adding or replacing one path (the
 * four sacral ids in turn, with a margin that changes every save, so every version differs). After each
 * save returns, the SHA-256 of the file is printed as `SAVED <hex>`: a version known to be complete.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { main } from '../cli/main.js';

const [ct, labels, out] = process.argv.slice(2);
const ids = ['s1', 's2', 'alar-left', 'alar-right'];
/** Paths in the plan now: a restarted burst goes on growing the plan where the killed one left it. */
function pathCount(): number {
  try {
    return (JSON.parse(readFileSync(out, 'utf8')) as { paths: unknown[] }).paths.length;
  } catch {
    return 0;
  }
}
for (let i = pathCount(); ; i++) {
  const margin = String(1.5 + (i % 7) * 0.25);
  const args = ['plan', ct, '--labels', labels, '--auto', ids[i % 4], '--margin', margin, '--out', out, '--append'];
  const code = await main(['node', 'corridor', ...args]);
  if (code !== 0) {
    process.stderr.write(`corridor ${args.join(' ')}: exit ${code}\n`);
    process.exit(code);
  }
  process.stdout.write(`SAVED ${createHash('sha256').update(readFileSync(out)).digest('hex')}\n`);
}
