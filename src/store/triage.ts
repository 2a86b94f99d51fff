import type { CatalogRule } from '../domain/catalog.js';
import type { BounceRecord, LinkedSend, OptOut, SendEvent, Suppression } from '../domain/types.js';
import type { Statements, Store } from './store.js';
import type { Row } from './queries.js';

/** What a recipient page shows of a link's send: the member, and the mailing's topic and sender. */
const LINKED = `m.key AS member_key, m.name AS member_name, m.fields AS member_fields,
  coalesce(g.topic, g.type) AS topic, g.required, coalesce(g.sender, json_extract(g.settings, '$.from')) AS sender`;

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  insertErrorRule: `
    INSERT INTO error_rules (match, category, permanent, text, created_at) VALUES (@match, @category, @permanent, @text, @now)`,
  /* newest first: a later rule about the same reply wins */
  errorRules: `SELECT match, category, permanent, text FROM error_rules ORDER BY id DESC`,
  addSuppression: `
    INSERT INTO suppressions (email, reason, created_at) VALUES (@email, @reason, @now)
    ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at`,
  removeSuppression: `DELETE FROM suppressions WHERE email = ?`,
  suppression: `SELECT email, reason, created_at FROM suppressions WHERE email = ?`,
  suppressions: `SELECT email, reason, created_at FROM suppressions ORDER BY created_at DESC, email`,
  /* A click again, or a second mail's link, keeps the first date. */
  addOptOutIfNew: `
    INSERT INTO optouts (email, topic, reason, created_at) VALUES (@email, @topic, @reason, @now)
    ON CONFLICT (email, topic) DO NOTHING`,
  addOptOut: `
    INSERT INTO optouts (email, topic, reason, created_at) VALUES (@email, @topic, @reason, @now)
    ON CONFLICT (email, topic) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at`,
  removeOptOut: `DELETE FROM optouts WHERE email = @email AND topic = @topic`,
  optOutsOf: `SELECT email, topic, reason, created_at FROM optouts WHERE email = ? ORDER BY created_at DESC, topic`,
  /* address-wide first (topic NULL), then the opt-outs of one topic or of every topic */
  optOuts: `
    SELECT email, NULL AS topic, reason, created_at FROM suppressions WHERE @topic IS NULL
    UNION ALL
    SELECT email, topic, reason, created_at FROM optouts WHERE @topic IS NULL OR topic = @topic
    ORDER BY created_at DESC, email, topic`,
  optOutCounts: `SELECT topic, count(*) AS n FROM optouts GROUP BY topic ORDER BY topic`,
  suppressionCount: `SELECT count(*) AS n FROM suppressions`,
  bounceByFingerprint: `SELECT id FROM bounces WHERE fingerprint = ?`,
  insertBounce: `
    INSERT INTO bounces (fingerprint, send_id, matched_by, recipient, action, status_code, diagnostic, category, permanent, source, at)
    VALUES (@fingerprint, @sendId, @matchedBy, @recipient, @action, @statusCode, @diagnostic, @category, @permanent, @source, @at)
    ON CONFLICT (fingerprint) DO NOTHING`,
  markBounced: `
    UPDATE sends SET status = 'bounced', category = @category, reason = @reason, updated_at = @now WHERE id = @id`,
  sendByMessageId: `SELECT id FROM sends WHERE message_id = ?`,
  /* A bounce that names only the recipient: the latest send to it before the bounce arrived. */
  sendByRecipient: `
    SELECT id FROM sends WHERE email = @email AND created_at <= @at AND status IN ('sent', 'bounced')
    ORDER BY created_at DESC, id DESC LIMIT 1`,
  bouncesBySend: `SELECT * FROM bounces WHERE send_id = ? ORDER BY at`,
  linkSecret: `SELECT key, legacy_send, legacy_sent_at FROM link_secret WHERE id = 1`,
  /* The send of an unsubscribe or pixel link (its value checked by HMAC already). */
  linkedSend: `
    SELECT s.id, s.email, s.token_revoked_at, ${LINKED} FROM sends s JOIN members m ON m.id = s.member_id JOIN mailings g ON g.id = s.mailing_id
    WHERE s.id = ? AND s.test = 0`,
  /* A mail handed over before links had their own values carried the registration token in
     them; it counts there for those sends only. A send queued then but sent since carries the
     new links, and its token is a registration token only. */
  sendByLegacyLink: `
    SELECT s.id, s.email, s.token_revoked_at, ${LINKED}
    FROM sends s JOIN members m ON m.id = s.member_id JOIN mailings g ON g.id = s.mailing_id JOIN link_secret k ON k.id = 1
    WHERE s.token = ? AND s.test = 0 AND s.id <= k.legacy_send AND s.sent_at <= k.legacy_sent_at`,
  /* One row per send and kind: a repeat counts, it adds no row. */
  insertEvent: `
    INSERT INTO events (send_id, kind, at, last_at, times) VALUES (@sendId, @kind, @at, @at, 1)
    ON CONFLICT (send_id, kind) DO UPDATE SET times = times + 1, last_at = max(last_at, excluded.at)`,
  eventsBySend: `SELECT kind, at, last_at, times FROM events WHERE send_id = ? ORDER BY at`,
  mailboxState: `SELECT uid_validity, last_uid FROM mailbox_state WHERE mailbox = ?`,
  saveMailboxState: `
    INSERT INTO mailbox_state (mailbox, uid_validity, last_uid, fetched_at) VALUES (@mailbox, @uidValidity, @lastUid, @now)
    ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, fetched_at = excluded.fetched_at`,
} as const;

/** What is learnt from replies and links: error rules, suppressions, bounces, opens and unsubscribes. */
export class Triage {
  private readonly stmt: Statements<typeof SQL>;

  constructor(private readonly store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  errorRules(): CatalogRule[] {
    return (this.stmt.errorRules.all() as Row[]).map((r) => ({
      match: r.match, category: r.category, permanent: r.permanent === null ? undefined : !!r.permanent, text: r.text ?? undefined,
    }));
  }

  addErrorRule(rule: CatalogRule, now: number): void {
    this.stmt.insertErrorRule.run({
      match: rule.match, category: rule.category, permanent: rule.permanent === undefined ? null : rule.permanent ? 1 : 0, text: rule.text ?? null, now,
    });
  }

  suppress(email: string, reason: string, now: number): void {
    this.stmt.addSuppression.run({ email, reason, now });
  }

  unsuppress(email: string): boolean {
    return this.stmt.removeSuppression.run(email).changes > 0;
  }

  suppression(email: string): Suppression | undefined {
    const r = this.stmt.suppression.get(email) as Row | undefined;
    return r ? { email: r.email, reason: r.reason, createdAt: r.created_at } : undefined;
  }

  suppressions(): Suppression[] {
    return (this.stmt.suppressions.all() as Row[]).map((r) => ({ email: r.email, reason: r.reason, createdAt: r.created_at }));
  }

  /** An opt-out of one topic (ALL_TOPICS: of all); `ifNew` keeps one recorded before as it was. */
  optOut(email: string, topic: string, reason: string, now: number, ifNew = false): void {
    (ifNew ? this.stmt.addOptOutIfNew : this.stmt.addOptOut).run({ email, topic, reason, now });
  }

  removeOptOut(email: string, topic: string): boolean {
    return this.stmt.removeOptOut.run({ email, topic }).changes > 0;
  }

  /** One address's opt-outs of topics, newest first. */
  optOutsOf(email: string): OptOut[] {
    return (this.stmt.optOutsOf.all(email) as Row[]).map(toOptOut);
  }

  /** Address-wide suppressions and topic opt-outs, newest first; with a topic, that topic's opt-outs only. */
  optOuts(topic: string | null): OptOut[] {
    return (this.stmt.optOuts.all({ topic }) as Row[]).map(toOptOut);
  }

  /** How many addresses have opted out of each topic, and how many are suppressed for every mail. */
  optOutCounts(): { addressWide: number; byTopic: Record<string, number> } {
    const byTopic: Record<string, number> = {};
    for (const r of this.stmt.optOutCounts.all() as Row[]) byTopic[r.topic] = r.n;
    return { addressWide: (this.stmt.suppressionCount.get() as Row).n, byTopic };
  }

  hasBounce(fingerprint: string): boolean {
    return this.stmt.bounceByFingerprint.get(fingerprint) !== undefined;
  }

  /** Records a bounce; a permanent one marks its send bounced. One transaction. */
  recordBounce(b: BounceRecord, now: number): void {
    this.store.transaction(() => {
      // Another command that read the same bounce at the same moment (a fetch beside a run's) recorded it first.
      if (this.stmt.insertBounce.run({ ...b, permanent: b.permanent ? 1 : 0 }).changes === 0) return;
      if (b.sendId !== null && b.permanent) {
        this.stmt.markBounced.run({ id: b.sendId, category: b.category, reason: `bounced: ${b.diagnostic ?? b.statusCode ?? ''}`.trim(), now });
      }
    });
  }

  sendIdByMessageId(messageId: string): number | undefined {
    return (this.stmt.sendByMessageId.get(messageId) as Row | undefined)?.id;
  }

  sendIdByRecipient(email: string, at: number): number | undefined {
    return (this.stmt.sendByRecipient.get({ email, at }) as Row | undefined)?.id;
  }

  bounces(sendId: number): BounceRecord[] {
    return (this.stmt.bouncesBySend.all(sendId) as Row[]).map((r) => ({
      fingerprint: r.fingerprint, sendId: r.send_id, matchedBy: r.matched_by, recipient: r.recipient, action: r.action,
      statusCode: r.status_code, diagnostic: r.diagnostic, category: r.category, permanent: !!r.permanent, source: r.source, at: r.at,
    }));
  }

  /** The database's secret for the values of unsubscribe, pixel and confirmation links. */
  linkSecret(): Buffer {
    return (this.stmt.linkSecret.get() as Row).key;
  }

  /**
   * The (real, not test) send a link belongs to: by its id, the link's value checked already,
   * or, for a mail sent before links had values of their own, by the registration token it
   * carried in them.
   */
  linkedSend(by: { id: number } | { legacyToken: string }): LinkedSend | undefined {
    const r = ('id' in by ? this.stmt.linkedSend.get(by.id) : this.stmt.sendByLegacyLink.get(by.legacyToken)) as Row | undefined;
    return r ? {
      id: r.id, email: r.email, memberKey: r.member_key, memberName: r.member_name, memberFields: JSON.parse(r.member_fields),
      topic: r.topic, required: !!r.required, sender: r.sender, revoked: r.token_revoked_at !== null,
    } : undefined;
  }

  /** Records an open or unsubscribe; a repeat only counts up the send's row of that kind. */
  addEvent(sendId: number, kind: 'open' | 'unsubscribe', at: number): void {
    this.stmt.insertEvent.run({ sendId, kind, at });
  }

  events(sendId: number): SendEvent[] {
    return (this.stmt.eventsBySend.all(sendId) as Row[]).map((r) => ({ kind: r.kind, at: r.at, lastAt: r.last_at, times: r.times }));
  }

  /** Where the last fetch of a bounce mailbox stopped: its UIDVALIDITY and the highest UID read. */
  mailboxState(mailbox: string): { uidValidity: string; lastUid: number } | undefined {
    const r = this.stmt.mailboxState.get(mailbox) as Row | undefined;
    return r ? { uidValidity: r.uid_validity, lastUid: r.last_uid } : undefined;
  }

  saveMailboxState(mailbox: string, uidValidity: string, lastUid: number, now: number): void {
    this.stmt.saveMailboxState.run({ mailbox, uidValidity, lastUid, now });
  }
}

function toOptOut(r: Row): OptOut {
  return { email: r.email, topic: r.topic, reason: r.reason, createdAt: r.created_at };
}
