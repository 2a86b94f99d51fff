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
   * unsubscribed, from the counts the triggers keep (mailing_counts, mailing_events): a few
   * rows per mailing whatever its size. Counting the sends themselves took 0.5 s for
   * --since 30d at 10,000,000 sends.
   */
  stats(mailings: number[]): { counts: MailingStatsRow[]; events: { mailing: number; kind: string; n: number }[] } {
    if (mailings.length === 0) return { counts: [], events: [] };
    const marks = mailings.map(() => '?').join(', ');
    // The counts the triggers keep (schema 17), plus what prune removed and forget erased (the
    // tallies): a mailing's figures stay what they were when its rows are gone.
    const counts = this.store.shape(`
      SELECT mailing, status, category, sum(n) AS n FROM (
        SELECT mailing_id AS mailing, status, nullif(category, '') AS category, n FROM mailing_counts WHERE mailing_id IN (${marks})
        UNION ALL
        SELECT mailing_id, status, nullif(category, ''), n FROM mailing_tallies WHERE mailing_id IN (${marks})
      ) GROUP BY mailing, status, category HAVING sum(n) > 0`).all(...mailings, ...mailings) as MailingStatsRow[];
    const events = this.store.shape(`
      SELECT mailing, kind, sum(n) AS n FROM (
        SELECT mailing_id AS mailing, kind, n FROM mailing_events WHERE mailing_id IN (${marks})
        UNION ALL
        SELECT mailing_id, kind, n FROM event_tallies WHERE mailing_id IN (${marks})
      ) GROUP BY mailing, kind HAVING sum(n) > 0`).all(...mailings, ...mailings) as { mailing: number; kind: string; n: number }[];
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

  /**
   * The filter as a WHERE clause. With a member or an address in it, that index drives the
   * query (a member has a few thousand sends at most): the other columns are written with a
   * unary + so that the planner, which has no statistics, cannot take the mailing's or the
   * status's index instead and walk a 20,000-send mailing row by row (34 ms for
   * --email --mailing at 2,000,000 sends, 0.1 ms this way).
   */
  private filterWhere(f: SendFilter): { where: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const byMember = !!(f.memberIds?.length || f.emails?.length);
    const anyOf = (column: string, values: readonly unknown[] | undefined, drives = false) => {
      if (!values || values.length === 0) return;
      const c = byMember && !drives ? `+${column}` : column;
      clauses.push(values.length === 1 ? `${c} = ?` : `${c} IN (${values.map(() => '?').join(', ')})`);
      params.push(...values);
    };
    anyOf('s.member_id', f.memberIds, true);
    anyOf('s.email', f.emails?.map((e) => e.toLowerCase()), !f.memberIds?.length);
    anyOf('s.type', f.types);
    anyOf('s.mailing_id', f.mailings);
    anyOf('s.status', f.statuses);
    anyOf('s.category', f.categories);
    // The time range stays usable: (member_id, created_at) and (email, created_at) take it.
    if (f.since !== undefined) { clauses.push('s.created_at >= ?'); params.push(f.since); }
    if (f.until !== undefined) { clauses.push('s.created_at < ?'); params.push(f.until); }
    return { where: clauses.length ? clauses.join(' AND ') : '1', params };
  }

  /**
   * One mailing and one status (and maybe category): its matching sends are one range of
   * sends_queue, counted in mailing_counts. Few of them (a mailing's failed): that range,
   * sorted, costs their number. Many (its sent): walking the mailing's sends newest first
   * until `limit` match is cheaper, about limit × size / matches. Without this choice the
   * planner always walked, and a mailing of 20,000 with a handful failed read all 20,000 rows.
   */
  private exactRange(f: SendFilter, limit: number): boolean {
    if (limit <= 0 || f.mailings?.length !== 1 || f.statuses?.length !== 1 || f.memberIds?.length || f.emails?.length) return false;
    if (f.categories && f.categories.length > 1) return false;
    let size = 0;
    let matches = 0;
    for (const c of this.stats(f.mailings).counts) {
      size += c.n;
      if (c.status === f.statuses[0] && (!f.categories?.length || c.category === f.categories[0])) matches += c.n;
    }
    return matches * 2 < (limit * size) / Math.max(matches, 1);
  }
  /** Sends matching the filter, newest first. */
  logSends(given: SendFilter): Send[] {
    // Addresses are stored lower-cased: --email A@x and --email a@x are the same value.
    const filter = given.emails ? { ...given, emails: given.emails.map((e) => e.toLowerCase()) } : given;
    const limit = filter.limit ?? 50;
    const newest = (f: SendFilter) => {
      const { where, params } = this.filterWhere(f);
      const from = this.exactRange(f, limit) ? 'sends s INDEXED BY sends_queue' : 'sends s';
      return { sql: `SELECT ${LOG_COLUMNS} FROM ${from} JOIN members m ON m.id = s.member_id WHERE ${where} ORDER BY s.created_at DESC, s.id DESC`, params };
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
