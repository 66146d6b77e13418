/**
 * A progress bar on stderr: drawn only when stderr is a terminal, not --quiet, and the run has already taken more
 * than `delayMs` (a short run prints nothing); redrawn at most every `intervalMs`; erased when done. stdout is never
 * touched, so output stays byte-identical across runs.
 */
export interface ProgressIo {
  readonly write: (s: string) => void;
  readonly isTTY: boolean;
  /** Wall-clock milliseconds (the CLI may time itself; the model never does). */
  readonly now: () => number;
  readonly columns?: number;
}

export class ProgressBar {
  private readonly start: number;
  private lastDraw = -Infinity;
  private drawn = false;
  readonly enabled: boolean;

  constructor(
    private readonly io: ProgressIo,
    private readonly label: string,
    opts: { quiet?: boolean; delayMs?: number; intervalMs?: number } = {},
  ) {
    this.enabled = io.isTTY && !opts.quiet;
    this.start = io.now();
    this.delayMs = opts.delayMs ?? 1000;
    this.intervalMs = opts.intervalMs ?? 100;
  }

  private readonly delayMs: number;
  private readonly intervalMs: number;

  update(fraction: number): void {
    if (!this.enabled) return;
    const t = this.io.now();
    if (t - this.start < this.delayMs || t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
    const width = Math.max(10, Math.min(40, (this.io.columns ?? 80) - this.label.length - 20));
    const full = Math.round(f * width);
    const secs = ((t - this.start) / 1000).toFixed(1);
    this.io.write(
      `\r${this.label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}% ${secs}s\x1b[K`,
    );
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.io.write('\r\x1b[K');
    this.drawn = false;
  }
}
