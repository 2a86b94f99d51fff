/** Spaces sends evenly: each caller waits for the next free slot. */
export class Throttle {
  private next = 0;

  constructor(private readonly intervalMs: number, private readonly clock: () => number = Date.now) {}

  async take(): Promise<void> {
    if (this.intervalMs <= 0) return;
    const now = this.clock();
    const slot = Math.max(now, this.next);
    this.next = slot + this.intervalMs;
    if (slot > now) await new Promise((resolve) => setTimeout(resolve, slot - now));
  }
}
