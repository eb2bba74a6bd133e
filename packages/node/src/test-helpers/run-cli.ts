/** Test-only: run the corridor CLI in-process and capture what it prints (excluded from the build). */
import { vi } from 'vitest';
import { main } from '../cli/main.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' '))),
    vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' '))),
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true)),
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true)),
  ];
  try {
    const code = await main(['node', 'corridor', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
