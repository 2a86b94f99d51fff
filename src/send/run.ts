import type { Store } from '../store/store.js';
import { checkAttachments, summarize, type MailingSummary } from './mailing.js';
import { deliverSends, listSource, mailingQueue, type QueueOutcome } from './queue.js';
import { deliveryStore, queueSettings } from './delivery-store.js';
import { reportTo, settleMailing, type ReportResult } from './send.js';
import { stopRequest, withSendLock, withTransports, type OpenTransports } from './session.js';
import type { Settings } from '../config/settings.js';
import { runBudget } from './quota.js';
import { makePlanMailings, type PlanRunResult } from './plan.js';
import { prune, type PruneResult } from './prune.js';

/**
 * `mailer run`, for cron: starts the mailings that are due, finishes interrupted ones, and
 * retries deferred sends whose back-off has passed — within the run's cap and the provider's
 * hourly and daily quota, counted in the database so that consecutive runs add up.
 */
export interface RunRequest {
  max?: number;
  settings: Settings;
  now: () => number;
  onEvent?: (line: string) => void;
  /** work done first, under the run's lock (the bounce mailbox's fetch: its suppressions count for this run) */
  first?: () => Promise<void>;
}

export interface RunResult {
  mailings: MailingSummary[];
  retried: { sent: number; failed: number; deferred: number; skipped: number } | null;
  budget: number | null;
  budgetReason: string | null;
  handedOver: number;
  stopped: QueueOutcome['stopped'];
  failed: number;
  deferred: number;
  /** mails skipped for being over maxMessageBytes */
  tooLarge: number;
  /** mails skipped because a file could not be attached */
  unattachable: number;
  report?: ReportResult;
  /** the plans' mailings made by this run, and the periods it found passed unmade */
  plans: PlanRunResult;
  /** what retention removed first, when it is set */
  pruned: PruneResult;
}

export async function runDue(store: Store, openTransports: OpenTransports, req: RunRequest): Promise<RunResult> {
  const say = req.onEvent ?? (() => {});
  return withSendLock(store, 'run', req.now(), async () => {
    await req.first?.();
    const now = req.now();
    // First the plans: a mailing made here is due now and is sent below with the others (or
    // stays scheduled for the next run when the quota is used up).
    // Retention first (the setting, or a template's Retention:): what is past its time goes
    // before anything new is written. Without either, nothing is removed.
    const pruned = prune(store, req.settings.retention, { now, dryRun: false });
    if (pruned && (pruned.messages || pruned.sends)) say(`pruned by retention: ${pruned.messages} stored messages, ${pruned.sends} send rows`);
    const plans = makePlanMailings(store, req.settings, now, say);
    const { budget, reason } = runBudget(store, req.settings, req.max === undefined ? undefined : { n: req.max, flag: '--max' }, now);
    const result: RunResult = { mailings: [], retried: null, budget, budgetReason: reason, handedOver: 0, stopped: null, failed: 0, deferred: 0, tooLarge: 0, unattachable: 0, plans, pruned };
    const retryIds = () => store.sends.dueRetries(req.now(), remaining() ?? 1_000_000);
    const remaining = () => (budget === null ? undefined : budget - result.handedOver);
    if (budget === 0) {
      const due = store.mailings.dueMailings(now).length;
      say(`nothing sent: the quota is used up (${reason}); the next run continues${due ? ` (${due} due mailing${due > 1 ? 's' : ''} waiting)` : ''}`);
      return result;
    }
    // A due mailing becomes `running` when the run reaches it: one not reached (the cap, a
    // server gone, Ctrl-C) stays scheduled. One with nothing left queued is settled as done.
    const due = new Set(store.mailings.dueMailings(now));
    const mailingIds = [...new Set([...store.mailings.unfinishedMailings(), ...due])].sort((a, b) => a - b);
    if (mailingIds.length === 0 && store.sends.dueRetries(now, 1).length === 0) {
      say('nothing to do');
      return result;
    }
    const options = queueSettings(store, req.settings, req.now);
    const engineStore = deliveryStore(store);
    return withTransports(openTransports, options.concurrency, async (transports, description) => {
      // Ctrl-C (or cron's SIGTERM) ends the run after the sends in hand: the mailings not reached
      // keep their status, and no retry starts.
      const goOn = () => remaining() !== 0 && !result.stopped && !stopRequest.signal.aborted;
      for (const id of mailingIds) {
        if (!goOn()) break;
        // Cancelled since this run listed it: nothing of it is sent, and it stays cancelled.
        if (!store.mailings.startMailing(id)) continue;
        if (due.has(id)) {
          say(`mailing ${id} is due: sending`);
          // Its first run, as `send` does for one sent at once: every member's files are looked
          // at before the first mail goes, and the ones that cannot be sent are listed now.
          result.unattachable += checkAttachments(store, store.mailings.mailing(id)!, req.settings.maxMessageBytes, req.now());
        }
        say(`mailing ${id}: sending ${summarize(store, id).queued} queued via ${description}`);
        const outcome = await deliverSends(engineStore, transports, mailingQueue(engineStore, id), { ...options, limit: remaining() });
        settleMailing(store, id, outcome, reason ?? undefined, req.now());
        count(result, outcome);
        const summary = summarize(store, id);
        result.mailings.push(summary);
        say(`mailing ${id}: ${summary.status}, sent ${outcome.sent}, failed ${outcome.failed}, deferred ${outcome.deferred}, still queued ${summary.queued}`);
        if (outcome.tooLarge > 0) sayTooLarge(store, id, outcome.tooLarge, say);
      }
      if (goOn()) {
        const ids = retryIds();
        if (ids.length) {
          say(`retrying ${ids.length} deferred sends whose back-off has passed`);
          const outcome = await deliverSends(engineStore, transports, listSource(ids), { ...options, limit: remaining() });
          count(result, outcome);
          result.retried = { sent: outcome.sent, failed: outcome.failed, deferred: outcome.deferred, skipped: outcome.skipped };
          say(`retries: sent ${outcome.sent}, failed ${outcome.failed}, deferred again ${outcome.deferred}`);
        }
      }
      if (budget !== null && remaining() === 0) say(`stopped at the cap (${reason}); the next run continues`);
      if (result.handedOver > 0) result.report = await reportTo(store, transports, req.settings, result.mailings);
      return result;
    });
  });
}

function count(result: RunResult, outcome: QueueOutcome): void {
  result.handedOver += outcome.sent + outcome.failed + outcome.deferred;
  result.failed += outcome.failed;
  result.deferred += outcome.deferred;
  result.tooLarge += outcome.tooLarge;
  result.unattachable += outcome.unattachable;
  result.stopped ??= outcome.stopped;
}

/** The members a run skipped as too large, by name: the operator has to shorten the mail. */
function sayTooLarge(store: Store, mailingId: number, n: number, say: (line: string) => void): void {
  const listed = store.log.logSends({ mailings: [mailingId], statuses: ['skipped'], categories: ['too-large'], limit: 20 });
  say(`mailing ${mailingId}: ${n} skipped as too large: ${listed.map((s) => `member ${s.memberKey} (send ${s.id})`).join(', ')}${n > listed.length ? ', …' : ''}; ${listed[0]?.reason ?? ''}`);
}
