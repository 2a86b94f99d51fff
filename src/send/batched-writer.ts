import { SEND_BUSY_WAIT_MS, isDatabaseBusy } from '../errors.js';
import type { DeliveryStore } from '../domain/ports.js';

/**
 * Groups the small writes of many workers into one transaction (group commit): the writes
 * handed in during one turn of the event loop commit together at its end, or at once when all
 * `batch` workers are in. No write waits for a batch-mate that is still waiting for its
 * server: a window of 2 ms did that, and capped 4 connections on loopback at the pace of the
 * slowest of the four (about 2,500 msg/s, where 16 reached 7,000). Under load a turn carries
 * the outcomes of many workers, so batches grow by themselves where commits cost the most. A write that
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
      else this.turn ??= setImmediate(() => this.flush());
    });
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
    batch.forEach((b, i) => b.resolve(results[i]));
  }
}

/** The pause between two tries for a write lock another command holds. */
const BUSY_RETRY_MS = 50;
