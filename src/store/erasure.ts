import type { Statements, Store } from './store.js';
import type { Row } from './queries.js';
import { ERASED_PREFIX, erasedHash } from '../domain/erasure.js';
import { normalizeAddress } from '../domain/address.js';

/** The sends of one member, as a subquery. */
const MEMBER_SENDS = `SELECT id FROM sends WHERE member_id = @member`;

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  secret: `SELECT key FROM erasure_secret WHERE id = 1`,
  forgottenByMember: `SELECT member_id, key_hash, reason, at FROM forgotten WHERE member_id = ?`,
  forgottenByKeyHash: `SELECT member_id, key_hash, reason, at FROM forgotten WHERE key_hash = ? ORDER BY at LIMIT 1`,
  forgottenByAddressHash: `
    SELECT f.member_id, f.key_hash, f.reason, f.at FROM forgotten_addresses a JOIN forgotten f ON f.member_id = a.member_id
    WHERE a.hash = ? ORDER BY f.at LIMIT 1`,
  forgottenCount: `SELECT count(*) AS n FROM forgotten`,
  /* Every hash an import must know: of the keys and of the addresses of erased members. */
  allHashes: `SELECT key_hash AS hash FROM forgotten UNION SELECT hash FROM forgotten_addresses`,
  /* Every address the member is known by: now, before (revoked ones too), and on their sends
     (test sends went to the operator's address, which is not the member's). */
  memberAddresses: `
    SELECT email FROM members WHERE id = @member AND email IS NOT NULL
    UNION SELECT email FROM addresses WHERE member_id = @member
    UNION SELECT email FROM sends WHERE member_id = @member AND test = 0 AND email IS NOT NULL`,
  /* Another member (not erased) with the address now: it is theirs too, and stays. */
  addressInUse: `SELECT 1 FROM members WHERE email = @email AND id != @member LIMIT 1`,
  countSends: `SELECT count(*) AS n FROM sends WHERE member_id = @member`,
  countMessages: `SELECT count(*) AS n FROM messages WHERE send_id IN (${MEMBER_SENDS})`,
  countTokens: `SELECT count(*) AS n FROM sends WHERE member_id = @member AND token IS NOT NULL`,
  countEvents: `SELECT count(*) AS n FROM events WHERE send_id IN (${MEMBER_SENDS})`,
  /* The outbox files the member's mails were written to (the outbox transport's reply names it). */
  outboxReplies: `
    SELECT DISTINCT response FROM attempts WHERE send_id IN (${MEMBER_SENDS}) AND response LIKE '250 written to %'`,
  addHash: `INSERT OR IGNORE INTO forgotten_addresses (hash, member_id, at) VALUES (@hash, @member, @now)`,
  /* Suppressions and opt-outs go on holding under the hash; their reason may quote the
     address or the name, so it is replaced. */
  hashSuppression: `
    INSERT OR REPLACE INTO suppressions (email, reason, created_at)
    SELECT @erased, 'suppressed before the member was erased', created_at FROM suppressions WHERE email = @email`,
  dropSuppression: `DELETE FROM suppressions WHERE email = @email`,
  hashOptOuts: `
    INSERT OR REPLACE INTO optouts (email, topic, reason, created_at)
    SELECT @erased, topic, 'opted out before the member was erased', created_at FROM optouts WHERE email = @email`,
  dropOptOuts: `DELETE FROM optouts WHERE email = @email`,
  /* Bounces not matched to a send name the address only. */
  scrubBouncesByRecipient: `UPDATE bounces SET recipient = NULL, diagnostic = NULL, source = '' WHERE recipient = @email`,
  scrubBounces: `UPDATE bounces SET recipient = NULL, diagnostic = NULL, source = '' WHERE send_id IN (${MEMBER_SENDS})`,
  /* A server's reply often quotes the address ("550 5.1.1 <anna@…>: unknown"): the code,
     enhanced code and category stay, the text goes. */
  scrubAttempts: `UPDATE attempts SET email = '', response = NULL WHERE send_id IN (${MEMBER_SENDS})`,
  deleteMessages: `DELETE FROM messages WHERE send_id IN (${MEMBER_SENDS})`,
  deleteAttachments: `DELETE FROM attachments WHERE send_id IN (${MEMBER_SENDS})`,
  /* The opens and unsubscribes are counted into the mailing's tally before they go. */
  tallyMemberEvents: `
    INSERT INTO event_tallies (mailing_id, kind, n)
    SELECT s.mailing_id, e.kind, count(*) FROM events e JOIN sends s ON s.id = e.send_id
    WHERE s.member_id = @member GROUP BY s.mailing_id, e.kind
    ON CONFLICT (mailing_id, kind) DO UPDATE SET n = n + excluded.n`,
  deleteEvents: `DELETE FROM events WHERE send_id IN (${MEMBER_SENDS})`,
  /* What has not gone out does not go out. */
  cancelUnsent: `
    UPDATE sends SET status = 'cancelled', retry_at = NULL, claimed_at = NULL, updated_at = @now
    WHERE member_id = @member AND status IN ('queued', 'deferred')`,
  /* Status, times, category and mailing stay (counts and stats stay true); the rest goes. */
  scrubSends: `
    UPDATE sends SET email = NULL, reason = NULL, token = NULL, data = NULL, idem_key = NULL
    WHERE member_id = @member`,
  /* The row stays for its sends, emptied; no selection takes it (listed = 0). The address
     history trigger writes the old address into addresses: deleted after this. */
  scrubMember: `
    UPDATE members SET key = 'forgotten:' || id, email = NULL, name = NULL, fields = '{}', email_problem = 'no-address',
      email_since = NULL, import_id = NULL, listed = 0, updated_at = @now
    WHERE id = @member`,
  deleteAddresses: `DELETE FROM addresses WHERE member_id = @member`,
  insertForgotten: `INSERT INTO forgotten (member_id, key_hash, reason, at) VALUES (@member, @keyHash, @reason, @now)`,
  /* An address erased once is back (import --include-forgotten, a system mail, a re-target):
     what was kept under its hash holds for it in its own form again. */
  restoreSuppression: `
    INSERT OR IGNORE INTO suppressions (email, reason, created_at)
    SELECT @email, 'suppressed before the member was erased', created_at FROM suppressions WHERE email = @erased`,
  restoreOptOuts: `
    INSERT OR IGNORE INTO optouts (email, topic, reason, created_at)
    SELECT @email, topic, 'opted out before the member was erased', created_at FROM optouts WHERE email = @erased`,

  /* prune */
  mailingsForPrune: `SELECT id, template FROM mailings ORDER BY id`,
  /* The latest content prune: its cut-off, and the oldest send it left to its run. */
  lastContentPrune: `SELECT before, held_from FROM prunes WHERE mailing_id = @mailing AND what = 'messages' ORDER BY at DESC, rowid DESC LIMIT 1`,
  heldFrom: `SELECT min(created_at) AS at FROM sends WHERE mailing_id = @mailing AND created_at >= @from AND created_at < @before AND status IN ('queued', 'deferred')`,
  /* A send tried again (retry) after a prune passed it: the next prune starts no later than it. */
  reopenForPrune: `
    UPDATE prunes SET held_from = min(coalesce(held_from, before), s.created_at)
    FROM (SELECT mailing_id, created_at FROM sends WHERE id = @id) AS s
    WHERE prunes.mailing_id = s.mailing_id AND prunes.what = 'messages' AND prunes.before > s.created_at`,
  /* Sends of a mailing made in [from, before) (the index sends_mailing), still in hand of no one. */
  /* Sends, not rows: a system mail with both a stored message and its data counts once. */
  countContent: `
    SELECT count(*) AS n FROM sends s
    WHERE s.mailing_id = @mailing AND s.created_at >= @from AND s.created_at < @before AND s.status NOT IN ('queued', 'deferred')
      AND (s.data IS NOT NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.send_id = s.id))`,
  pruneMessages: `
    DELETE FROM messages WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at >= @from AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  pruneAttachments: `
    DELETE FROM attachments WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at >= @from AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  pruneData: `
    UPDATE sends SET data = NULL WHERE mailing_id = @mailing AND created_at >= @from AND created_at < @before AND data IS NOT NULL AND status NOT IN ('queued', 'deferred')`,
  countLog: `SELECT count(*) AS n FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred')`,
  tallySends: `
    INSERT INTO mailing_tallies (mailing_id, status, category, n)
    SELECT mailing_id, status, coalesce(category, ''), count(*) FROM sends
    WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred') GROUP BY status, coalesce(category, '')
    ON CONFLICT (mailing_id, status, category) DO UPDATE SET n = n + excluded.n`,
  tallyEvents: `
    INSERT INTO event_tallies (mailing_id, kind, n)
    SELECT @mailing, e.kind, count(*) FROM events e
    WHERE e.send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred')) GROUP BY e.kind
    ON CONFLICT (mailing_id, kind) DO UPDATE SET n = n + excluded.n`,
  logEvents: `DELETE FROM events WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logAttempts: `DELETE FROM attempts WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logMessages: `DELETE FROM messages WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logAttachments: `DELETE FROM attachments WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logBounces: `DELETE FROM bounces WHERE send_id IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  /* A later send of a re-target chain keeps its row; its link to a removed one goes. */
  logUnlinkOf: `UPDATE sends SET retarget_of = NULL WHERE retarget_of IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logUnlinkTo: `UPDATE sends SET retargeted_to = NULL WHERE retargeted_to IN (SELECT id FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred'))`,
  logSends: `DELETE FROM sends WHERE mailing_id = @mailing AND created_at < @before AND status NOT IN ('queued', 'deferred')`,
  insertPrune: `INSERT INTO prunes (mailing_id, what, before, at, removed, held_from) VALUES (@mailing, @what, @before, @now, @removed, @heldFrom)`,
  /* The first prune that took a send's content: one whose cut-off passed the send after it was
     sent (a send still queued or deferred then was left to its run, and pruned by a later one). */
  contentRemoved: `
    SELECT min(p.at) AS at FROM prunes p JOIN sends s ON s.mailing_id = p.mailing_id
    WHERE s.id = ? AND p.what = 'messages' AND p.before > s.created_at AND s.status NOT IN ('queued', 'deferred')
      AND p.at >= coalesce(s.sent_at, (SELECT max(a.at) FROM attempts a WHERE a.send_id = s.id), s.created_at)`,
} as const;

export interface Forgotten {
  memberId: number;
  reason: string;
  at: number;
}

/** Counts of what forget erases (or, dry, would erase). */
export interface ErasureCounts {
  addresses: number;
  sends: number;
  messages: number;
  tokens: number;
  events: number;
}

/**
 * Data protection: forgetting a member (their values removed, keyed hashes kept), what stands
 * for them afterwards, and prune by retention with the per-mailing tallies that keep counts.
 */
export class Erasure {
  private readonly stmt: Statements<typeof SQL>;

  constructor(private readonly store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  secret(): Buffer {
    return (this.stmt.secret.get() as Row).key;
  }

  forgottenMember(memberId: number): Forgotten | undefined {
    return toForgotten(this.stmt.forgottenByMember.get(memberId) as Row | undefined);
  }

  forgottenBy(hash: { key?: string; address?: string }): Forgotten | undefined {
    const byKey = hash.key ? toForgotten(this.stmt.forgottenByKeyHash.get(hash.key) as Row | undefined) : undefined;
    return byKey ?? (hash.address ? toForgotten(this.stmt.forgottenByAddressHash.get(hash.address) as Row | undefined) : undefined);
  }

  /** The erasure of a member once known by this id or address, if they were erased. */
  forgottenAs(who: string): Forgotten | undefined {
    if (!this.anyForgotten()) return undefined;
    const secret = this.secret();
    const value = who.trim();
    return this.forgottenBy({ key: erasedHash(secret, 'key', value), address: erasedHash(secret, 'address', normalizeAddress(value)) })
      ?? this.forgottenBy({ key: erasedHash(secret, 'key', value.toLowerCase()) });
  }

  anyForgotten(): boolean {
    return (this.stmt.forgottenCount.get() as Row).n > 0;
  }

  allHashes(): string[] {
    return (this.stmt.allHashes.all() as Row[]).map((r) => r.hash);
  }

  memberAddresses(memberId: number): string[] {
    return (this.stmt.memberAddresses.all({ member: memberId }) as Row[]).map((r) => r.email);
  }

  addressInUse(email: string, memberId: number): boolean {
    return this.stmt.addressInUse.get({ email, member: memberId }) !== undefined;
  }

  counts(memberId: number, addresses: number): ErasureCounts {
    const n = (s: keyof typeof SQL) => (this.stmt[s].get({ member: memberId }) as Row).n as number;
    return { addresses, sends: n('countSends'), messages: n('countMessages'), tokens: n('countTokens'), events: n('countEvents') };
  }

  /** The outbox files the member's mails were written to, as the replies named them. */
  outboxFiles(memberId: number): string[] {
    return (this.stmt.outboxReplies.all({ member: memberId }) as Row[]).map((r) => String(r.response).slice('250 written to '.length));
  }

  /**
   * Erases the member in one transaction. `hashes`: each erased address with its keyed hash;
   * `shared`: addresses another member has now, whose suppressions stay as they are.
   */
  forget(r: { member: number; keyHash: string; reason: string; now: number; hashes: { email: string; hash: string; shared: boolean }[] }): void {
    this.store.transaction(() => {
      const p = { member: r.member, now: r.now };
      for (const h of r.hashes) {
        if (!h.shared) {
          const q = { email: h.email, erased: ERASED_PREFIX + h.hash };
          this.stmt.addHash.run({ hash: h.hash, member: r.member, now: r.now });
          this.stmt.hashSuppression.run(q);
          this.stmt.dropSuppression.run({ email: h.email });
          this.stmt.hashOptOuts.run(q);
          this.stmt.dropOptOuts.run({ email: h.email });
        }
        this.stmt.scrubBouncesByRecipient.run({ email: h.email });
      }
      this.stmt.scrubBounces.run({ member: r.member });
      this.stmt.scrubAttempts.run({ member: r.member });
      this.stmt.deleteMessages.run({ member: r.member });
      this.stmt.deleteAttachments.run({ member: r.member });
      this.stmt.tallyMemberEvents.run({ member: r.member });
      this.stmt.deleteEvents.run({ member: r.member });
      this.stmt.cancelUnsent.run(p);
      this.stmt.scrubSends.run({ member: r.member });
      this.stmt.scrubMember.run(p);
      this.stmt.deleteAddresses.run({ member: r.member });
      this.stmt.insertForgotten.run({ member: r.member, keyHash: r.keyHash, reason: r.reason, now: r.now });
    });
  }

  /** The suppressions and opt-outs kept under an address's hash hold for the address again. */
  restoreSuppressions(email: string, hash: string): void {
    const q = { email, erased: ERASED_PREFIX + hash };
    this.stmt.restoreSuppression.run(q);
    this.stmt.restoreOptOuts.run(q);
  }

  /** An address comes in (a system mail to it, a re-target): if it was erased, its suppressions hold for it again. */
  restoreIfErased(email: string): void {
    if (!this.anyForgotten()) return;
    this.restoreSuppressions(email, erasedHash(this.secret(), 'address', email));
  }

  mailingsForPrune(): { id: number; template: string }[] {
    return this.stmt.mailingsForPrune.all() as { id: number; template: string }[];
  }

  /**
   * Removes the stored messages, their attachment records and system-mail data of a mailing's
   * sends made before `before`, from where the last prune of it stopped: its cut-off, or the
   * oldest send it left because it was still to be sent. Returns how many.
   */
  pruneContent(mailing: number, before: number, now: number, dryRun: boolean): number {
    const last = this.stmt.lastContentPrune.get({ mailing }) as Row | undefined;
    const from = last ? ((last.held_from ?? last.before) as number) : 0;
    if (from >= before) return 0;
    const q = { mailing, from, before };
    const removed = (this.stmt.countContent.get(q) as Row).n as number;
    if (dryRun || removed === 0) return removed;
    this.store.transaction(() => {
      this.stmt.pruneMessages.run(q);
      this.stmt.pruneAttachments.run(q);
      this.stmt.pruneData.run(q);
      const heldFrom = (this.stmt.heldFrom.get(q) as Row).at ?? null;
      this.stmt.insertPrune.run({ mailing, what: 'messages', before, now, removed, heldFrom });
    });
    return removed;
  }

  /** Removes a mailing's send rows made before `before`, with their attempts, events, bounces and messages; the counts go into its tally. */
  pruneLog(mailing: number, before: number, now: number, dryRun: boolean): number {
    const q = { mailing, before };
    const removed = (this.stmt.countLog.get(q) as Row).n as number;
    if (dryRun || removed === 0) return removed;
    this.store.transaction(() => {
      this.stmt.tallySends.run(q);
      this.stmt.tallyEvents.run(q);
      this.stmt.logEvents.run(q);
      this.stmt.logAttempts.run(q);
      this.stmt.logMessages.run(q);
      this.stmt.logAttachments.run(q);
      this.stmt.logBounces.run(q);
      this.stmt.logUnlinkOf.run(q);
      this.stmt.logUnlinkTo.run(q);
      this.stmt.logSends.run(q);
      this.stmt.insertPrune.run({ mailing, what: 'log', before, now, removed, heldFrom: null });
    });
    return removed;
  }

  /** A send tried again after a prune passed it (retry): its content is the next prune's again. */
  reopenForPrune(sendId: number): void {
    this.stmt.reopenForPrune.run({ id: sendId });
  }

  /** When prune removed a send's message and data; null when it has not. */
  contentRemovedAt(sendId: number): number | null {
    return (this.stmt.contentRemoved.get(sendId) as Row | undefined)?.at ?? null;
  }
}

function toForgotten(r: Row | undefined): Forgotten | undefined {
  return r ? { memberId: r.member_id, reason: r.reason, at: r.at } : undefined;
}
