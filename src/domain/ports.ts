import type { DeliveryFailure } from './catalog.js';
import type { AttachmentRecord, ClaimResult, InterruptedRecord, Mailing, SentRecord, UnsentRecord } from './types.js';

/**
 * What the send engine needs from the database: claiming a send, recording what became of it,
 * and the little it reads besides. Every write runs inside `immediate`, where the engine groups
 * the writes of its workers.
 */
export interface DeliveryStore {
  /**
   * Claims a send and reads its member as they are now; a member who cannot be mailed at their
   * address now is skipped (and so recorded) instead. Undefined when it is no longer sendable.
   */
  claimForDelivery(id: number, token: string, now: number): ClaimResult | undefined;
  /** Claims a send again (for the next server); its token, or undefined if no longer sendable. */
  claimSend(id: number, token: string, now: number): string | undefined;
  markSkipped(id: number, category: string, reason: string, now: number): void;
  /** A claimed send that was not handed over goes back to the queue as it was. */
  requeue(id: number, now: number): void;
  recordSent(r: SentRecord): void;
  recordUnsent(r: UnsentRecord): void;
  /** Back to the queue, the attempt kept; with `maybeSent`, the message kept and marked as possibly sent twice. */
  recordInterrupted(r: InterruptedRecord): void;
  mailing(id: number): Mailing | undefined;
  /** the files a send's stored message went out with, to tell a changed one */
  attachments?(sendId: number): AttachmentRecord[];
  /**
   * Gives a mailing the preset dictionary its stored messages are compressed against, unless it
   * has one; `make` composes it. Outside a batched write: it commits on its own.
   */
  ensureDictionary?(mailing: number, make: () => Buffer | null): void;
  /** that dictionary, or null when the mailing has none */
  dictionary?(mailing: number): Buffer | null;
  /** the key that signs the links in a mail */
  linkSecret(): Buffer;
  /**
   * Queued system mails not in any run's hands, oldest first, at most `limit`: a run delivers
   * them before its next mail. Without it, a run takes only what its source gives.
   */
  queuedSystemSends?(limit: number): number[];
  /** A mailing's queued send ids after `after`, in id order, at most `limit`. */
  nextQueued(mailing: number, after: number, limit: number): number[];
  /**
   * Runs `fn` in one transaction that takes the write lock at its start (BEGIN IMMEDIATE); an
   * error thrown inside takes all of it back.
   */
  immediate<T>(fn: () => T): T;
}

/** What the send queue needs from a way of delivering mail: SMTP, or the outbox folder. */
export interface Transport {
  /** where mail goes, without secrets: `smtp://mail.example.org:587`, `outbox ./outbox` */
  readonly description: string;
  readonly kind: 'smtp' | 'outbox';
  /**
   * How many mails to hand it per connection at once: 3 where a connection writes the next
   * mail's envelope behind the last message (one being sent, one with its envelope written
   * behind it, one waiting its turn: one round trip a mail, instead of two); 1 if unset.
   */
  readonly mailsPerConnection?: number;
  /**
   * Hands one finished message over; resolves with the server's reply, or throws a
   * DeliveryError. `label` names it where a name is needed (the outbox file): the send id.
   */
  deliver(envelope: Envelope, raw: Buffer | OutgoingMessage, label: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A message whose attachments are read from their files while it is handed over, so a mailing
 * never holds more than the mails in hand; `size` is its exact length in bytes.
 */
export interface OutgoingMessage {
  readonly size: number;
  chunks(): AsyncIterable<Buffer>;
}

export interface Envelope {
  from: string;
  to: string[];
}

/** A failed hand-over, with the fields the error catalog reads. */
export class DeliveryError extends Error implements DeliveryFailure {
  readonly code?: string;
  readonly command?: string;
  readonly responseCode?: number;
  readonly response?: string;
  readonly afterMessage?: boolean;

  constructor(failure: DeliveryFailure) {
    super(failure.message);
    this.afterMessage = failure.afterMessage;
    this.code = failure.code;
    this.command = failure.command;
    this.responseCode = failure.responseCode;
    this.response = failure.response;
  }
}

/**
 * What the deliverability check asks of DNS. Null: the name does not exist (NXDOMAIN); an
 * empty list: it exists without records of that type. Both are findings. A resolver that cannot
 * be reached (refused, timed out, server failure) throws DnsUnreachable instead.
 */
export interface DnsLookup {
  /** each TXT record's strings joined (RFC 7208 §3.3) */
  txt(name: string): Promise<string[] | null>;
  mx(name: string): Promise<{ exchange: string; priority: number }[] | null>;
  /** A and AAAA */
  addresses(name: string): Promise<string[] | null>;
  /** PTR of an address */
  reverse(address: string): Promise<string[] | null>;
}

export class DnsUnreachable extends Error {
  constructor(readonly query: string, readonly code: string, readonly servers: string[]) {
    super(`DNS cannot be reached: ${servers.join(', ') || 'the system resolver'} gave no answer for ${query} (${code})`);
    this.name = 'DnsUnreachable';
  }
}
