import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { liveSendLockHolder } from './lock.js';

/**
 * Cancels what has not gone out: queued and deferred sends, for the whole mailing or for
 * single members (the customer who already came by gets no reminder).
 */
export function cancelMailing(store: Store, mailingId: number, members: string[], now: number) {
  const mailing = store.mailings.mailing(mailingId);
  if (!mailing) throw badInput(`no mailing ${mailingId}`, 'see the mailing ids in `mailer mailings`');
  // Without a run going, sends still claimed were left by one that was killed: cancel them too.
  const orphans = () => liveSendLockHolder(store) === undefined;
  if (members.length === 0) {
    const r = store.immediate(() => {
      const counts = store.sends.cancelSends(mailingId, null, now, orphans());
      store.mailings.setMailingStatus(mailingId, 'cancelled', 'cancelled by hand', now);
      return counts;
    });
    return { mailing: mailingId, cancelled: r.cancelled, inFlight: r.inHand, alreadySent: 0 };
  }
  const ids = members.map((m) => {
    const found = store.members.findMembers(m);
    if (found.length === 0) throw badInput(`no member with id or address "${m}"`, 'nothing was cancelled');
    return found[0].id;
  });
  let cancelled = 0;
  let inFlight = 0;
  store.immediate(() => {
    const leftByDeadRun = orphans();
    for (const id of ids) {
      const r = store.sends.cancelSends(mailingId, id, now, leftByDeadRun);
      cancelled += r.cancelled;
      inFlight += r.inHand;
    }
  });
  const alreadySent = store.log.logSends({ mailings: [mailingId], memberIds: ids, statuses: ['sent'], limit: 0 }).length;
  return { mailing: mailingId, cancelled, inFlight, alreadySent };
}
