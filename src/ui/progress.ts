import type { Output } from './output.js';

export interface ProgressCounts {
  done: number;
  sent: number;
  failed: number;
  deferred: number;
  skipped: number;
}

/**
 * Counts, rate and ETA while sending: a spinner line on a terminal, a plain line every
 * `intervalMs` otherwise (so a cron mail has a few lines, not thousands).
 */
export class SendProgress {
  private spinner: { text: string; stop(): void; start(): unknown } | null = null;
  private readonly started = Date.now();
  private lastLine = 0;

  private constructor(private readonly out: Output, private readonly total: number, private readonly intervalMs: number) {}

  static async start(out: Output, total: number, label: string, intervalMs = 10_000): Promise<SendProgress> {
    const progress = new SendProgress(out, total, intervalMs);
    if (out.quiet) return progress;
    if (out.isTTY) {
      const { default: ora } = await import('ora');
      progress.spinner = ora({ text: label, stream: process.stderr, isEnabled: true }).start();
    } else {
      out.note(label);
    }
    return progress;
  }

  update(c: ProgressCounts): void {
    if (this.out.quiet) return;
    const now = Date.now();
    if (this.spinner) {
      if (now - this.lastLine < 100) return;
      this.lastLine = now;
      this.spinner.text = this.describe(c, now);
    } else if (now - this.lastLine >= this.intervalMs) {
      if (this.lastLine !== 0) this.out.note(this.describe(c, now));
      this.lastLine = now;
    }
  }

  stop(): void {
    this.spinner?.stop();
    this.spinner = null;
  }

  private describe(c: ProgressCounts, now: number): string {
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = c.done / seconds;
    const left = Math.max(this.total - c.done, 0);
    const eta = rate > 0 ? Math.round(left / rate) : 0;
    return `${c.done}/${this.total}  sent ${c.sent}  failed ${c.failed}  deferred ${c.deferred}  skipped ${c.skipped}  ${rate.toFixed(0)}/s  ETA ${formatDuration(eta)}`;
  }
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
