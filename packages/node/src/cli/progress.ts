/**
 * A one-line progress bar on stderr, redrawn in place at most 10 times a second, only when stderr is a
 * terminal (a log file or a pipe gets no control characters) and not --quiet.
 */
export interface ProgressBar {
  update(done: number, total: number | undefined, bytes?: number): void;
  finish(): void;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Where the bar is drawn (stderr; tests pass their own). */
export interface LineSink {
  write(text: string): unknown;
}

export function progressBar(
  label: string,
  unit: string,
  enabled: boolean,
  stream: LineSink = process.stderr,
): ProgressBar {
  const t0 = Date.now();
  let lastDraw = 0;
  let drawn = false;
  const draw = (done: number, total: number | undefined, bytes: number | undefined) => {
    const width = 24;
    const frac = total && total > 0 ? Math.min(1, done / total) : undefined;
    const bar = frac === undefined ? '' : `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '-')}] `;
    const count = total !== undefined ? `${done}/${total} ${unit}` : `${done} ${unit}`;
    const secs = (Date.now() - t0) / 1000;
    const rate = bytes !== undefined && secs > 0.2 ? `  ${mb(bytes / secs)}/s` : '';
    const size = bytes !== undefined ? `  ${mb(bytes)}` : '';
    stream.write(`\r${label} ${bar}${count}${size}${rate}`.padEnd(78) + '\r');
    drawn = true;
  };
  return {
    update(done, total, bytes) {
      if (!enabled) return;
      const now = Date.now();
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      draw(done, total, bytes);
    },
    finish() {
      if (enabled && drawn) stream.write('\r'.padEnd(79) + '\r');
    },
  };
}
