/**
 * The progress of `msn-web pretrain`. On a terminal one line, rewritten in
 * place, at most 100 columns (fewer on a narrower terminal):
 *   step 1200/2000 (60%) loss 4.1234 protos 512 lr 1.2e-3 450 img/s ETA 1m05s
 * Otherwise (a pipe, a log file) full log lines: one at the first step, then
 * about every 5 s, and every skipped step.
 */
import type { ProgressEvent } from '../pretrain/pretrainer.js';

/** "1h02m", "4m05s", "12s"; '?' when not known. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  const s = Math.round(sec);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** "step s/end (p%)": s and end are the run's global steps, p the share of this call's steps (start..end) done. */
function stepText(e: ProgressEvent, start: number, end: number): string {
  const total = end - start;
  const pct = total > 0 ? Math.max(0, Math.min(100, Math.floor((100 * (e.step - start)) / total))) : 100;
  return `step ${e.step}/${end} (${pct}%)`;
}

/** The terminal line: at most `width` columns (and never more than 100). */
export function progressLine(e: ProgressEvent, start: number, end: number, width = 100): string {
  const line =
    `${stepText(e, start, end)} loss ${e.loss.toFixed(4)} protos ${e.numProtosUsed} lr ${e.lr.toExponential(1)} ` +
    `${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSec)}${e.skipped ? ' SKIPPED' : ''}`;
  const w = Math.max(20, Math.min(100, width));
  return line.length > w ? line.slice(0, w) : line;
}

/** A full log line, every metric (no width limit). */
export function logLine(e: ProgressEvent, start: number, end: number): string {
  return (
    `${stepText(e, start, end)} epoch ${e.epoch} loss ${e.loss.toFixed(4)} ce ${e.ce.toFixed(4)} me-max ${e.memax.toFixed(4)} ` +
    `lr ${e.lr.toExponential(2)} wd ${e.weightDecay.toFixed(3)} m ${e.momentum.toFixed(4)} protos ${e.numProtosUsed} ` +
    `maxT ${e.maxTarget.toFixed(2)} ${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSec)}${e.skipped ? ' SKIPPED (non-finite)' : ''}`
  );
}

export interface ProgressOutput {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Shows ProgressEvents of one fit() call that runs the steps start..end. */
export class ProgressReporter {
  private lastLog = -Infinity;
  private open = false; // a terminal line without its newline yet

  constructor(
    private readonly start: number,
    private readonly end: number,
    private readonly out: ProgressOutput = process.stderr,
    private readonly now: () => number = () => performance.now(),
    /** Milliseconds between log lines when not on a terminal. */
    private readonly every = 5_000,
  ) {}

  update(e: ProgressEvent): void {
    if (this.out.isTTY) {
      const width = Math.min(100, (this.out.columns || 100) - 1);
      this.out.write(`\r${progressLine(e, this.start, this.end, width)}\x1b[K`);
      this.open = true;
    } else if (this.now() - this.lastLog >= this.every || e.skipped) {
      this.lastLog = this.now();
      this.out.write(logLine(e, this.start, this.end) + '\n');
    }
  }

  /** Ends the terminal line (before the next message). */
  finish(): void {
    if (this.open) this.out.write('\n');
    this.open = false;
  }
}
