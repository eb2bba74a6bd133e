/**
 * The CLI's progress bar (one helper behind plan, cbct, recon, register, verify, cement): drawn in place on
 * a TTY, silent on a pipe unless --progress, never with --quiet. It writes to the stream it is given
 * (stderr), so stdout (--json) never sees it.
 */
import { describe, expect, it } from 'vitest';
import { formatProgress, progressBar, type ProgressStream } from './progress.js';

function sink(isTTY: boolean): ProgressStream & { out: string } {
  const s = {
    isTTY,
    columns: 200,
    out: '',
    write(t: string) {
      s.out += t;
      return true;
    },
  };
  return s;
}

describe('progress bar', () => {
  it('formats the fraction as filled cells and a whole percent', () => {
    expect(formatProgress('x', 1, 4, 8)).toBe('x [##------]  25%');
    expect(formatProgress('x', 0, 0, 4)).toBe('x [----]   0%');
    expect(formatProgress('x', 7, 5, 4)).toBe('x [####] 100%');
  });

  it('on a TTY redraws one line with carriage returns, and clears it', () => {
    const s = sink(true);
    const bar = progressBar('plan', {}, s);
    expect(bar.active).toBe(true);
    for (let d = 0; d <= 1000; d++) bar.update(d, 1000, 'S1');
    // One redraw per change of the shown text (101 percent steps, 24 cell steps), not per call (1001).
    const draws = s.out.split('\r').filter(Boolean);
    expect(draws.length).toBeGreaterThanOrEqual(101);
    expect(draws.length).toBeLessThanOrEqual(101 + 24);
    expect(s.out).not.toContain('\n');
    expect(draws[draws.length - 1]).toContain('plan: S1 [');
    expect(draws[draws.length - 1]).toContain('100%');
    bar.clear();
    expect(s.out.endsWith('\r')).toBe(true);
  });

  it('is silent when stderr is not a TTY, unless --progress (then plain lines)', () => {
    const pipe = sink(false);
    const off = progressBar('cbct', {}, pipe);
    off.update(1, 2);
    off.clear();
    expect(off.active).toBe(false);
    expect(pipe.out).toBe('');
    const forced = progressBar('cbct', { progress: true }, pipe);
    forced.update(1, 2);
    forced.update(2, 2);
    forced.clear();
    expect(pipe.out).toBe('cbct [############------------]  50%\ncbct [########################] 100%\n');
  });

  it('--quiet silences it even on a TTY and with --progress', () => {
    const s = sink(true);
    const bar = progressBar('register', { quiet: true, progress: true }, s);
    bar.update(1, 2, 'level 1');
    bar.clear();
    expect(bar.active).toBe(false);
    expect(s.out).toBe('');
  });
});
