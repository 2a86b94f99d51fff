import { MailerError, badInput, isDatabaseBusy } from '../errors.js';
import type { AttachmentRecord, Attempt, ClaimResult, InterruptedRecord, Member, Send, SentRecord, UnsentRecord } from '../domain/types.js';
import type { Statements, Store } from './store.js';
import { SKIP_CATEGORY, SKIP_JOINS, SKIP_REASON, type Row } from './queries.js';
import { MAX_DICTIONARY_BYTES, isPlain, packMessage, unpackMessage } from './message-codec.js';

/** The statuses a claim takes a send from (as claimSend's WHERE). */
const CLAIMABLE = ['queued', 'deferred', 'failed'];

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  /* The next page of work, in id order (rows a killed run had in hand are among them). */
  nextQueued: `
    SELECT s.id FROM sends s
    WHERE s.mailing_id = @mailing AND s.status = 'queued' AND s.category IS NULL AND s.id > @after
    ORDER BY s.id LIMIT @limit`,
  /* Claimed before it goes to the server: a crash after this leaves claimed_at set, never a
     silent loss, and the next claim marks the send as possibly sent twice. The status is left
     alone (no index changes), and the token is kept from an earlier claim so a re-sent mail
     carries the same link. */
  claimSend: `
    UPDATE sends SET claimed_at = @now, attempts = attempts + 1, updated_at = @now,
      token = coalesce(token, @token),
      maybe_duplicate = CASE WHEN claimed_at IS NOT NULL THEN 1 ELSE maybe_duplicate END
    WHERE id = @id AND status IN ('queued', 'deferred', 'failed')
    RETURNING token`,
  markSent: `
    UPDATE sends SET status = 'sent', category = NULL, reason = @reason, message_id = @messageId, claimed_at = NULL,
      sent_at = @now, updated_at = @now, retry_at = NULL
    WHERE id = @id`,
  markUnsent: `
    UPDATE sends SET status = @status, category = @category, reason = @reason, updated_at = @now, claimed_at = NULL,
      retry_at = @retryAt
    WHERE id = @id`,
  /* Out of hand again without counting the attempt: the server, not the mail, was the problem.
     The status is what it was (queued, or deferred or failed for a retry), so the same path
     that chose it finds it again. */
  requeueSend: `
    UPDATE sends SET attempts = max(attempts - 1, 0), updated_at = @now, claimed_at = NULL
    WHERE id = @id`,
  /* The same, when the connection broke after the whole message was sent: the server may have
     it, so it is marked as a send that was in flight, and sending it again may send it twice. */
  requeueMaybeSent: `
    UPDATE sends SET attempts = max(attempts - 1, 0), updated_at = @now, claimed_at = NULL, maybe_duplicate = 1
    WHERE id = @id`,
  insertAttempt: `
    INSERT INTO attempts (send_id, at, email, server, outcome, response_code, enhanced_code, response, category, permanent)
    VALUES (@sendId, @at, @email, @server, @outcome, @responseCode, @enhancedCode, @response, @category, @permanent)`,
  insertMessage: `INSERT OR REPLACE INTO messages (send_id, raw) VALUES (?, ?)`,
  sendById: `
    SELECT s.*, m.key AS member_key, m.name AS member_name
    FROM sends s JOIN members m ON m.id = s.member_id WHERE s.id = ?`,
  /* What the claim reads first: the member as they are now, and whether they can be mailed. */
  deliveryRow: `
    SELECT s.*, m.key AS member_key, m.name AS member_name, m.email AS member_email,
      m.fields AS member_fields, m.email_problem AS member_problem,
      ${SKIP_CATEGORY} AS skip_category, ${SKIP_REASON} AS skip_reason
    FROM sends s JOIN members m ON m.id = s.member_id JOIN mailings g ON g.id = s.mailing_id
      ${SKIP_JOINS}
    WHERE s.id = ?`,
  attemptsBySend: `SELECT * FROM attempts WHERE send_id = ? ORDER BY id`,
  /* The row's bytes and whose dictionary they may need (message-codec.ts reads them). */
  messageBySend: `
    SELECT m.raw, s.mailing_id FROM messages m LEFT JOIN sends s ON s.id = m.send_id WHERE m.send_id = ?`,
  mailingOfSend: `SELECT mailing_id FROM sends WHERE id = ?`,
  dictionaryOf: `SELECT dictionary FROM message_dictionaries WHERE mailing_id = ?`,
  /* Once per mailing, never replaced: the messages compressed with it need these very bytes. */
  insertDictionary: `INSERT OR IGNORE INTO message_dictionaries (mailing_id, dictionary) VALUES (?, ?)`,
  /* mailer migrate: rows written before compression, in id order (blobs compare bytewise, so
     this is "the first byte is 0x20 or more", a row as it was sent; see message-codec.ts). */
  plainMessages: `
    SELECT m.send_id, m.raw, s.mailing_id FROM messages m LEFT JOIN sends s ON s.id = m.send_id
    WHERE m.send_id > @after AND m.raw >= x'20' ORDER BY m.send_id LIMIT @limit`,
  replaceMessage: `UPDATE messages SET raw = @raw WHERE send_id = @sendId AND raw = @was`,
  plainMessageCount: `SELECT count(*) AS n FROM messages WHERE raw >= x'20'`,
  /* A send's files as last attached: a new attempt's files replace the earlier ones. */
  clearAttachments: `DELETE FROM attachments WHERE send_id = ?`,
  insertAttachment: `
    INSERT INTO attachments (send_id, position, name, path, size, sha256, offset)
    VALUES (@sendId, @position, @name, @path, @size, @sha256, @offset)`,
  attachmentsBySend: `SELECT * FROM attachments WHERE send_id = ? ORDER BY position`,
  /* Re-target: the member's address changes (history by trigger), the old one is revoked,
     and so is every token that went to it. */
  setMemberAddress: `UPDATE members SET email = @email, email_problem = NULL, email_since = @now, updated_at = @now WHERE id = @id`,
  revokeAddress: `
    UPDATE addresses SET revoked_at = @now, revoke_reason = @reason
    WHERE member_id = @memberId AND email = @email AND revoked_at IS NULL`,
  revokeTokens: `
    UPDATE sends SET token_revoked_at = @now
    WHERE member_id = @memberId AND email = @email AND token IS NOT NULL AND token_revoked_at IS NULL`,
  /* The same mail again: a system mail's data goes with it (its key stays with the first). */
  insertRetargetSend: `
    INSERT INTO sends (mailing_id, member_id, email, type, test, status, created_at, updated_at, retarget_of, data)
    SELECT mailing_id, member_id, @email, type, test, 'queued', @now, @now, id, data FROM sends WHERE id = @id`,
  insertSystemSend: `
    INSERT INTO sends (mailing_id, member_id, email, type, status, data, idem_key, created_at, updated_at)
    VALUES (@mailing, @member, @email, @type, 'queued', @data, @key, @now, @now)`,
  sendByKey: `
    SELECT s.*, m.key AS member_key, m.name AS member_name
    FROM sends s JOIN members m ON m.id = s.member_id WHERE s.idem_key = ?`,
  /* The index holds queued system sends only; one in hand of a run (claimed) is that run's. */
  queuedSystemSends: `
    SELECT id FROM sends INDEXED BY sends_system_queue
    WHERE data IS NOT NULL AND status = 'queued' AND claimed_at IS NULL ORDER BY id LIMIT ?`,
  markRetargeted: `UPDATE sends SET status = 'retargeted', retargeted_to = @to, updated_at = @now WHERE id = @id`,
  sendByToken: `
    SELECT s.id, s.email, s.test, s.token_revoked_at, m.key AS member_key, m.name AS member_name
    FROM sends s JOIN members m ON m.id = s.member_id WHERE s.token = ?`,
  /* Retry, and a claim that finds the member's address changed since the send was queued: the
     send goes to the member's current address; a token that went nowhere is dropped when the
     address changes, so the new mail carries one bound to the new address. */
  prepareRetry: `
    UPDATE sends SET email = @email, token = CASE WHEN email IS @email THEN token END, updated_at = @now
    WHERE id = @id`,
  /* INDEXED BY: without statistics the planner takes sends_status and sorts every deferred
     send; the partial index gives them in retry_at order. */
  dueRetries: `
    SELECT id FROM sends INDEXED BY sends_retry
    WHERE status = 'deferred' AND retry_at <= @now ORDER BY retry_at, id LIMIT @limit`,
  handedOverSince: `SELECT count(*) AS n FROM attempts WHERE at >= ? AND outcome != 'interrupted'`,
  /* Cancel what has not gone out. A send claimed by a run that is still going is in its hands:
     too late. One claimed by a run that died (@orphans = 1) is cancelled too, so the next run
     does not send it, and marked: it may have gone out before the run died. */
  cancelSends: `
    UPDATE sends SET status = 'cancelled', updated_at = @now, retry_at = NULL,
      maybe_duplicate = CASE WHEN claimed_at IS NOT NULL THEN 1 ELSE maybe_duplicate END,
      reason = CASE WHEN claimed_at IS NOT NULL THEN 'cancelled; a run that stopped had it in hand, so it may have gone out' ELSE reason END,
      claimed_at = NULL
    WHERE mailing_id = @mailing AND (@member IS NULL OR member_id = @member) AND status IN ('queued', 'deferred')
      AND (claimed_at IS NULL OR @orphans = 1)`,
  inHandSends: `
    SELECT count(*) AS n FROM sends WHERE mailing_id = @mailing AND claimed_at IS NOT NULL
      AND (@member IS NULL OR member_id = @member)`,
} as const;

/**
 * The send queue: claims, outcomes and attempts, the messages as sent, retries, re-targets and
 * cancels.
 */
export class Sends {
  private readonly stmt: Statements<typeof SQL>;
  /** Dictionaries found, by mailing: they never change once written. */
  private readonly dictionaries = new Map<number, Buffer>();

  constructor(private readonly store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  /** A system mail queued for the member's address: one more in its system mailing. */
  insertSystemSend(r: { mailing: number; member: number; email: string; type: string; data: string; key: string | null; now: number }): number {
    return Number(this.stmt.insertSystemSend.run(r).lastInsertRowid);
  }

  sendByKey(key: string): Send | undefined {
    return toSend(this.stmt.sendByKey.get(key) as Row | undefined);
  }

  /** System sends waiting, oldest first: what a running send delivers before its next bulk mail. */
  queuedSystemSends(limit: number): number[] {
    return (this.stmt.queuedSystemSends.all(limit) as Row[]).map((r) => r.id);
  }

  nextQueued(mailing: number, after: number, limit: number): number[] {
    return (this.stmt.nextQueued.all({ mailing, after, limit }) as Row[]).map((r) => r.id);
  }

  /** Marks a send as in flight; returns its token, or undefined if it is no longer sendable. */
  claimSend(id: number, token: string, now: number): string | undefined {
    const row = this.stmt.claimSend.get({ id, token, now }) as Row | undefined;
    return row?.token;
  }

  /**
   * Claims a send and reads, in the same breath, all a worker needs to deliver it: the member's
   * address as it is now, not as it was when the mailing was queued. When that address cannot
   * be mailed (gone, invalid, suppressed), the send is skipped with the reason instead; a test
   * send goes to the test address whatever the member's. Undefined when it is no longer sendable.
   */
  claimForDelivery(id: number, token: string, now: number): ClaimResult | undefined {
    const r = this.stmt.deliveryRow.get(id) as Row | undefined;
    if (!r || !CLAIMABLE.includes(r.status)) return undefined;
    const member: Member = { id: r.member_id, key: r.member_key, email: r.member_email, name: r.member_name, fields: JSON.parse(r.member_fields), emailProblem: r.member_problem };
    if (!r.test && r.skip_category !== null) {
      this.markSkipped(id, r.skip_category, r.skip_reason, now);
      return { send: toSend(r)!, member, token: null, skip: { category: r.skip_category, reason: r.skip_reason } };
    }
    // Written only when the address changed since the send was queued: setting the indexed
    // column on every claim would double the claim's cost.
    if (!r.test && r.member_email !== r.email) this.prepareRetry(id, r.member_email, now);
    const claimed = this.stmt.claimSend.get({ id, token, now }) as Row | undefined;
    if (!claimed) return undefined;
    // The row as claimSend left it, without reading it again.
    const send = toSend({
      ...r, email: r.test ? r.email : r.member_email, attempts: r.attempts + 1, token: claimed.token, updated_at: now,
      maybe_duplicate: r.claimed_at !== null ? 1 : r.maybe_duplicate,
    })!;
    return { send, member, token: claimed.token, skip: null };
  }

  send(id: number): Send | undefined {
    return toSend(this.stmt.sendById.get(id) as Row | undefined);
  }

  recordSent(r: SentRecord): void {
    this.store.atomically(() => {
      this.stmt.markSent.run({ id: r.id, reason: r.response, messageId: r.messageId, now: r.now });
      if (r.stored) this.stmt.insertMessage.run(r.id, r.stored);
      else this.insertMessage(r.id, r.raw);
      this.writeAttachments(r.id, r.attachments);
      this.stmt.insertAttempt.run({
        sendId: r.id, at: r.now, email: r.email, server: r.server, outcome: 'sent',
        responseCode: parseCode(r.response), enhancedCode: null, response: r.response,
        category: null, permanent: null,
      });
    });
  }

  recordUnsent(r: UnsentRecord): void {
    this.store.atomically(() => {
      this.stmt.markUnsent.run({
        id: r.id, status: r.status, category: r.category, reason: r.response, retryAt: r.retryAt, now: r.now,
      });
      if (r.attachments) this.writeAttachments(r.id, r.attachments);
      this.insertAttempt(r, r.status);
    });
  }

  /**
   * The server could not be used: the send goes back to the queue, the attempt is kept. With
   * `maybeSent`, the message as it went out: the connection broke after all of it was sent, so
   * it may have arrived; it is kept for `show`, and the send is marked as possibly sent twice.
   */
  recordInterrupted(r: InterruptedRecord): void {
    this.store.transaction(() => {
      if (r.maybeSent) {
        this.stmt.requeueMaybeSent.run({ id: r.id, now: r.now });
        this.insertMessage(r.id, r.maybeSent);
        this.writeAttachments(r.id, r.attachments);
      } else {
        this.stmt.requeueSend.run({ id: r.id, now: r.now });
      }
      this.insertAttempt({ ...r, permanent: false }, 'interrupted');
    });
  }

  /** A claimed send that was not handed over goes back to the queue as it was. */
  requeue(id: number, now: number): void {
    this.stmt.requeueSend.run({ id, now });
  }

  markSkipped(id: number, category: string, reason: string, now: number): void {
    this.stmt.markUnsent.run({ id, status: 'skipped', category, reason, retryAt: null, now });
  }

  private insertAttempt(r: {
    id: number; email: string; server: string | null; responseCode: number | null;
    enhancedCode: string | null; response: string; category: string; permanent: boolean; now: number;
  }, outcome: Attempt['outcome']): void {
    this.stmt.insertAttempt.run({
      sendId: r.id, at: r.now, email: r.email, server: r.server, outcome,
      responseCode: r.responseCode, enhancedCode: r.enhancedCode, response: r.response,
      category: r.category, permanent: r.permanent ? 1 : 0,
    });
  }

  attempts(sendId: number): Attempt[] {
    return (this.stmt.attemptsBySend.all(sendId) as Row[]).map((r) => ({
      id: r.id, sendId: r.send_id, at: r.at, email: r.email, server: r.server, outcome: r.outcome,
      responseCode: r.response_code, enhancedCode: r.enhanced_code, response: r.response,
      category: r.category, permanent: r.permanent === null ? null : !!r.permanent,
    }));
  }

  private writeAttachments(sendId: number, records: AttachmentRecord[] | undefined): void {
    this.stmt.clearAttachments.run(sendId);
    records?.forEach((a, position) => this.stmt.insertAttachment.run({ sendId, position, ...a }));
  }

  /** The files a send's stored message was sent with (none for a mail without). */
  attachments(sendId: number): AttachmentRecord[] {
    return (this.stmt.attachmentsBySend.all(sendId) as Row[]).map((r) => ({ name: r.name, path: r.path, size: r.size, sha256: r.sha256, offset: r.offset }));
  }

  /**
   * A mailing's queued sends with their member as they are now, in id order, a page at a time
   * (the caller may write between two). Sends the claim will skip for the address are left out.
   */
  *queuedOf(mailing: number): Generator<{ send: number; member: Member; email: string }> {
    for (let after = 0; ;) {
      const page = this.nextQueued(mailing, after, 512);
      if (page.length === 0) return;
      after = page[page.length - 1];
      for (const id of page) {
        const r = this.stmt.deliveryRow.get(id) as Row | undefined;
        if (!r || (!r.test && r.skip_category !== null)) continue;
        const email = r.test ? r.email : r.member_email;
        if (!email) continue;
        const member: Member = { id: r.member_id, key: r.member_key, email: r.member_email, name: r.member_name, fields: JSON.parse(r.member_fields), emailProblem: r.member_problem };
        yield { send: id, member, email };
      }
    }
  }

  /** The message exactly as it was handed to the server (its files' bodies left out). */
  rawMessage(sendId: number): Buffer | undefined {
    const row = this.stmt.messageBySend.get(sendId) as Row | undefined;
    if (!row) return undefined;
    try {
      return unpackMessage(row.raw, () => (row.mailing_id === null ? null : this.dictionary(row.mailing_id)));
    } catch (err) {
      throw new MailerError(`the stored message of send ${sendId} cannot be read: ${(err as Error).message}`, {
        hint: 'the database was changed by hand or is damaged; restore it from a backup to see this message',
      });
    }
  }

  /** Stored compressed against its mailing's dictionary, or without one where it has none yet. */
  private insertMessage(sendId: number, raw: Buffer): void {
    const mailing = (this.stmt.mailingOfSend.get(sendId) as Row | undefined)?.mailing_id;
    this.stmt.insertMessage.run(sendId, packMessage(raw, mailing === undefined ? null : this.dictionary(mailing)));
  }

  /** The mailing's preset dictionary, or null when it has none. */
  dictionary(mailing: number): Buffer | null {
    let dict = this.dictionaries.get(mailing);
    if (!dict) {
      dict = (this.stmt.dictionaryOf.get(mailing) as Row | undefined)?.dictionary;
      if (!dict) return null;
      this.dictionaries.set(mailing, dict);
    }
    return dict;
  }

  /**
   * Gives the mailing its dictionary unless it has one; `make` composes it (the template for a
   * stand-in member, no member's data). The first one written stays: another process sending
   * the same mailing may have written it first.
   */
  ensureDictionary(mailing: number, make: () => Buffer | null): void {
    // Committed on its own, before any message uses it: a dictionary taken back with a failed
    // batch would leave messages compressed against bytes the database does not have.
    if (this.store.db.inTransaction) throw new Error('ensureDictionary runs outside a transaction');
    if (this.dictionary(mailing)) return;
    const made = make();
    if (!made || made.length === 0) return;
    try {
      this.stmt.insertDictionary.run(mailing, made.length > MAX_DICTIONARY_BYTES ? made.subarray(0, MAX_DICTIONARY_BYTES) : made);
    } catch (err) {
      // Another command holds the write lock: this run's messages are compressed without one.
      if (!isDatabaseBusy(err)) throw err;
    }
  }

  /**
   * Compresses up to `limit` rows written before compression, after send id `after`. They are
   * read and compressed outside the write lock, then written in one short write; a row changed
   * meanwhile (sent again, forgotten) is left to its new bytes. Returns the last send id looked
   * at (null when none is left), the rows it replaced, and their bytes before and after.
   */
  compressPlainMessages(after: number, limit: number, makeDictionary: (mailing: number) => Buffer | null): { last: number | null; rows: number; before: number; after: number } {
    const rows = this.stmt.plainMessages.all({ after, limit }) as Row[];
    // The mailings' dictionaries first, each committed on its own (see ensureDictionary).
    for (const mailing of new Set(rows.map((r) => r.mailing_id).filter((m) => m !== null))) this.ensureDictionary(mailing, () => makeDictionary(mailing));
    const packed = rows.map((r) => packMessage(r.raw, r.mailing_id === null ? null : this.dictionary(r.mailing_id)));
    return this.store.immediate(() => {
      const result = { last: rows.length ? rows[rows.length - 1].send_id : null, rows: 0, before: 0, after: 0 };
      rows.forEach((r, i) => {
        // packMessage leaves a message it could not read back as it was
        if (isPlain(packed[i])) return;
        if (this.stmt.replaceMessage.run({ sendId: r.send_id, raw: packed[i], was: r.raw }).changes === 0) return;
        result.rows++;
        result.before += r.raw.length;
        result.after += packed[i].length;
      });
      return result;
    });
  }

  /** How many stored messages are still as they were sent (not yet compressed). */
  plainMessageCount(): number {
    return (this.stmt.plainMessageCount.get() as Row).n;
  }

  /**
   * The member's address becomes `email`; the old one is revoked with the reason, with every
   * token sent to it; a new send of the same mail is queued and the original points to it.
   */
  retarget(send: Send, email: string, reason: string, now: number): number {
    return this.store.transaction(() => {
      const member = this.store.members.memberById(send.memberId)!;
      this.stmt.setMemberAddress.run({ id: member.id, email, now });
      this.store.erasure.restoreIfErased(email);
      for (const old of new Set([member.email, send.email])) {
        if (!old || old === email) continue;
        this.stmt.revokeAddress.run({ memberId: member.id, email: old, reason, now });
        this.stmt.revokeTokens.run({ memberId: member.id, email: old, now });
      }
      const to = Number(this.stmt.insertRetargetSend.run({ id: send.id, email, now }).lastInsertRowid);
      this.stmt.markRetargeted.run({ id: send.id, to, now });
      return to;
    });
  }

  tokenOwner(token: string): { sendId: number; email: string | null; memberKey: string; memberName: string | null; revokedAt: number | null; test: boolean } | undefined {
    const r = this.stmt.sendByToken.get(token) as Row | undefined;
    return r ? { sendId: r.id, email: r.email, memberKey: r.member_key, memberName: r.member_name, revokedAt: r.token_revoked_at, test: !!r.test } : undefined;
  }

  /** Points a send at the member's current address before it is tried again. */
  prepareRetry(id: number, email: string, now: number): void {
    this.stmt.prepareRetry.run({ id, email, now });
  }

  dueRetries(now: number, limit: number): number[] {
    return (this.stmt.dueRetries.all({ now, limit }) as Row[]).map((r) => r.id);
  }

  handedOverSince(since: number): number {
    return (this.stmt.handedOverSince.get(since) as Row).n;
  }

  /** Cancels what is not yet out; returns how many were cancelled and how many are in hand. */
  /** `orphans`: no run is going, so sends still claimed were left by one that died. */
  cancelSends(mailing: number, memberId: number | null, now: number, orphans: boolean): { cancelled: number; inHand: number } {
    const cancelled = this.stmt.cancelSends.run({ mailing, member: memberId, now, orphans: orphans ? 1 : 0 }).changes;
    return { cancelled, inHand: (this.stmt.inHandSends.get({ mailing, member: memberId }) as Row).n };
  }
}

function parseCode(response: string): number | null {
  const m = /^(\d{3})/.exec(response);
  return m ? Number(m[1]) : null;
}

export function toSend(r: Row | undefined): Send | undefined {
  if (!r) return undefined;
  return {
    id: r.id, mailingId: r.mailing_id, memberId: r.member_id, memberKey: r.member_key,
    memberName: r.member_name, email: r.email, type: r.type, test: !!r.test, status: r.status,
    category: r.category, reason: r.reason, attempts: r.attempts, token: r.token,
    messageId: r.message_id, createdAt: r.created_at, sentAt: r.sent_at, updatedAt: r.updated_at,
    retargetOf: r.retarget_of, retargetedTo: r.retargeted_to, maybeDuplicate: !!r.maybe_duplicate,
    data: r.data ?? null, key: r.idem_key ?? null,
  };
}

/** A send the user named by id; one that does not exist says how to find the right one. */
export function findSend(store: Store, id: number): Send {
  const send = store.sends.send(id);
  if (!send) throw badInput(`no send ${id}`, 'find the send id with `mailer log --member <id|email>`');
  return send;
}
