import { ExitCode, MailerError, SEND_BUSY_WAIT_MS, isDatabaseBusy } from '../errors.js';
import type { Store } from '../store/store.js';
import { BUILT_IN_RULES, Catalog, type Classification } from './catalog.js';
import { verpAddress } from './compose.js';
import { composeFor, mailingContext, mailingTemplate, type MailingContext } from './mailing.js';
import type { Transport } from './ports.js';
import { DeliveryError } from './ports.js';
import { memberView, render } from './template.js';
import { parseRate, Throttle } from './throttle.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type Settings } from './settings.js';
import { stopRequest } from './session.js';
import { LinkSigner, newToken } from './token.js';
import type { Mailing, Member, Send } from './types.js';

/** Back-off of a deferred send before it is tried again: greylisting often holds a new sender until the next morning. */
export const RETRY_BACKOFF_MS = [15 * 60_000, 60 * 60_000, 4 * 3_600_000, 12 * 3_600_000, 24 * 3_600_000];


export interface QueueOptions {
  concurrency: number;
  /** milliseconds between two sends; 0 for as fast as the server takes them */
  intervalMs: number;
  /** at most this many sends handed over in this run */
  limit?: number;
  /** consecutive connection errors that leave a server out */
  maxConnectionErrors: number;
  /** waits before each retry of a deferred send; past the last one it fails */
  backoff?: number[];
  /** a mail whose encoded message is larger is skipped as too-large (default 10,000,000) */
  maxMessageBytes?: number;
  catalog: Catalog;
  clock: () => number;
  onProgress?: (progress: QueueProgress) => void;
}

export interface QueueProgress {
  done: number;
  sent: number;
  failed: number;
  deferred: number;
  skipped: number;
}

export interface QueueOutcome extends QueueProgress {
  /** why the run stopped early, if the server became unusable */
  stopped: { category: string; message: string; server: string } | null;
  limitReached: boolean;
  /** the process was asked to stop; the sends not yet taken stay queued */
  interrupted: boolean;
  /** of the skipped, those over maxMessageBytes: a run with any exits 1 */
  tooLarge: number;
}

const PAGE = 512;

/** What a claimed send brings to the worker: the send, addressed as the member is now, and its member. */
export interface Claimed {
  send: Send;
  member: Member;
  token: string;
}

/**
 * Groups the small writes of many workers into one transaction (group commit): writes wait
 * until `batch` of them are in, or `waitMs` has passed, then all commit together. A write that
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
  /** when the write lock was first found taken, while waiting for it */
  private busySince: number | null = null;

  constructor(
    private readonly store: Store,
    private readonly batch: number,
    private readonly waitMs: number,
    private readonly busyWaitMs = SEND_BUSY_WAIT_MS,
  ) {}

  submit<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve, reject });
      // While waiting for the lock, the next try takes everything in.
      if (this.busySince !== null) return;
      if (this.pending.length >= this.batch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.waitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
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

/** Where the worker takes its next send id from; undefined when there is no more. */
export type SendSource = () => number | undefined;

/** A mailing's queue, in id order, one page at a time (bounded memory whatever the list). */
export function mailingQueue(store: Store, mailingId: number): SendSource {
  let page: number[] = [];
  let lastId = 0;
  return () => {
    if (page.length === 0) {
      page = store.nextQueued(mailingId, lastId, PAGE);
      if (page.length === 0) return undefined;
      lastId = page[page.length - 1];
    }
    return page.shift();
  };
}

export function listSource(ids: number[]): SendSource {
  let i = 0;
  return () => ids[i++];
}

/**
 * The servers of a run. Sends are spread over the usable ones in turn; a server that fails
 * outright (refused, DNS, TLS, login) or gives `maxErrors` connection errors in a row is left
 * out for the rest of the run, and the run stops only when none is left.
 */
export class TransportPool {
  private readonly entries: { transport: Transport; errors: number; last: Classification | null; down: Classification | null }[];
  private cursor = 0;

  constructor(transports: Transport[], private readonly maxErrors: number) {
    this.entries = transports.map((transport) => ({ transport, errors: 0, last: null, down: null }));
  }

  /** The next usable server not yet tried for this send. */
  pick(tried: ReadonlySet<Transport>): Transport | undefined {
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[(this.cursor + i) % this.entries.length];
      if (!entry.down && !tried.has(entry.transport)) {
        this.cursor = (this.cursor + i + 1) % this.entries.length;
        return entry.transport;
      }
    }
    return undefined;
  }

  succeeded(transport: Transport): void {
    const entry = this.entry(transport);
    entry.errors = 0;
    entry.last = null;
  }

  /** Returns true if the server is now left out. */
  failed(transport: Transport, c: Classification): boolean {
    const entry = this.entry(transport);
    entry.errors++;
    entry.last = c;
    if (c.fatal || entry.errors >= this.maxErrors) entry.down ??= c;
    return entry.down !== null;
  }

  /**
   * At the end of a run that gave sends back: a server whose last word was a connection failure
   * is left out too, though it had fewer than `maxErrors` of them. A small mailing's few sends
   * (each tried once, on every server) end there as well as a large one's five in a row.
   * Returns true if none is usable then.
   */
  leaveOutFailing(): boolean {
    for (const e of this.entries) if (e.last) e.down ??= e.last;
    return !this.usable;
  }

  get usable(): boolean {
    return this.entries.some((e) => !e.down);
  }

  get downs(): { server: string; category: string; message: string }[] {
    return this.entries.filter((e) => e.down).map((e) => ({ server: e.transport.description, category: e.down!.category, message: e.down!.text }));
  }

  private entry(transport: Transport) {
    return this.entries.find((e) => e.transport === transport)!;
  }
}

/**
 * Works off sends: claim, render, compose, hand over, record — one send at a time per worker,
 * `concurrency` workers over pooled transports. A run can stop at any point: a claimed send
 * not yet handed over is found again by the next run.
 */
export async function deliverSends(store: Store, transports: Transport[], source: SendSource, opts: QueueOptions): Promise<QueueOutcome> {
  const throttle = new Throttle(opts.intervalMs, opts.clock);
  const pool = new TransportPool(transports, opts.maxConnectionErrors);
  const backoff = opts.backoff ?? RETRY_BACKOFF_MS;
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  // What every send of one mailing shares: made once per run, not per send.
  const contexts = new Map<number, MailingContext>();
  const contextOf = (mailingId: number) => {
    let ctx = contexts.get(mailingId);
    if (!ctx) {
      const mailing = store.mailing(mailingId)!;
      ctx = mailingContext(mailingTemplate(mailing), mailing.settings, mailing.test);
      contexts.set(mailingId, ctx);
    }
    return ctx;
  };

  let signer: LinkSigner | undefined;
  const links = (sendId: number) => (signer ??= new LinkSigner(store.linkSecret())).mailLinks(sendId);

  const outcome: QueueOutcome = { done: 0, sent: 0, failed: 0, deferred: 0, skipped: 0, stopped: null, limitReached: false, interrupted: false, tooLarge: 0 };
  // Sends given back because no usable server was left to take them.
  let givenBack = 0;
  // What --limit counts: sends claimed for the server. One skipped on the way (suppressed since
  // it was queued, a field empty) or put back (no server left) gives its place to the next.
  let taken = 0;

  let failure: { err: unknown } | null = null;
  const next = (): number | undefined => {
    if (outcome.stopped || failure) return undefined;
    if (stopRequest.signal.aborted) {
      outcome.interrupted = true;
      return undefined;
    }
    if (opts.limit !== undefined && taken >= opts.limit) {
      outcome.limitReached = true;
      return undefined;
    }
    return source();
  };

  const stop = () => {
    if (outcome.stopped) return;
    const downs = pool.downs;
    outcome.stopped = downs.length === 1 ? downs[0] : {
      server: downs.map((d) => d.server).join(', '),
      category: [...new Set(downs.map((d) => d.category))].join(', '),
      message: downs.map((d) => `${d.server}: ${d.message}`).join('; '),
    };
  };

  /**
   * Claims the next sendable send and reads what it needs; runs inside a batched write. A send
   * whose member cannot be mailed now (address gone, invalid or suppressed since it was queued)
   * is skipped on the way, taking no place under --limit.
   */
  const claimNext = (): Claimed | null => {
    for (let id = next(); id !== undefined; id = next()) {
      const row = store.claimForDelivery(id, newToken(id), opts.clock());
      if (row?.skip) {
        outcome.skipped++;
        outcome.done++;
        opts.onProgress?.(outcome);
      } else if (row) {
        taken++;
        return row;
      }
    }
    return null;
  };

  type Record = () => void;

  /** Renders, composes and hands one claimed send over; returns the write that records the result. */
  const deliver = async (claimed: Claimed): Promise<Record> => {
    const { send, member, token } = claimed;
    const sendId = send.id;
    const ctx = contextOf(send.mailingId);
    const rendered = render(ctx.template, memberView(member, send.email, token), { allowEmpty: ctx.allowEmpty });
    if (!rendered.ok) {
      outcome.skipped++;
      taken--;
      return () => store.markSkipped(sendId, rendered.category, rendered.reason, opts.clock());
    }
    const composed = composeFor(ctx, rendered.message, { name: member.name, address: send.email! }, sendId, links, maxBytes);
    if (!composed.ok) {
      const { skip } = composed;
      outcome.skipped++;
      outcome.tooLarge++;
      taken--;
      return () => store.markSkipped(sendId, skip.category, skip.reason, opts.clock());
    }
    const { raw, messageId } = composed;
    const envelopeFrom = ctx.verp ? verpAddress(ctx.envelopeFrom, sendId) : ctx.envelopeFrom;
    const tried = new Set<Transport>();
    let transport = pool.pick(tried);
    if (!transport) {
      taken--;
      return () => store.requeue(sendId, opts.clock());
    }
    while (transport) {
      tried.add(transport);
      await throttle.take();
      try {
        const response = await transport.deliver({ from: envelopeFrom, to: [send.email!] }, raw, String(sendId));
        pool.succeeded(transport);
        outcome.sent++;
        const server = transport.description;
        return () => store.recordSent({ id: sendId, email: send.email!, server, messageId, raw, response, now: opts.clock() });
      } catch (err) {
        const failure = err instanceof DeliveryError ? err : new DeliveryError({ message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
        const c = opts.catalog.classify(failure);
        const now = opts.clock();
        const base = { id: sendId, email: send.email!, server: transport.description, responseCode: c.responseCode, enhancedCode: c.enhancedCode, response: c.text, category: c.category, now };
        if (!c.serverLevel) {
          pool.succeeded(transport);
          const wait = backoff[send.attempts - 1];
          if (c.permanent || wait === undefined) {
            // A temporary failure past the last back-off step gives up with its last reason.
            const response = c.permanent ? c.text : `${c.text} (gave up after ${send.attempts} attempts)`;
            outcome.failed++;
            return () => store.recordUnsent({ ...base, response, status: 'failed', permanent: c.permanent, retryAt: null });
          }
          outcome.deferred++;
          return () => store.recordUnsent({ ...base, status: 'deferred', permanent: false, retryAt: now + wait });
        }
        // The server, not this mail, is the problem: back to the queue, giving its place under
        // --limit to the next; another server may take it, if a place is still free.
        store.recordInterrupted({ ...base, maybeSent: c.category === 'maybe-sent' ? raw : undefined });
        taken--;
        pool.failed(transport, c);
        if (!pool.usable) {
          stop();
          return () => {};
        }
        transport = pool.pick(tried);
        if (!transport) {
          givenBack++;
          break;
        }
        if (opts.limit !== undefined && taken >= opts.limit) return () => {};
        if (!store.claimSend(sendId, token, opts.clock())) return () => {};
        taken++;
      }
    }
    return () => {};
  };

  // Each worker records its last result and claims its next send in one write, and the writes
  // of all workers that are ready at the same moment share one transaction. A worker never holds
  // more than one send that is handed over but not yet recorded: a crash re-sends at most
  // `concurrency` mails.
  // Measured (20,000 mails to smtp-sink, concurrency 16): one commit per write 2,470 msg/s,
  // grouped per event-loop turn (~3 a commit) 3,350, grouped by concurrency within 2 ms 4,070.
  const writer = new BatchedWriter(store, Math.max(1, opts.concurrency), 2);
  const worker = async () => {
    try {
      let claimed = await writer.submit(claimNext);
      while (claimed) {
        const record = await deliver(claimed);
        outcome.done++;
        opts.onProgress?.(outcome);
        claimed = await writer.submit(() => {
          record();
          return claimNext();
        });
      }
    } catch (err) {
      // The other workers take nothing new and finish what they hold before the error ends the
      // run: the send lock and the transports are released only after the last of them.
      failure ??= { err };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  if (failure) throw (failure as { err: unknown }).err;
  if (givenBack > 0 && !outcome.stopped && !outcome.interrupted && pool.leaveOutFailing()) stop();
  // A worker that stopped at the limit may have seen others' skips give places back after it,
  // which they took until the queue ran out: then the limit did not end the run.
  outcome.limitReached &&= taken >= opts.limit!;
  return outcome;
}

/**
 * Exit 3 for a run the server stopped: what cannot be used and why, `left` what stays where it
 * is, and `next` the command that continues once `mailer check` passes.
 */
export function serverStopped(stopped: NonNullable<QueueOutcome['stopped']>, left: string, next: string): MailerError {
  return new MailerError(`stopped: the mail server ${stopped.server} cannot be used (${stopped.category}): ${stopped.message}. ${left}`, {
    exitCode: ExitCode.serverUnusable,
    hint: `\`mailer check\` tests the server step by step; when it works again: ${next}`,
  });
}

/** The queue options every sending command shares, from the settings. */
export function queueSettings(store: Store, settings: Settings, clock: () => number) {
  return {
    concurrency: settings.concurrency ?? 4,
    intervalMs: settings.rate ? parseRate(settings.rate) : 0,
    maxConnectionErrors: 5,
    backoff: settings.retryBackoff,
    maxMessageBytes: settings.maxMessageBytes,
    catalog: catalogOf(store),
    clock,
  };
}

/** The catalog as this database knows it: the operator's rules first, then the built-in ones. */
export function catalogOf(store: Store): Catalog {
  return new Catalog([...store.errorRules(), ...BUILT_IN_RULES]);
}
