import type { MailingStatsRow, Send, SendFilter } from '../domain/types.js';
import type { Store } from './store.js';
import type { Row } from './queries.js';
import { toSend } from './sends.js';

/** The filters whose several values logSends reads as one index range each. */
const SPLITTABLE = ['statuses', 'types', 'mailings', 'memberIds', 'emails', 'categories'] as const;

const LOG_COLUMNS = `
  s.id, s.mailing_id, m.key AS member_key, m.name AS member_name, s.member_id, s.email, s.type,
  s.test, s.status, s.category, s.reason, s.attempts, s.created_at, s.sent_at, s.updated_at,
  s.message_id, s.token, s.retarget_of, s.retargeted_to, s.maybe_duplicate, s.idem_key`;

/**
 * The send log and the figures over it: every statement here has the shape of its filter, so
 * none is fixed; each shape is prepared once (Store.shape).
 */
export class SendLog {
  constructor(private readonly store: Store) {}

  /**
   * Per mailing over the filter: counts by status and category, and the sends opened and
   * unsubscribed. Events are counted from the events table (one row per send and kind),
   * not looked up per send: 782 ms before on 1,000,000 sends for --since 7d.
   */
  stats(mailings: number[]): { counts: MailingStatsRow[]; events: { mailing: number; kind: string; n: number }[] } {
    if (mailings.length === 0) return { counts: [], events: [] };
    const marks = mailings.map(() => '?').join(', ');
    // (mailing_id, status, category) is an index: the counts come from it without reading rows.
    // The rows prune removed (and the events forget removed) are counted in the tallies.
    const counts = this.store.shape(`
      SELECT s.mailing_id AS mailing, s.status, s.category, count(*) AS n
      FROM sends s WHERE s.mailing_id IN (${marks})
      GROUP BY s.mailing_id, s.status, s.category
      UNION ALL
      SELECT mailing_id, status, nullif(category, ''), n FROM mailing_tallies WHERE mailing_id IN (${marks})`).all(...mailings, ...mailings) as MailingStatsRow[];
    const events = this.store.shape(`
      SELECT mailing, kind, sum(n) AS n FROM (
        SELECT s.mailing_id AS mailing, e.kind, count(DISTINCT e.send_id) AS n
        FROM events e JOIN sends s ON s.id = e.send_id
        WHERE s.mailing_id IN (${marks}) GROUP BY s.mailing_id, e.kind
        UNION ALL
        SELECT mailing_id, kind, n FROM event_tallies WHERE mailing_id IN (${marks})
      ) GROUP BY mailing, kind`).all(...mailings, ...mailings) as { mailing: number; kind: string; n: number }[];
    return { counts, events };
  }

  /** Real (not test) mailings made in a time range and of the given types, newest first. */
  mailingIds(f: { since?: number; until?: number; types?: string[] }): number[] {
    const clauses = ['test = 0'];
    const params: unknown[] = [];
    if (f.since !== undefined) { clauses.push('created_at >= ?'); params.push(f.since); }
    if (f.until !== undefined) { clauses.push('created_at < ?'); params.push(f.until); }
    if (f.types?.length) { clauses.push(`type IN (${f.types.map(() => '?').join(', ')})`); params.push(...f.types); }
    return (this.store.shape(`SELECT id FROM mailings WHERE ${clauses.join(' AND ')} ORDER BY id DESC`).all(...params) as Row[]).map((r) => r.id);
  }

  private filterWhere(f: SendFilter): { where: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const anyOf = (column: string, values: readonly unknown[] | undefined) => {
      if (!values || values.length === 0) return;
      clauses.push(values.length === 1 ? `${column} = ?` : `${column} IN (${values.map(() => '?').join(', ')})`);
      params.push(...values);
    };
    anyOf('s.member_id', f.memberIds);
    anyOf('s.email', f.emails?.map((e) => e.toLowerCase()));
    anyOf('s.type', f.types);
    anyOf('s.mailing_id', f.mailings);
    anyOf('s.status', f.statuses);
    anyOf('s.category', f.categories);
    if (f.since !== undefined) { clauses.push('s.created_at >= ?'); params.push(f.since); }
    if (f.until !== undefined) { clauses.push('s.created_at < ?'); params.push(f.until); }
    return { where: clauses.length ? clauses.join(' AND ') : '1', params };
  }

  /** Sends matching the filter, newest first. */
  logSends(given: SendFilter): Send[] {
    // Addresses are stored lower-cased: --email A@x and --email a@x are the same value.
    const filter = given.emails ? { ...given, emails: given.emails.map((e) => e.toLowerCase()) } : given;
    const limit = filter.limit ?? 50;
    const newest = (f: SendFilter) => {
      const { where, params } = this.filterWhere(f);
      return { sql: `SELECT ${LOG_COLUMNS} FROM sends s JOIN members m ON m.id = s.member_id WHERE ${where} ORDER BY s.created_at DESC, s.id DESC`, params };
    };
    // Several values of one filter (--status failed --status deferred): each value's newest
    // from its own index range, then merged. One IN (…) reads every matching send to sort
    // them: 67 ms for failed + deferred on 1,000,000 sends, against under 1 ms this way.
    // (Values are made unique first: --member 2 --member ben@… may name one member twice.)
    const split = limit > 0 ? SPLITTABLE.find((key) => new Set<unknown>(filter[key]).size > 1) : undefined;
    if (split) {
      const parts = [...new Set(filter[split] as unknown[])].map((value) => newest({ ...filter, [split]: [value] }));
      const sql = `SELECT * FROM (${parts.map((p) => `SELECT * FROM (${p.sql} LIMIT ?)`).join(' UNION ALL ')})
        ORDER BY created_at DESC, id DESC LIMIT ?`;
      const rows = this.store.shape(sql).all(...parts.flatMap((p) => [...p.params, limit]), limit) as Row[];
      return rows.map((r) => toSend(r)!);
    }
    const { sql, params } = newest(filter);
    const rows = this.store.shape(`${sql} ${limit > 0 ? 'LIMIT ?' : ''}`).all(...params, ...(limit > 0 ? [limit] : [])) as Row[];
    return rows.map((r) => toSend(r)!);
  }

  /** The same as logSends without a limit, one row at a time (for CSV export of millions). */
  *iterateSends(filter: SendFilter): Generator<Send> {
    const { where, params } = this.filterWhere(filter);
    const sql = `
      SELECT ${LOG_COLUMNS} FROM sends s JOIN members m ON m.id = s.member_id
      WHERE ${where} ORDER BY s.created_at DESC, s.id DESC`;
    for (const r of this.store.shape(sql).iterate(...params) as Iterable<Row>) yield toSend(r)!;
  }
}
