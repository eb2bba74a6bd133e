/**
 * Test-only: Debian's DICOM validators (dicom3tools' dciodvfy, dcmtk's dsrdump and dcmdump) and poppler's
 * pdftoppm/pdftotext, installed by scripts/ensure-dicom-tools.sh (npm test runs it). Tests that need a
 * missing tool skip, and their title names the tool.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/** '' when all are present, else "(skipped: X not installed; run sh scripts/ensure-dicom-tools.sh)". */
export function missingToolsNote(...names: string[]): string {
  const missing = names.filter((n) => !hasTool(n));
  return missing.length ? ` (skipped: ${missing.join(', ')} not installed; run sh scripts/ensure-dicom-tools.sh)` : '';
}

export interface Dciodvfy {
  /** The IOD dciodvfy recognised (its line naming the IOD, e.g. "CTImage"). */
  iod: string;
  errors: string[];
  warnings: string[];
  output: string;
  /** dciodvfy's exit status: 1 when it found errors. */
  status: number | null;
}

/** Run dciodvfy on one file: its errors and warnings (it reports them on stderr). */
export function dciodvfy(file: string): Dciodvfy {
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  const lines = output.split('\n').map((l) => l.trim());
  return {
    iod: lines.find((l) => /^[A-Za-z0-9]+$/.test(l)) ?? '',
    errors: lines.filter((l) => /^Error/.test(l) || / - Error /.test(l)),
    warnings: lines.filter((l) => /Warning/.test(l)),
    output,
    status: r.status,
  };
}

/** Run a tool, returning stdout; throws with its stderr when it fails. */
export function runTool(name: string, args: string[]): string {
  return execFileSync(name, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}
