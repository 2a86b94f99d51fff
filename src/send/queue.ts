import { ExitCode, MailerError } from '../errors.js';
import { BatchedWriter } from './batched-writer.js';
import { TransportPool } from './transport-pool.js';
import type { Catalog } from '../domain/catalog.js';
import { verpAddress } from '../mail/compose.js';
import { Packer } from './packer.js';
import { composeFor, dictionaryMessage, filesFor, outgoing, mailingContext, mailingTemplate, unsubscribeUrl, type MailingContext } from './mailing.js';
import type { DeliveryStore, Transport } from '../domain/ports.js';
import { DeliveryError } from '../domain/ports.js';
import { dataView, memberView, render } from './template.js';
import { Throttle } from './throttle.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../config/settings.js';
import { stopRequest } from './session.js';
import { LinkSigner, newToken } from '../domain/token.js';
import type { Member, Send, SentRecord, UnsentRecord } from '../domain/types.js';

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
  /** of the skipped, those whose files could not be attached (missing, or outside the folder): a run with any exits 1 */
  unattachable: number;
  /** files attached now that differ from the ones the same mail went out with before (a retry, a re-target) */
  attachmentsChanged: { send: number; name: string }[];
}

const PAGE = 512;

/** What a claimed send brings to the worker: the send, addressed as the member is now, and its member. */
export interface Claimed {
  send: Send;
  member: Member;
  token: string;
}

/** Where the worker takes its next send id from; undefined when there is no more. */
export type SendSource = () => number | undefined;

/** A mailing's queue, in id order, one page at a time (bounded memory whatever the list). */
export function mailingQueue(store: Pick<DeliveryStore, 'nextQueued'>, mailingId: number): SendSource {
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

/**
 * How often a run looks for queued system mails between its claims. One probe of an index that
 * is empty nearly always, at most this often: a system mail waits at most this long plus the
 * mails in hand, and a bulk run of thousands a second makes a few probes a second, not one a mail.
 */
export const SYSTEM_MAIL_CHECK_MS = 100;

/**
 * System mails queued while this run holds the database (another process could not send them),
 * taken ahead of the run's own source; the ids it handed out, so the source does not hand them
 * again when a system mailing is the run's own.
 */
export function systemMailSource(store: DeliveryStore, everyMs = SYSTEM_MAIL_CHECK_MS): { next: SendSource; handed: Set<number> } | null {
  const query = store.queuedSystemSends;
  if (!query) return null;
  const handed = new Set<number>();
  let page: number[] = [];
  let lookedAt = -Infinity;
  const next = (): number | undefined => {
    if (page.length === 0) {
      const t = performance.now();
      if (t - lookedAt < everyMs) return undefined;
      lookedAt = t;
      page = query(PAGE).filter((id) => !handed.has(id));
    }
    const id = page.shift();
    if (id !== undefined) handed.add(id);
    return id;
  };
  return { next, handed };
}

export function listSource(ids: number[]): SendSource {
  let i = 0;
  return () => ids[i++];
}

/**
 * The counters of a run, and the only place they change. `done` and a skip on the claim are
 * reported to `onProgress`, with the outcome as it stands.
 */
class Tally {
  readonly outcome: QueueOutcome = { done: 0, sent: 0, failed: 0, deferred: 0, skipped: 0, stopped: null, limitReached: false, interrupted: false, tooLarge: 0, unattachable: 0, attachmentsChanged: [] };
  // What --limit counts: sends claimed for the server. One skipped on the way (suppressed since
  // it was queued, a field empty) or put back (no server left) gives its place to the next.
  private taken = 0;
  // Sends given back because no usable server was left to take them.
  private givenBackCount = 0;

  constructor(private readonly limit: number | undefined, private readonly onProgress?: (progress: QueueProgress) => void) {}

  /** --limit sends are claimed for the server */
  get atLimit(): boolean {
    return this.limit !== undefined && this.taken >= this.limit;
  }

  get givenBack(): number {
    return this.givenBackCount;
  }

  /** a send claimed for the server, first or again for the next server */
  claimed(): void {
    this.taken++;
  }

  /** a claimed send goes back to the queue, not delivered (no server to take it, or the server failed): its place is free */
  putBack(): void {
    this.taken--;
  }

  /** the member could not be mailed at the claim: the send is finished at once */
  skippedOnClaim(): void {
    this.outcome.skipped++;
    this.outcome.done++;
    this.onProgress?.(this.outcome);
  }

  /** a claimed send that cannot be rendered or is too large: skipped, its place free */
  skipped(tooLarge: boolean, unattachable = false): void {
    this.outcome.skipped++;
    if (tooLarge) this.outcome.tooLarge++;
    if (unattachable) this.outcome.unattachable++;
    this.taken--;
  }

  sent(): void {
    this.outcome.sent++;
  }

  failed(): void {
    this.outcome.failed++;
  }

  deferred(): void {
    this.outcome.deferred++;
  }

  /** no usable server was left to take a send */
  gaveBack(): void {
    this.givenBackCount++;
  }

  /** a worker is through with a send it claimed */
  finished(): void {
    this.outcome.done++;
    this.onProgress?.(this.outcome);
  }

  /** At the end of the run: whether the limit ended it. */
  settleLimit(): void {
    // A worker that stopped at the limit may have seen others' skips give places back after it,
    // which they took until the queue ran out: then the limit did not end the run.
    this.outcome.limitReached &&= this.atLimit;
  }
}

/** What became of a claimed send in a worker's hands: what `record` writes. */
type Delivered =
  | { kind: 'sent'; sent: Omit<SentRecord, 'now'> }
  | { kind: 'unsent'; unsent: UnsentRecord }
  | { kind: 'skipped'; id: number; category: string; reason: string }
  /** claimed, but no server was there to take it */
  | { kind: 'requeue'; id: number }
  /** nothing left to write: recorded as interrupted already, or taken by nobody */
  | { kind: 'none' };

const NOTHING: Delivered = { kind: 'none' };

/** One call of deliverSends: claim, deliver and record, over what the workers share. */
class Delivery {
  readonly tally: Tally;
  /** an error a worker ran into: the others take nothing new */
  failure: { err: unknown } | null = null;
  private readonly throttle: Throttle;
  readonly pool: TransportPool;
  private readonly backoff: number[];
  private readonly maxBytes: number;
  // What every send of one mailing shares: made once per run, not per send.
  private readonly contexts = new Map<number, MailingContext>();
  private signer: LinkSigner | undefined;
  private readonly system: ReturnType<typeof systemMailSource>;
  /** compresses the messages for their rows off the main thread (with a store that keeps them so) */
  readonly packer: Packer | null;
  private readonly links = (sendId: number) => this.linkSigner().mailLinks(sendId);
  private linkSigner(): LinkSigner {
    return (this.signer ??= new LinkSigner(this.store.linkSecret()));
  }

  constructor(private readonly store: DeliveryStore, transports: Transport[], private readonly source: SendSource, private readonly opts: QueueOptions) {
    this.tally = new Tally(opts.limit, opts.onProgress);
    this.throttle = new Throttle(opts.intervalMs, opts.clock);
    this.pool = new TransportPool(transports, opts.maxConnectionErrors);
    this.backoff = opts.backoff ?? RETRY_BACKOFF_MS;
    this.maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.system = systemMailSource(store);
    this.packer = store.dictionary ? new Packer() : null;
  }

  private contextOf(mailingId: number): MailingContext {
    let ctx = this.contexts.get(mailingId);
    if (!ctx) {
      const mailing = this.store.mailing(mailingId)!;
      ctx = mailingContext(mailingTemplate(mailing), mailing.settings, mailing.test, this.linkSigner().mailingBoundary(mailingId));
      this.contexts.set(mailingId, ctx);
      const made = ctx;
      this.store.ensureDictionary?.(mailingId, () => dictionaryMessage(made, !!mailing.system));
      this.packer?.dictionary(mailingId, this.store.dictionary?.(mailingId) ?? null);
    }
    return ctx;
  }

  private next(): number | undefined {
    const { outcome } = this.tally;
    if (outcome.stopped || this.failure) return undefined;
    if (stopRequest.signal.aborted) {
      outcome.interrupted = true;
      return undefined;
    }
    if (this.tally.atLimit) {
      outcome.limitReached = true;
      return undefined;
    }
    if (!this.system) return this.source();
    const urgent = this.system.next();
    if (urgent !== undefined) return urgent;
    let id = this.source();
    while (id !== undefined && this.system.handed.has(id)) id = this.source();
    return id;
  }

  /** The run ends: no usable server is left. */
  stop(): void {
    const { outcome } = this.tally;
    if (outcome.stopped) return;
    const downs = this.pool.downs;
    outcome.stopped = downs.length === 1 ? downs[0] : {
      server: downs.map((d) => d.server).join(', '),
      category: [...new Set(downs.map((d) => d.category))].join(', '),
      message: downs.map((d) => `${d.server}: ${d.message}`).join('; '),
    };
  }

  /**
   * Claims the next sendable send and reads what it needs; runs inside a batched write. A send
   * whose member cannot be mailed now (address gone, invalid or suppressed since it was queued)
   * is skipped on the way, taking no place under --limit.
   */
  claim(): Claimed | null {
    for (let id = this.next(); id !== undefined; id = this.next()) {
      const row = this.store.claimForDelivery(id, newToken(id), this.opts.clock());
      if (row?.skip) {
        this.tally.skippedOnClaim();
      } else if (row) {
        this.tally.claimed();
        return row;
      }
    }
    return null;
  }

  /** Renders, composes and hands one claimed send over, and classifies the answer; returns what to record. */
  async deliver(claimed: Claimed): Promise<Delivered> {
    const { send, member, token } = claimed;
    const { store, opts, tally, pool } = this;
    const sendId = send.id;
    const ctx = this.contextOf(send.mailingId);
    const view = memberView(member, send.email, token, ctx.unsubscribeUrl === null ? '' : unsubscribeUrl(ctx, this.links(sendId)));
    const rendered = send.data
      ? render(ctx.template, dataView(view, JSON.parse(send.data)), { allowEmpty: ctx.allowEmpty, data: true })
      : render(ctx.template, view, { allowEmpty: ctx.allowEmpty });
    if (!rendered.ok) {
      tally.skipped(false);
      return { kind: 'skipped', id: sendId, category: rendered.category, reason: rendered.reason };
    }
    // Looked for again at the hand-over: a file may have gone since the check before the run.
    const found = filesFor(ctx, rendered.message);
    if (!found.ok) {
      tally.skipped(false, true);
      return { kind: 'skipped', id: sendId, category: found.category, reason: found.reason };
    }
    const composed = composeFor(ctx, rendered.message, { name: member.name, address: send.email! }, sendId, this.links, this.maxBytes, found.files);
    if (!composed.ok) {
      const { skip } = composed;
      tally.skipped(true);
      return { kind: 'skipped', id: sendId, category: skip.category, reason: skip.reason };
    }
    const { raw, files, messageId } = composed;
    // Compressed in the other thread while this mail is on its way to the server.
    const packing = this.packer?.pack(send.mailingId, raw);
    const message = outgoing(composed);
    const before = files ? this.attachedBefore(send) : [];
    const attached = () => {
      const records = files?.records() ?? undefined;
      for (const r of records ?? []) {
        const earlier = before.find((b) => b.name === r.name);
        if (earlier && earlier.sha256 !== r.sha256) tally.outcome.attachmentsChanged.push({ send: sendId, name: r.name });
      }
      return records;
    };
    const envelopeFrom = ctx.verp ? verpAddress(ctx.envelopeFrom, sendId) : ctx.envelopeFrom;
    const tried = new Set<Transport>();
    let transport = pool.pick(tried);
    if (!transport) {
      tally.putBack();
      return { kind: 'requeue', id: sendId };
    }
    while (transport) {
      tried.add(transport);
      await this.throttle.take();
      try {
        const response = await transport.deliver({ from: envelopeFrom, to: [send.email!] }, message, String(sendId));
        pool.succeeded(transport);
        tally.sent();
        const stored = (await packing) ?? undefined;
        return { kind: 'sent', sent: { id: sendId, email: send.email!, server: transport.description, messageId, raw, stored, response, attachments: attached() } };
      } catch (err) {
        const failure = err instanceof DeliveryError ? err : new DeliveryError({ message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
        const c = opts.catalog.classify(failure);
        const now = opts.clock();
        const base = { id: sendId, email: send.email!, server: transport.description, responseCode: c.responseCode, enhancedCode: c.enhancedCode, response: c.text, category: c.category, now };
        if (!c.serverLevel) {
          pool.succeeded(transport);
          const wait = this.backoff[send.attempts - 1];
          if (c.permanent || wait === undefined) {
            // A temporary failure past the last back-off step gives up with its last reason.
            const response = c.permanent ? c.text : `${c.text} (gave up after ${send.attempts} attempts)`;
            tally.failed();
            return { kind: 'unsent', unsent: { ...base, response, status: 'failed', permanent: c.permanent, retryAt: null, attachments: attached() } };
          }
          tally.deferred();
          return { kind: 'unsent', unsent: { ...base, status: 'deferred', permanent: false, retryAt: now + wait, attachments: attached() } };
        }
        // The server, not this mail, is the problem: back to the queue, giving its place under
        // --limit to the next; another server may take it, if a place is still free.
        store.recordInterrupted({ ...base, ...(c.category === 'maybe-sent' ? { maybeSent: raw, attachments: files?.records() ?? undefined } : {}) });
        tally.putBack();
        pool.failed(transport, c);
        if (!pool.usable) {
          this.stop();
          return NOTHING;
        }
        transport = pool.pick(tried);
        if (!transport) {
          tally.gaveBack();
          break;
        }
        if (tally.atLimit) return NOTHING;
        if (!store.claimSend(sendId, token, opts.clock())) return NOTHING;
        tally.claimed();
      }
    }
    return NOTHING;
  }

  /** The files this mail went out with before, if it did: a retry's own, or a re-target's original. */
  private attachedBefore(send: Send) {
    const earlier = this.store.attachments?.(send.id) ?? [];
    return earlier.length || send.retargetOf === null ? earlier : this.store.attachments?.(send.retargetOf) ?? [];
  }

  /** The write that records what became of a send; runs inside a batched write. */
  record(delivered: Delivered): void {
    const { store, opts } = this;
    switch (delivered.kind) {
      case 'sent': return store.recordSent({ ...delivered.sent, now: opts.clock() });
      case 'unsent': return store.recordUnsent(delivered.unsent);
      case 'skipped': return store.markSkipped(delivered.id, delivered.category, delivered.reason, opts.clock());
      case 'requeue': return store.requeue(delivered.id, opts.clock());
      case 'none': return;
    }
  }
}

/**
 * Works off sends: claim, render, compose, hand over, record — one send at a time per worker,
 * `concurrency` workers over pooled transports. A run can stop at any point: a claimed send
 * not yet handed over is found again by the next run.
 */
export async function deliverSends(store: DeliveryStore, transports: Transport[], source: SendSource, opts: QueueOptions): Promise<QueueOutcome> {
  const run = new Delivery(store, transports, source, opts);
  const { tally } = run;

  // Each worker records its last result and claims its next send in one write, and the writes
  // of all workers that are ready at the same moment share one transaction. A worker never holds
  // more than one send that is handed over but not yet recorded: a crash re-sends at most one
  // mail per worker that had written its message. Where a connection takes the next mail while
  // the last one is answered, that is two per connection (the one answered but not yet
  // recorded, and the one sent behind it) of the three it holds.
  // The writes of one event-loop turn share a commit (see BatchedWriter): a window of 2 ms
  // made every worker wait for batch-mates still waiting for their server, so that 4
  // connections ran in lock-step at the pace of the slowest.
  // A transport whose connections take the next mail while the last one is answered gets more
  // workers than connections: their mails wait in the pool's queue for the first free one.
  const perConnection = Math.max(1, ...transports.map((t) => t.mailsPerConnection ?? 1));
  const workers = Math.max(1, opts.concurrency) * perConnection;
  const writer = new BatchedWriter(store, workers);
  const worker = async () => {
    try {
      let claimed = await writer.submit(() => run.claim());
      while (claimed) {
        const delivered = await run.deliver(claimed);
        tally.finished();
        claimed = await writer.submit(() => {
          run.record(delivered);
          return run.claim();
        });
      }
    } catch (err) {
      // The other workers take nothing new and finish what they hold before the error ends the
      // run: the send lock and the transports are released only after the last of them.
      run.failure ??= { err };
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    run.packer?.close();
  }
  if (run.failure) throw run.failure.err;
  const { outcome } = tally;
  if (tally.givenBack > 0 && !outcome.stopped && !outcome.interrupted && run.pool.leaveOutFailing()) run.stop();
  tally.settleLimit();
  return outcome;
}

/** What a retry or a re-target says of the files it attached that are not the ones sent first. */
export function changedAttachmentNotes(outcome: QueueOutcome | null): string[] {
  return (outcome?.attachmentsChanged ?? []).map(({ send, name }) =>
    `send ${send}: the attachment ${name} changed since the mail was first sent; the current file was attached (mailer show ${send} lists its SHA-256)`);
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
