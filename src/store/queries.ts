/**
 * Every fixed SQL statement mailer runs, by name. All are prepared when the store opens, so a
 * mistake here fails at launch, not half-way through a mailing. Queries whose shape depends
 * on filters are built in store.ts from the same columns and cached per shape.
 */
/**
 * Why a member cannot be mailed at their current address, or NULL when they can: the one rule
 * of the queue, the dry run and the claim (which reads the address again, since an import may
 * have corrected or removed it, or the address been suppressed, after the mailing was queued).
 * Over `members m LEFT JOIN suppressions x ON x.email = m.email`.
 */
export const SKIP_CATEGORY = `CASE WHEN m.email_problem IS NOT NULL THEN m.email_problem WHEN x.reason IS NOT NULL THEN 'suppressed' END`;
export const SKIP_REASON = `
  CASE WHEN m.email_problem = 'no-address' THEN 'the member has no e-mail address'
       WHEN m.email_problem IS NOT NULL THEN 'the address ' || coalesce(m.email, '') || ' is not a valid e-mail address'
       WHEN x.reason IS NOT NULL THEN 'the address is suppressed: ' || x.reason END`;

/** The file's address for this member is one that was revoked for them. */
const REVOKED = `EXISTS (SELECT 1 FROM addresses a WHERE a.member_id = members.id AND a.email = excluded.email AND a.revoked_at IS NOT NULL)`;

export const queries = {
  // -- members ---------------------------------------------------------------------------
  /* The import's upsert. Fields are merged (a file with fewer columns does not wipe the
     others); an unchanged row is not written. Address history follows by trigger. The import
     runs it for 100 rows at a time (store.ts repeats the VALUES tuple): positional, batched
     parameters take a third off the per-row cost, and the import id and time, the same for
     every row, are bound once per statement. Values: key, email, name, fields, email_problem.
     An address the member's file still carries but that was revoked (re-target) does not come
     back: the member keeps the address they gave later. */
  upsertMember: `
    INSERT INTO members (key, email, name, fields, email_problem, import_id, email_since, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, @importId, @now, @now, @now)
    ON CONFLICT (key) DO UPDATE SET
      email_since = CASE WHEN members.email IS excluded.email OR ${REVOKED} THEN members.email_since ELSE excluded.updated_at END,
      email_problem = CASE WHEN ${REVOKED} THEN members.email_problem ELSE excluded.email_problem END,
      email = CASE WHEN ${REVOKED} THEN members.email ELSE excluded.email END,
      name = excluded.name,
      fields = json_patch(members.fields, excluded.fields),
      updated_at = excluded.updated_at
    WHERE (members.email IS NOT excluded.email AND NOT ${REVOKED})
       OR members.name IS NOT excluded.name
       OR json_patch(members.fields, excluded.fields) IS NOT members.fields`,
  addFieldName: `INSERT OR IGNORE INTO member_fields (name) VALUES (?)`,
  /* An index as the schema defines it: a first import drops the e-mail index and builds it
     again from this at the end (store.ts, beginMemberLoad). */
  indexDefinition: `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`,
  fieldNames: `SELECT name FROM member_fields ORDER BY name`,
  memberById: `SELECT * FROM members WHERE id = ?`,
  memberByKey: `SELECT * FROM members WHERE key = ?`,
  membersByEmail: `SELECT * FROM members WHERE email = ? ORDER BY id`,
  /* a member found by an address they had before */
  membersByPastEmail: `
    SELECT m.* FROM addresses a JOIN members m ON m.id = a.member_id
    WHERE a.email = ? GROUP BY m.id ORDER BY m.id`,
  /* the addresses before, oldest first, then the current one */
  addressHistory: `
    SELECT email, added_at, replaced_at, revoked_at, revoke_reason FROM (
      SELECT id AS n, email, added_at, replaced_at, revoked_at, revoke_reason FROM addresses WHERE member_id = @id
      UNION ALL
      SELECT 9e18, email, coalesce(email_since, created_at), NULL, NULL, NULL FROM members WHERE id = @id AND email IS NOT NULL
    ) ORDER BY n`,
  memberCount: `SELECT count(*) AS n FROM members`,

  // -- segments and suppressions -----------------------------------------------------------
  saveSegment: `
    INSERT INTO segments (name, conditions, created_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET conditions = excluded.conditions, created_at = excluded.created_at`,
  segmentByName: `SELECT name, conditions, created_at FROM segments WHERE name = ?`,
  segments: `SELECT name, conditions, created_at FROM segments ORDER BY name`,

  // -- mailings ------------------------------------------------------------------------------
  insertMailing: `
    INSERT INTO mailings (type, template_path, template, html_template, footer, settings, test, status, created_at)
    VALUES (@type, @templatePath, @template, @htmlTemplate, @footer, @settings, @test, @status, @now)`,
  mailingById: `SELECT * FROM mailings WHERE id = ?`,
  setMailingSelected: `UPDATE mailings SET selected = ? WHERE id = ?`,
  /* A run takes a mailing up; one cancelled meanwhile (cancel takes no send lock) stays so. */
  startMailing: `
    UPDATE mailings SET status = 'running', status_reason = NULL WHERE id = @id AND status <> 'cancelled'`,
  setMailingStatus: `
    UPDATE mailings SET status = @status, status_reason = @reason,
      finished_at = CASE WHEN @status = 'done' THEN @now ELSE finished_at END
    WHERE id = @id`,
  mailingCounts: `
    SELECT status, category, count(*) AS n FROM sends WHERE mailing_id = ? GROUP BY status, category`,

  // -- the send queue --------------------------------------------------------------------------
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
    FROM sends s JOIN members m ON m.id = s.member_id LEFT JOIN suppressions x ON x.email = m.email
    WHERE s.id = ?`,
  /* Whether a member can be mailed at their address now, by the same rule (retry's leave-outs). */
  memberSkip: `
    SELECT ${SKIP_CATEGORY} AS skip_category, ${SKIP_REASON} AS skip_reason
    FROM members m LEFT JOIN suppressions x ON x.email = m.email WHERE m.id = ?`,
  attemptsBySend: `SELECT * FROM attempts WHERE send_id = ? ORDER BY id`,
  messageBySend: `SELECT raw FROM messages WHERE send_id = ?`,

  // -- triage ------------------------------------------------------------------------------------
  insertErrorRule: `
    INSERT INTO error_rules (match, category, permanent, text, created_at) VALUES (@match, @category, @permanent, @text, @now)`,
  /* newest first: a later rule about the same reply wins */
  errorRules: `SELECT match, category, permanent, text FROM error_rules ORDER BY id DESC`,
  addSuppression: `
    INSERT INTO suppressions (email, reason, created_at) VALUES (@email, @reason, @now)
    ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at`,
  addSuppressionIfNew: `
    INSERT INTO suppressions (email, reason, created_at) VALUES (@email, @reason, @now)
    ON CONFLICT (email) DO NOTHING`,
  removeSuppression: `DELETE FROM suppressions WHERE email = ?`,
  suppression: `SELECT email, reason, created_at FROM suppressions WHERE email = ?`,
  suppressions: `SELECT email, reason, created_at FROM suppressions ORDER BY created_at DESC, email`,
  /* Re-target: the member's address changes (history by trigger), the old one is revoked,
     and so is every token that went to it. */
  setMemberAddress: `UPDATE members SET email = @email, email_problem = NULL, email_since = @now, updated_at = @now WHERE id = @id`,
  revokeAddress: `
    UPDATE addresses SET revoked_at = @now, revoke_reason = @reason
    WHERE member_id = @memberId AND email = @email AND revoked_at IS NULL`,
  revokeTokens: `
    UPDATE sends SET token_revoked_at = @now
    WHERE member_id = @memberId AND email = @email AND token IS NOT NULL AND token_revoked_at IS NULL`,
  insertRetargetSend: `
    INSERT INTO sends (mailing_id, member_id, email, type, test, status, created_at, updated_at, retarget_of)
    SELECT mailing_id, member_id, @email, type, test, 'queued', @now, @now, id FROM sends WHERE id = @id`,
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

  // -- unattended --------------------------------------------------------------------------------
  scheduleMailing: `UPDATE mailings SET status = 'scheduled', scheduled_at = @at WHERE id = @id`,
  dueMailings: `
    SELECT id FROM mailings WHERE status = 'scheduled' AND scheduled_at <= ? ORDER BY scheduled_at, id`,
  /* Mailings with work left that no process is running (the caller holds the send lock); a
     done mailing counts too when a re-target or an interrupted retry left a send queued in it. */
  unfinishedMailings: `
    SELECT m.id FROM mailings m
    WHERE m.status IN ('running', 'paused', 'done')
      AND EXISTS (SELECT 1 FROM sends s WHERE s.mailing_id = m.id AND s.status = 'queued')
    ORDER BY m.id`,
  /* INDEXED BY: without statistics the planner takes sends_status and sorts every deferred
     send; the partial index gives them in retry_at order. */
  dueRetries: `
    SELECT id FROM sends INDEXED BY sends_retry
    WHERE status = 'deferred' AND retry_at <= @now ORDER BY retry_at, id LIMIT @limit`,
  handedOverSince: `SELECT count(*) AS n FROM attempts WHERE at >= ? AND outcome != 'interrupted'`,
  mailings: `
    SELECT m.*,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'sent') AS sent,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'failed') AS failed,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'deferred') AS deferred,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'skipped') AS skipped,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'queued') AS queued,
      (SELECT count(*) FROM sends s WHERE s.mailing_id = m.id AND s.status = 'cancelled') AS cancelled
    FROM mailings m ORDER BY m.id DESC LIMIT ?`,
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
  lockHolder: `SELECT name, pid, host, since, what FROM locks WHERE name = ?`,
  takeLock: `INSERT OR REPLACE INTO locks (name, pid, host, since, what) VALUES (@name, @pid, @host, @since, @what)`,
  releaseLock: `DELETE FROM locks WHERE name = @name AND pid = @pid AND host = @host`,

  // -- bounces and tracking -------------------------------------------------------------------------
  bounceByFingerprint: `SELECT id FROM bounces WHERE fingerprint = ?`,
  insertBounce: `
    INSERT INTO bounces (fingerprint, send_id, matched_by, recipient, action, status_code, diagnostic, category, permanent, source, at)
    VALUES (@fingerprint, @sendId, @matchedBy, @recipient, @action, @statusCode, @diagnostic, @category, @permanent, @source, @at)`,
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
    SELECT s.id, s.email, s.token_revoked_at, m.key AS member_key FROM sends s JOIN members m ON m.id = s.member_id
    WHERE s.id = ? AND s.test = 0`,
  /* A mail handed over before links had their own values carried the registration token in
     them; it counts there for those sends only. A send queued then but sent since carries the
     new links, and its token is a registration token only. */
  sendByLegacyLink: `
    SELECT s.id, s.email, s.token_revoked_at, m.key AS member_key
    FROM sends s JOIN members m ON m.id = s.member_id JOIN link_secret k ON k.id = 1
    WHERE s.token = ? AND s.test = 0 AND s.id <= k.legacy_send AND s.sent_at <= k.legacy_sent_at`,
  /* One row per send and kind: a repeat counts, it adds no row. */
  insertEvent: `
    INSERT INTO events (send_id, kind, at, last_at, times) VALUES (@sendId, @kind, @at, @at, 1)
    ON CONFLICT (send_id, kind) DO UPDATE SET times = times + 1, last_at = max(last_at, excluded.at)`,
  eventsBySend: `SELECT kind, at, last_at, times FROM events WHERE send_id = ? ORDER BY at`,
} as const;

export type QueryName = keyof typeof queries;
