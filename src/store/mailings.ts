import type { LockHolder, Mailing, MailingSettings, MailingStatus, MemberSelection, SendStatus } from '../domain/types.js';
import type { Statements, Store } from './store.js';
import { SKIP_CATEGORY, SKIP_JOINS, SKIP_REASON, selectionWhere, type Row } from './queries.js';

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  insertMailing: `
    INSERT INTO mailings (type, topic, required, sender, template_path, template, html_template, footer, settings, test, status, created_at)
    VALUES (@type, @topic, @required, @sender, @templatePath, @template, @htmlTemplate, @footer, @settings, @test, @status, @now)`,
  mailingById: `SELECT * FROM mailings WHERE id = ?`,
  setMailingSelected: `UPDATE mailings SET selected = ? WHERE id = ?`,
  /* A run takes a mailing up; one cancelled meanwhile (cancel takes no send lock) stays so. */
  startMailing: `
    UPDATE mailings SET status = 'running', status_reason = NULL WHERE id = @id AND status <> 'cancelled'`,
  setMailingStatus: `
    UPDATE mailings SET status = @status, status_reason = @reason,
      finished_at = CASE WHEN @status = 'done' THEN @now ELSE finished_at END
    WHERE id = @id`,
  /* From the counts the triggers keep (schema 17), not from the sends. */
  mailingCounts: `
    SELECT status, category, sum(n) AS n FROM (
      SELECT status, nullif(category, '') AS category, n FROM mailing_counts WHERE mailing_id = @id
      UNION ALL
      SELECT status, nullif(category, ''), n FROM mailing_tallies WHERE mailing_id = @id
    ) GROUP BY status, category HAVING sum(n) > 0`,
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
  mailings: `
    SELECT m.*,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'sent') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'sent') AS sent,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'failed') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'failed') AS failed,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'deferred') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'deferred') AS deferred,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'skipped') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'skipped') AS skipped,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'queued') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'queued') AS queued,
      (SELECT coalesce(sum(n), 0) FROM mailing_counts c WHERE c.mailing_id = m.id AND c.status = 'cancelled') + (SELECT coalesce(sum(n), 0) FROM mailing_tallies t WHERE t.mailing_id = m.id AND t.status = 'cancelled') AS cancelled
    FROM mailings m ORDER BY m.id DESC LIMIT ?`,
  /* The system mailing of a template exactly as it is now, with these settings: a changed
     template or setting makes a new one, so an old mail is rendered again as it was. */
  systemMailing: `
    SELECT * FROM mailings
    WHERE system = 1 AND template_path = @templatePath AND template = @template
      AND html_template IS @htmlTemplate AND footer IS @footer AND settings = @settings
    ORDER BY id DESC LIMIT 1`,
  /* Its status stays done between mails: a send left queued in it is what \`run\` finishes. */
  insertSystemMailing: `
    INSERT INTO mailings (type, template_path, template, html_template, footer, settings, test, status, system, created_at)
    VALUES (@type, @templatePath, @template, @htmlTemplate, @footer, @settings, 0, 'done', 1, @now)`,
  countSystemSend: `UPDATE mailings SET selected = selected + 1 WHERE id = ?`,
  lockHolder: `SELECT name, pid, host, since, what FROM locks WHERE name = ?`,
  takeLock: `INSERT OR REPLACE INTO locks (name, pid, host, since, what) VALUES (@name, @pid, @host, @since, @what)`,
  releaseLock: `DELETE FROM locks WHERE name = @name AND pid = @pid AND host = @host`,
} as const;

/** Mailings: made, queued, scheduled, run and listed; and the locks a run holds. */
export class Mailings {
  private readonly stmt: Statements<typeof SQL>;

  constructor(private readonly store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  createMailing(m: {
    /** topic defaults to the type; a mailing is not required unless said */
    type: string; topic?: string; required?: boolean; sender?: string | null; templatePath: string; template: string; htmlTemplate: string | null;
    footer: string | null; settings: MailingSettings; test: boolean; status: MailingStatus; now: number;
  }): Mailing {
    const info = this.stmt.insertMailing.run({
      ...m, settings: JSON.stringify(m.settings), test: m.test ? 1 : 0, topic: m.topic ?? m.type, required: m.required ? 1 : 0, sender: m.sender ?? null,
    });
    return this.mailing(Number(info.lastInsertRowid))!;
  }

  mailing(id: number): Mailing | undefined {
    return toMailing(this.stmt.mailingById.get(id) as Row | undefined);
  }

  /** Marks a mailing running; false if it was cancelled, and is left alone. */
  startMailing(id: number): boolean {
    return this.stmt.startMailing.run({ id }).changes > 0;
  }

  setMailingStatus(id: number, status: MailingStatus, reason: string | null, now: number): void {
    this.stmt.setMailingStatus.run({ id, status, reason, now });
  }

  /** Counts of a mailing's sends by status and by category. */
  mailingCounts(id: number): { status: SendStatus; category: string | null; n: number }[] {
    return this.stmt.mailingCounts.all({ id }) as { status: SendStatus; category: string | null; n: number }[];
  }

  /**
   * Records the recipients of a mailing in one statement: one send row per selected member,
   * queued, or skipped at once with the reason when the member has no usable address or the
   * address is suppressed. Returns how many were selected.
   */
  enqueue(mailing: Mailing, selection: MemberSelection, opts: { limit?: number; testTo?: string; now: number }): number {
    const { where, params } = selectionWhere(selection);
    const test = opts.testTo !== undefined;
    const sql = `
      INSERT INTO sends (mailing_id, member_id, email, type, test, status, category, reason, created_at, updated_at)
      SELECT ?, m.id, ${test ? '?' : 'm.email'}, ?, ?,
        ${test ? `'queued', NULL, NULL` : `CASE WHEN ${SKIP_CATEGORY} IS NULL THEN 'queued' ELSE 'skipped' END, ${SKIP_CATEGORY}, ${SKIP_REASON}`},
        ?, ?
      FROM mailings g, members m ${SKIP_JOINS}
      WHERE g.id = ? AND (${where}) ORDER BY m.id ${opts.limit !== undefined ? 'LIMIT ?' : ''}`;
    const head = test
      ? [mailing.id, opts.testTo, mailing.type, 1, opts.now, opts.now, mailing.id]
      : [mailing.id, mailing.type, 0, opts.now, opts.now, mailing.id];
    const tail = opts.limit !== undefined ? [opts.limit] : [];
    const info = this.store.shape(sql).run(...head, ...params, ...tail);
    this.stmt.setMailingSelected.run(info.changes, mailing.id);
    return info.changes;
  }

  /** The mailing a system mail of this template belongs to, made when it is the first; one more selected. */
  systemMailing(m: { type: string; templatePath: string; template: string; htmlTemplate: string | null; footer: string | null; settings: MailingSettings; now: number }): Mailing {
    const params = { ...m, settings: JSON.stringify(m.settings) };
    const found = this.stmt.systemMailing.get(params) as Row | undefined;
    const id = found ? found.id : Number(this.stmt.insertSystemMailing.run(params).lastInsertRowid);
    this.stmt.countSystemSend.run(id);
    return this.mailing(id)!;
  }

  scheduleMailing(id: number, at: number): void {
    this.stmt.scheduleMailing.run({ id, at });
  }

  dueMailings(now: number): number[] {
    return (this.stmt.dueMailings.all(now) as Row[]).map((r) => r.id);
  }

  unfinishedMailings(): number[] {
    return (this.stmt.unfinishedMailings.all() as Row[]).map((r) => r.id);
  }

  /** The latest mailings, newest first, with their sends counted by status. */
  list(limit: number): (Mailing & { sent: number; failed: number; deferred: number; skipped: number; queued: number; cancelled: number })[] {
    return (this.stmt.mailings.all(limit) as Row[]).map((r) => ({
      ...toMailing(r)!, sent: r.sent ?? 0, failed: r.failed ?? 0, deferred: r.deferred ?? 0, skipped: r.skipped ?? 0, queued: r.queued ?? 0, cancelled: r.cancelled ?? 0,
    }));
  }

  lockHolder(name: string): LockHolder | undefined {
    return this.stmt.lockHolder.get(name) as LockHolder | undefined;
  }

  takeLock(holder: LockHolder): void {
    this.stmt.takeLock.run(holder);
  }

  releaseLock(holder: Pick<LockHolder, 'name' | 'pid' | 'host'>): void {
    this.stmt.releaseLock.run(holder);
  }
}

function toMailing(r: Row | undefined): Mailing | undefined {
  if (!r) return undefined;
  return {
    id: r.id, type: r.type, topic: r.topic ?? r.type, required: !!r.required, templatePath: r.template_path, template: r.template,
    htmlTemplate: r.html_template, footer: r.footer, settings: JSON.parse(r.settings),
    test: !!r.test, status: r.status, statusReason: r.status_reason, selected: r.selected,
    createdAt: r.created_at, finishedAt: r.finished_at, scheduledAt: r.scheduled_at ?? null, system: !!r.system,
  };
}
