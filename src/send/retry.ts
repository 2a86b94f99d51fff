import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { HOPELESS_CATEGORIES } from '../domain/catalog.js';
import { deliverSends, type QueueOutcome } from './queue.js';
import { deliveryStore, queueSettings } from './delivery-store.js';
import { withSendLock, withTransports, type OpenTransports } from './session.js';
import { runBudget } from './quota.js';
import type { Settings } from '../config/settings.js';
import type { Send, SendFilter } from '../domain/types.js';

export interface RetryRequest {
  failed: boolean;
  deferred: boolean;
  filter: SendFilter;
  includePermanent: boolean;
  dryRun: boolean;
  settings: Settings;
  now: () => number;
}

export interface RetryCandidate {
  send: Send;
  to: string;
}

export interface RetryResult {
  dryRun: boolean;
  selected: number;
  retried: number;
  sent: number;
  failed: number;
  deferred: number;
  skipped: number;
  queued: number;
  leftOut: Record<string, number>;
  candidates: RetryCandidate[];
  outcome: QueueOutcome | null;
  transport: string | null;
}

/** What retry leaves out a system mail for whose data prune removed. */
export const CONTENT_REMOVED = 'content-removed';

export async function retrySends(store: Store, openTransports: OpenTransports, req: RetryRequest): Promise<RetryResult> {
  // --status failed / --status deferred (the log's filter words) mean --failed / --deferred.
  const given = req.filter.statuses ?? [];
  const other = given.find((s) => s !== 'failed' && s !== 'deferred');
  if (other) throw badInput(`retry sends failed or deferred mails again, not ${other} ones`, 'use --failed, --deferred, or both');
  const failed = req.failed || given.includes('failed');
  const deferred = req.deferred || given.includes('deferred');
  if (!failed && !deferred) {
    throw badInput('say what to retry: --failed, --deferred, or both', 'e.g. mailer retry --deferred --since 2d');
  }
  const statuses = [...(failed ? ['failed' as const] : []), ...(deferred ? ['deferred' as const] : [])];
  const selected = store.log.logSends({ ...req.filter, statuses, limit: req.filter.limit ?? 0 }).filter((s) => !s.test).reverse();
  const result: RetryResult = {
    dryRun: req.dryRun, selected: selected.length, retried: 0, sent: 0, failed: 0, deferred: 0, skipped: 0, queued: 0,
    leftOut: {}, candidates: [], outcome: null, transport: null,
  };
  const leaveOut = (reason: string) => { result.leftOut[reason] = (result.leftOut[reason] ?? 0) + 1; };
  const systemMailings = new Map<number, boolean>();
  const isSystemMailing = (id: number) => {
    if (!systemMailings.has(id)) systemMailings.set(id, !!store.mailings.mailing(id)?.system);
    return systemMailings.get(id)!;
  };
  for (const send of selected) {
    const member = store.members.memberById(send.memberId)!;
    // The rule the queue skips by: a member left out here would be skipped by the claim.
    const skip = store.members.memberSkip(member.id, send.mailingId);
    if (skip && skip.category !== 'suppressed') { leaveOut(skip.category); continue; }
    // The same address that was refused as unknown will be refused again; a new one may not.
    if (!req.includePermanent && send.category && HOPELESS_CATEGORIES.has(send.category) && member.email === send.email) {
      leaveOut(send.category);
      continue;
    }
    if (skip) { leaveOut(skip.category); continue; }
    // A system mail is rendered again from the data it came with: once prune removed that
    // (retention), it would be skipped as a mail with empty fields, or sent without them.
    if (isSystemMailing(send.mailingId) && store.sends.send(send.id)?.data == null && store.erasure.contentRemovedAt(send.id) !== null) { leaveOut(CONTENT_REMOVED); continue; }
    result.candidates.push({ send, to: member.email! });
  }
  result.retried = result.candidates.length;
  if (req.dryRun || result.candidates.length === 0) return result;

  const options = { ...queueSettings(store, req.settings, req.now), limit: runBudget(store, req.settings, undefined, req.now()).budget ?? undefined };
  return withSendLock(store, 'retry', req.now(), () => withTransports(openTransports, options.concurrency, async (transports, description) => {
    result.transport = description;
    // Each send is pointed at the current address only when the queue takes it (inside its
    // claim's transaction): one not reached (quota, outage, Ctrl-C) keeps the address and token
    // it last went out with.
    let next = 0;
    const source = () => {
      const c = result.candidates[next++];
      if (!c) return undefined;
      store.sends.prepareRetry(c.send.id, c.to, req.now());
      store.erasure.reopenForPrune(c.send.id);
      return c.send.id;
    };
    const outcome = await deliverSends(deliveryStore(store), transports, source, options);
    result.outcome = outcome;
    Object.assign(result, { sent: outcome.sent, failed: outcome.failed, deferred: outcome.deferred, skipped: outcome.skipped });
    result.queued = result.retried - outcome.sent - outcome.failed - outcome.deferred - outcome.skipped;
    return result;
  }));
}
