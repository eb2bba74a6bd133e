import { describe, expect, it } from 'vitest';
import { progressBar, type LineSink } from './progress.js';

function fakeStream() {
  const writes: string[] = [];
  return { writes, stream: { write: (s: string) => writes.push(s) } as LineSink };
}

describe('progress bar', () => {
  it('draws a bar with the count and size in place, at most 10 times a second, and clears the line', () => {
    const { writes, stream } = fakeStream();
    const bar = progressBar('pull', 'instances', true, stream);
    bar.update(4, 4, 2_500_000);
    expect(writes.at(-1)).toMatch(/^\rpull \[#{24}\] 4\/4 instances {2}2\.5 MB/);
    bar.update(1, undefined, 0); // within 100 ms of the last draw and not the end: not redrawn
    expect(writes).toHaveLength(1);
    bar.finish();
    expect(writes.at(-1)).toMatch(/^\r +\r$/);
  });
  it('draws half a bar at half way, and nothing at all when disabled', () => {
    const { writes, stream } = fakeStream();
    progressBar('push', 'files', true, stream).update(5, 10);
    expect(writes[0]).toContain(`[${'#'.repeat(12)}${'-'.repeat(12)}] 5/10 files`);
    const off = fakeStream();
    const bar = progressBar('push', 'files', false, off.stream);
    bar.update(1, 2, 3);
    bar.finish();
    expect(off.writes).toEqual([]);
  });
});
