/**
 * The CLI's progress bar (one helper behind plan, cbct, recon, register, verify, cement, phantom, pacs):
 * drawn in place on a TTY, silent on a pipe unless --progress, never with --quiet, throttled to 10 draws a
 * second. It writes to the stream it is given (stderr), so stdout (--json) never sees it.
 */
import { describe, expect, it } from 'vitest';
import { formatProgress, progressBar, type LineSink } from './progress.js';

function sink(isTTY: boolean): LineSink & { out: string } {
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
    let t = 0;
    const bar = progressBar('plan', {}, s, () => (t += 1000)); // a second between calls: no throttling
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

  it('draws at most 10 times a second, but always the end and each new phase', () => {
    const s = sink(true);
    const bar = progressBar('register', {}, s, () => 5); // a frozen clock
    for (let d = 0; d < 1000; d++) bar.update(d, 1000, 'level 1');
    bar.update(0, 10, 'level 2');
    bar.update(10, 10, 'level 2');
    const draws = s.out.split('\r').filter(Boolean);
    expect(draws.map((x) => /register: (level \d)/.exec(x)?.[1])).toEqual(['level 1', 'level 2', 'level 2']);
    expect(draws[2]).toContain('100%');
  });

  it('with a unit: the count, the size and the rate (pacs push/pull)', () => {
    const s = sink(true);
    let t = 0;
    const bar = progressBar('pull', { unit: 'instances' }, s, () => t);
    bar.update(4, 4, 2_500_000);
    expect(s.out).toMatch(/^\rpull \[#{24}\] 4\/4 instances {2}2\.5 MB$/);
    t = 2000;
    bar.update(8, 16, 5_000_000);
    expect(s.out.split('\r').at(-1)).toBe(`pull [${'#'.repeat(12)}${'-'.repeat(12)}] 8/16 instances  5.0 MB  2.5 MB/s`);
    bar.update(9, undefined, 0); // within 100 ms of the last draw and not the end: not redrawn
    expect(s.out.split('\r').filter(Boolean)).toHaveLength(2);
    bar.finish();
    expect(s.out).toMatch(/\r +\r$/);
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
