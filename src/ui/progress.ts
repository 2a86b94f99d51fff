import type { Output } from './output.js';

export interface ProgressCounts {
  done: number;
  sent: number;
  failed: number;
  deferred: number;
  skipped: number;
}

/** After this long without a send done, the line says what it waits for instead of an ETA. */
export const IDLE_MS = 5_000;

/**
 * The progress line. While nothing has been done for `IDLE_MS` (a server that hangs at the login,
 * or a slow answer), a rate and an ETA would be made up: the line names the server waited for.
 */
export function progressText(c: ProgressCounts, total: number, elapsedMs: number, idleMs: number, server?: string): string {
  const counts = `${c.done}/${total}  sent ${c.sent}  failed ${c.failed}  deferred ${c.deferred}  skipped ${c.skipped}`;
  if (server && idleMs >= IDLE_MS) return `${counts}  waiting for ${server} (${formatDuration(Math.round(idleMs / 1000))})`;
  // Before the first send is done there is no rate to tell an ETA from.
  if (c.done === 0) return counts;
  const rate = c.done / Math.max(elapsedMs / 1000, 0.001);
  const eta = Math.round(Math.max(total - c.done, 0) / rate);
  return `${counts}  ${rate.toFixed(0)}/s  ETA ${formatDuration(eta)}`;
}

/**
 * Counts, rate and ETA while sending: a spinner line on a terminal, a plain line every
 * `intervalMs` otherwise (so a cron mail has a few lines, not thousands). A timer keeps the
 * line current while no send finishes, which is when it matters what the run waits for.
 */
export class SendProgress {
  private spinner: { text: string; stop(): void; start(): unknown } | null = null;
  private readonly started = Date.now();
  private lastLine = 0;
  private lastDone = Date.now();
  private counts: ProgressCounts = { done: 0, sent: 0, failed: 0, deferred: 0, skipped: 0 };
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly out: Output, private readonly total: number, private readonly intervalMs: number, private readonly server?: string) {}

  /** `server`: what the run waits for when nothing goes out (the transport's description) */
  static async start(out: Output, total: number, label: string, intervalMs = 10_000, server?: string): Promise<SendProgress> {
    const progress = new SendProgress(out, total, intervalMs, server);
    if (out.quiet) return progress;
    if (out.isTTY) {
      const { default: ora } = await import('ora');
      progress.spinner = ora({ text: label, stream: process.stderr, isEnabled: true }).start();
    } else {
      out.note(label);
    }
    progress.timer = setInterval(() => progress.show(Date.now()), Math.min(1000, intervalMs));
    progress.timer.unref();
    return progress;
  }

  update(c: ProgressCounts): void {
    if (this.out.quiet) return;
    const now = Date.now();
    if (c.done !== this.counts.done) this.lastDone = now;
    this.counts = { done: c.done, sent: c.sent, failed: c.failed, deferred: c.deferred, skipped: c.skipped };
    this.show(now);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.spinner?.stop();
    this.spinner = null;
  }

  private show(now: number): void {
    if (this.spinner) {
      if (now - this.lastLine < 100) return;
      this.lastLine = now;
      this.spinner.text = this.describe(now);
    } else if (now - this.lastLine >= this.intervalMs) {
      if (this.lastLine !== 0) this.out.note(this.describe(now));
      this.lastLine = now;
    }
  }

  private describe(now: number): string {
    return progressText(this.counts, this.total, now - this.started, now - this.lastDone, this.server);
  }
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
