import { SEND_BUSY_WAIT_MS, isDatabaseBusy } from '../errors.js';
import type { DeliveryStore } from '../domain/ports.js';

/**
 * Groups the small writes of many workers into one transaction (group commit): writes wait for
 * batch-mates at most as long as the last commit took (never above 2 ms), looking again at
 * the end of each turn of the event loop, and commit at once when all `batch` workers are in.
 * Waiting longer than a commit costs gains nothing: a fixed window of 2 ms made 4 connections
 * on loopback run in lock-step at the pace of the slowest of the four (about 2,500 msg/s,
 * where 16 reached 7,000), waiting for batch-mates still waiting for their server. A write that
 * throws takes the whole batch back (a send marked sent without its message must never be
 * committed), and every caller of the batch gets that error.
 *
 * While another command holds the database's write lock (a re-import of a large list holds it
 * for the whole file), the batch waits for it, up to `busyWaitMs`, instead of failing: giving up
 * would take back the results of mails already handed over, to be sent again by the next run.
 * SQLite's own wait blocks the thread, so each try waits only the connection's busy timeout,
 * and between tries the event loop goes on: the servers' answers are read before their sockets
 * time out, and Ctrl-C is heard.
 */
export class BatchedWriter {
  private pending: { fn: () => unknown; resolve: (v: any) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private turn: NodeJS.Immediate | null = null;
  /** when the oldest pending write came in */
  private firstAt = 0;
  /** how long the last commit took, in ms: the longest a write waits for batch-mates */
  private windowMs = 0.2;
  /** when the write lock was first found taken, while waiting for it */
  private busySince: number | null = null;

  constructor(
    private readonly store: Pick<DeliveryStore, 'immediate'>,
    private readonly batch: number,
    private readonly busyWaitMs = SEND_BUSY_WAIT_MS,
  ) {}

  submit<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve, reject });
      // While waiting for the lock, the next try takes everything in.
      if (this.busySince !== null) return;
      if (this.pending.length >= this.batch) this.flush();
      else if (!this.turn) {
        this.firstAt = performance.now();
        this.turn = setImmediate(() => this.lookAgain());
      }
    });
  }

  /** At the end of a turn (the servers' answers read meanwhile): commit, or wait one turn more. */
  private lookAgain(): void {
    this.turn = null;
    if (this.pending.length === 0) return;
    if (this.pending.length >= this.batch || performance.now() - this.firstAt >= this.windowMs) this.flush();
    else this.turn = setImmediate(() => this.lookAgain());
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.turn) clearImmediate(this.turn);
    this.timer = null;
    this.turn = null;
    const batch = this.pending;
    this.pending = [];
    let started = false;
    let results: unknown[];
    const t0 = performance.now();
    try {
      // IMMEDIATE: the write lock is waited for at the start (busy timeout), not refused half-way
      // when a read in the batch has to become a write while another process writes.
      results = this.store.immediate(() => {
        started = true;
        return batch.map(({ fn }) => fn());
      });
    } catch (err) {
      // Refused at BEGIN: nothing of the batch ran, so it can simply be tried again.
      if (!started && isDatabaseBusy(err)) {
        const now = Date.now();
        this.busySince ??= now;
        if (now - this.busySince < this.busyWaitMs) {
          this.pending = batch.concat(this.pending);
          this.timer = setTimeout(() => this.flush(), BUSY_RETRY_MS);
          return;
        }
      }
      this.busySince = null;
      batch.forEach((b) => b.reject(err));
      return;
    }
    this.busySince = null;
    this.windowMs = Math.min(MAX_WAIT_MS, performance.now() - t0);
    batch.forEach((b, i) => b.resolve(results[i]));
  }
}

/** The longest a write waits for batch-mates, however slow the commits. */
const MAX_WAIT_MS = 2;

/** The pause between two tries for a write lock another command holds. */
const BUSY_RETRY_MS = 50;
