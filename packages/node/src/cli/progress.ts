/**
 * The CLI's one progress bar: `label [########------------]  42%` redrawn in place on stderr.
 *
 * Shown only when stderr is a terminal or the user asked for it (`--progress`, e.g. into a log); `--quiet`
 * always silences it. It writes to stderr only, so `--json` output on stdout is never touched. Redraws
 * are limited to changes of the shown text (at most one per percent and label), so a callback called
 * millions of times costs a string compare each.
 */

/** What the long commands pass: `--quiet`, `--progress`. */
export interface ProgressFlags {
  quiet?: boolean;
  progress?: boolean;
}

export interface ProgressBar {
  /** Core's progress callback shape: done of total, with what is being done. */
  update(done: number, total: number, label?: string): void;
  /** Clear the bar's line (before anything else is written, and at the end). Idempotent. */
  clear(): void;
  /** Whether anything is drawn at all. */
  readonly active: boolean;
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

const BAR_WIDTH = 24;

/** The bar's text for done of total (no carriage return), e.g. `register [######------]  50%`. */
export function formatProgress(label: string, done: number, total: number, width = BAR_WIDTH): string {
  const f = total > 0 && Number.isFinite(done) ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(f * width);
  const pct = `${Math.floor(f * 100)}%`.padStart(4);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}`;
}

/**
 * A progress bar on `stream` (default process.stderr): active when the stream is a TTY or
 * flags.progress is set, never when flags.quiet is.
 */
export function progressBar(
  name: string,
  flags: ProgressFlags = {},
  stream: ProgressStream = process.stderr,
): ProgressBar {
  const active = !flags.quiet && (!!flags.progress || !!stream.isTTY);
  if (!active) return { update: () => undefined, clear: () => undefined, active };
  const tty = !!stream.isTTY;
  let last = '';
  let shownLength = 0;
  return {
    active,
    update(done, total, label) {
      const text = formatProgress(label ? `${name}: ${label}` : name, done, total);
      if (text === last) return;
      last = text;
      const cols = stream.columns ?? 0;
      const line = cols > 1 && text.length >= cols ? text.slice(0, cols - 1) : text;
      if (tty) {
        stream.write(`\r${line.padEnd(shownLength)}`);
        shownLength = line.length;
      } else {
        // Not a terminal (--progress into a file or a pipe): one line per change, no carriage returns.
        stream.write(`${line}\n`);
      }
    },
    clear() {
      if (tty && shownLength > 0) stream.write(`\r${' '.repeat(shownLength)}\r`);
      shownLength = 0;
      last = '';
    },
  };
}
