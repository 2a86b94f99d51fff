import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import type { SendFilter } from '../domain/types.js';

export interface MailingStats {
  mailing: number;
  type: string;
  /** what an unsubscribe from it stops; a required mailing cannot be opted out of */
  topic: string;
  required: boolean;
  selected: number;
  sent: number;
  failed: number;
  failedByReason: Record<string, number>;
  deferred: number;
  bounced: number;
  skipped: number;
  /** skipped by category: unsubscribed (from its topic), suppressed, no-address … */
  skippedByReason: Record<string, number>;
  opened: number;
  /** unique opens of the delivered ones (sent and not bounced) */
  openRate: number;
  unsubscribed: number;
}

/**
 * Per mailing: the mailings named, or those made in the time range and of the types given
 * (the same --since/--until/--type words as `log`, applied to when a mailing was made).
 * Test mailings are left out.
 */
export function mailingStats(store: Store, filter: SendFilter): MailingStats[] {
  const byMailing = new Map<number, MailingStats>();
  for (const id of filter.mailings ?? []) {
    if (!store.mailings.mailing(id)) throw badInput(`no mailing ${id}`, 'see the mailing ids in `mailer mailings`');
  }
  const ids = filter.mailings?.length ? filter.mailings.filter((id) => !store.mailings.mailing(id)!.test) : store.log.mailingIds(filter);
  const { counts, events } = store.log.stats(ids);
  for (const row of counts) {
    let s = byMailing.get(row.mailing);
    if (!s) {
      const m = store.mailings.mailing(row.mailing)!;
      s = {
        mailing: m.id, type: m.type, topic: m.topic, required: m.required, selected: 0, sent: 0, failed: 0, failedByReason: {}, deferred: 0, bounced: 0,
        skipped: 0, skippedByReason: {}, opened: 0, openRate: 0, unsubscribed: 0,
      };
      byMailing.set(row.mailing, s);
    }
    s.selected += row.n;
    if (row.status === 'sent' || row.status === 'failed' || row.status === 'deferred' || row.status === 'bounced' || row.status === 'skipped') s[row.status] += row.n;
    if (row.status === 'failed' || row.status === 'bounced') {
      const key = row.category ?? 'other';
      s.failedByReason[key] = (s.failedByReason[key] ?? 0) + row.n;
    }
    if (row.status === 'skipped') {
      const key = row.category ?? 'other';
      s.skippedByReason[key] = (s.skippedByReason[key] ?? 0) + row.n;
    }
  }
  for (const e of events) {
    const s = byMailing.get(e.mailing);
    if (!s) continue;
    if (e.kind === 'open') s.opened = e.n;
    else if (e.kind === 'unsubscribe') s.unsubscribed = e.n;
  }
  for (const s of byMailing.values()) s.openRate = s.sent > 0 ? s.opened / s.sent : 0;
  return [...byMailing.values()].sort((a, b) => b.mailing - a.mailing);
}

