/**
 * The CLI's one progress bar, on stderr, for every long command (plan, cbct, recon, register, verify,
 * cement, phantom, pacs push/pull): `label [########----------------]  42%`, or with a unit
 * `pull [####----] 12/40 instances  5.1 MB  2.3 MB/s`, redrawn in place.
 *
 * Shown only when stderr is a terminal or the user asked for it (`--progress`, e.g. into a log: then one
 * plain line per change, no carriage returns); `--quiet` always silences it. It writes to stderr only, so
 * `--json` output on stdout is never touched. Redraws happen only when the shown text changes, and at most
 * 10 times a second except for the end and a new phase, so a callback called millions of times costs a
 * time check each.
 */

/** What the long commands pass: `--quiet`, `--progress`. */
export interface ProgressFlags {
  quiet?: boolean;
  progress?: boolean;
}

export interface ProgressOptions extends ProgressFlags {
  /** Counted things (`files`, `instances`): the bar shows done/total of them instead of a percent. */
  unit?: string;
}

export interface ProgressBar {
  /**
   * done of total (total unknown: no bar, the count alone); `detail` is the phase (a string, as core's
   * progress callbacks pass) or the bytes so far (a number: size and rate are shown).
   */
  update(done: number, total?: number, detail?: string | number): void;
  /** Clear the bar's line (before anything else is written, and at the end). Idempotent. */
  clear(): void;
  /** The same as clear(). */
  finish(): void;
  /** Whether anything is drawn at all. */
  readonly active: boolean;
}

/** Where the bar is drawn (stderr; tests pass their own). */
export interface LineSink {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const BAR_WIDTH = 24;
const MIN_REDRAW_MS = 100;

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The bar's text for done of total (no carriage return), e.g. `register [######------]  50%`. */
export function formatProgress(label: string, done: number, total: number, width = BAR_WIDTH): string {
  const f = total > 0 && Number.isFinite(done) ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(f * width);
  const pct = `${Math.floor(f * 100)}%`.padStart(4);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}`;
}

/**
 * A progress bar on `stream` (default process.stderr): active when the stream is a TTY or
 * options.progress is set, never when options.quiet is. `now` is the clock (tests).
 */
export function progressBar(
  name: string,
  options: ProgressOptions = {},
  stream: LineSink = process.stderr,
  now: () => number = Date.now,
): ProgressBar {
  const active = !options.quiet && (!!options.progress || !!stream.isTTY);
  if (!active) return { update: () => undefined, clear: () => undefined, finish: () => undefined, active };
  const tty = !!stream.isTTY;
  const t0 = now();
  let last = '';
  let lastPhase: string | undefined;
  let lastDraw = -Infinity;
  let shownLength = 0;
  const text = (done: number, total: number | undefined, detail: string | number | undefined): string => {
    const label = typeof detail === 'string' && detail ? `${name}: ${detail}` : name;
    if (!options.unit) return formatProgress(label, done, total ?? 0);
    const f = total && total > 0 ? Math.min(1, done / total) : undefined;
    const bar = f === undefined ? '' : `[${'#'.repeat(Math.round(f * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}] `;
    const count = total !== undefined ? `${done}/${total} ${options.unit}` : `${done} ${options.unit}`;
    if (typeof detail !== 'number') return `${label} ${bar}${count}`;
    const secs = (now() - t0) / 1000;
    return `${label} ${bar}${count}  ${mb(detail)}${secs > 0.2 ? `  ${mb(detail / secs)}/s` : ''}`;
  };
  const clear = () => {
    if (tty && shownLength > 0) stream.write(`\r${' '.repeat(shownLength)}\r`);
    shownLength = 0;
    last = '';
  };
  return {
    active,
    update(done, total, detail) {
      const phase = typeof detail === 'string' ? detail : undefined;
      const t = now();
      // Throttled, except the end and a new phase (each phase's name is seen).
      if (t - lastDraw < MIN_REDRAW_MS && done !== total && phase === lastPhase) return;
      const s = text(done, total, detail);
      if (s === last) return;
      last = s;
      lastPhase = phase;
      lastDraw = t;
      const cols = stream.columns ?? 0;
      const line = cols > 1 && s.length >= cols ? s.slice(0, cols - 1) : s;
      if (tty) {
        stream.write(`\r${line.padEnd(shownLength)}`);
        shownLength = line.length;
      } else stream.write(`${line}\n`);
    },
    clear,
    finish: clear,
  };
}
