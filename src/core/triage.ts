import { badInput } from '../errors.js';
import type { BounceRecord, Store, Suppression } from '../store/store.js';
import { addressProblem, normalizeAddress } from './address.js';
import { explain } from './catalog.js';
import { findSend } from './inspect.js';
import { deliverSends, listSource, queueSettings, type QueueOutcome } from './queue.js';
import { withSendLock, withTransports, type OpenTransports } from './session.js';
import { runBudget } from './quota.js';
import type { Settings } from './settings.js';
import { suspectTypo } from './typo.js';
import type { AddressRecord, Member, Send, SendFilter } from './types.js';

/** Failures a retry to the same address cannot cure. */
export const HOPELESS_CATEGORIES: ReadonlySet<string> = new Set(['unknown-mailbox', 'bad-domain']);


// -- retry -----------------------------------------------------------------------------------

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
  const selected = store.logSends({ ...req.filter, statuses, limit: req.filter.limit ?? 0 }).filter((s) => !s.test).reverse();
  const result: RetryResult = {
    dryRun: req.dryRun, selected: selected.length, retried: 0, sent: 0, failed: 0, deferred: 0, skipped: 0, queued: 0,
    leftOut: {}, candidates: [], outcome: null, transport: null,
  };
  const leaveOut = (reason: string) => { result.leftOut[reason] = (result.leftOut[reason] ?? 0) + 1; };
  for (const send of selected) {
    const member = store.memberById(send.memberId)!;
    if (!member.email || member.emailProblem) { leaveOut(member.emailProblem ?? 'no-address'); continue; }
    // The same address that was refused as unknown will be refused again; a new one may not.
    if (!req.includePermanent && send.category && HOPELESS_CATEGORIES.has(send.category) && member.email === send.email) {
      leaveOut(send.category);
      continue;
    }
    if (store.suppression(member.email)) { leaveOut('suppressed'); continue; }
    result.candidates.push({ send, to: member.email });
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
      store.prepareRetry(c.send.id, c.to, req.now());
      return c.send.id;
    };
    const outcome = await deliverSends(store, transports, source, options);
    result.outcome = outcome;
    Object.assign(result, { sent: outcome.sent, failed: outcome.failed, deferred: outcome.deferred, skipped: outcome.skipped });
    result.queued = result.retried - outcome.sent - outcome.failed - outcome.deferred - outcome.skipped;
    return result;
  }));
}

// -- re-target ---------------------------------------------------------------------------------

export interface RetargetResult {
  original: Send;
  replacement: Send;
  revoked: string[];
  outcome: QueueOutcome;
  transport: string;
}

export async function retarget(
  store: Store, openTransports: OpenTransports,
  req: { sendId: number; to: string; reason: string; settings: Settings; now: () => number },
): Promise<RetargetResult> {
  const to = normalizeAddress(req.to);
  const problem = addressProblem(to);
  if (problem) throw badInput(`"${req.to}" is not a valid e-mail address: ${problem}`, 'nothing was changed; ask the member for the address again');
  const original = findSend(store, req.sendId);
  if (original.test) throw badInput(`send ${original.id} is a test send`, 're-target the real send of that member (mailer log --member …)');
  if (original.status === 'retargeted') {
    throw badInput(`send ${original.id} was already re-targeted, to send ${original.retargetedTo}`, `mailer retarget ${original.retargetedTo} --to ${to}`);
  }
  const member = store.memberById(original.memberId)!;
  if (member.email === to && original.email === to) {
    throw badInput(`${to} is already the address of member ${member.key}, and send ${original.id} went to it`, `to send it again to the same address: mailer retry --failed --deferred --member ${member.key} --include-permanent`);
  }
  const suppressed = store.suppression(to);
  if (suppressed) throw badInput(`${to} is suppressed (${suppressed.reason})`, `if the member wants mail there again: mailer suppress remove ${to}`);

  const revoked = [...new Set([member.email, original.email])].filter((e): e is string => !!e && e !== to);
  return withSendLock(store, 'retarget', req.now(), () => {
    const replacementId = store.retarget(original, to, req.reason, req.now());
    const options = { ...queueSettings(store, req.settings, req.now), concurrency: 1, limit: runBudget(store, req.settings, undefined, req.now()).budget ?? undefined };
    return withTransports(openTransports, 1, async (transports, description) => {
      const outcome = await deliverSends(store, transports, listSource([replacementId]), options);
      return { original: store.send(original.id)!, replacement: store.send(replacementId)!, revoked, outcome, transport: description };
    });
  });
}

// -- tokens ------------------------------------------------------------------------------------

export type TokenState = 'valid' | 'revoked' | 'unknown' | 'test';

export function verifyToken(store: Store, token: string): { state: TokenState; member?: string; name?: string | null; email?: string | null; send?: number } {
  const owner = store.tokenOwner(token.trim());
  if (!owner) return { state: 'unknown' };
  // A test mail carries a real member's data but went to the operator: its link registers no one.
  return {
    state: owner.test ? 'test' : owner.revokedAt === null ? 'valid' : 'revoked',
    member: owner.memberKey, name: owner.memberName, email: owner.email, send: owner.sendId,
  };
}

// -- why -----------------------------------------------------------------------------------------

export interface WhyReport {
  member: Member;
  others: string[];
  addresses: AddressRecord[];
  suppressions: Suppression[];
  sends: (Send & { explanation: string; bounces: BounceRecord[]; opened: boolean })[];
  typo: { address: string; suggestion: string } | null;
  nextSteps: string[];
}

export function why(store: Store, idOrEmail: string, limit = 20): WhyReport {
  const members = store.findMembers(idOrEmail.trim());
  if (members.length === 0) {
    throw badInput(`no member with id or address "${idOrEmail}"`, 'check the spelling; `mailer log --email <address>` lists sends by address');
  }
  const [member, ...others] = members;
  const addresses = store.addressHistory(member.id);
  const sends = store.logSends({ memberIds: [member.id], limit }).map((s) => ({
    ...s, explanation: s.category ? explain(s.category) : '', bounces: store.bounces(s.id), opened: store.events(s.id).some((e) => e.kind === 'open'),
  }));
  const suppressions = [...new Set(addresses.map((a) => a.email))]
    .map((e) => store.suppression(e)).filter((s): s is Suppression => !!s);
  const suggestion = member.email ? suspectTypo(member.email) : null;
  const report: WhyReport = {
    member, others: others.map((m) => m.key), addresses, suppressions, sends,
    typo: suggestion ? { address: member.email!, suggestion } : null, nextSteps: [],
  };
  report.nextSteps = nextSteps(report);
  return report;
}

/** The step a person would take next, as a command they can run. */
function nextSteps(r: WhyReport): string[] {
  const { member } = r;
  const last = r.sends.find((s) => !s.test);
  const steps: string[] = [];
  const currentSuppressed = r.suppressions.find((s) => s.email === member.email);
  if (!member.email) {
    steps.push(`the member has no address: ask for one, then add it to the member file and import it (or, after a send: mailer retarget <send id> --to <address>)`);
    return steps;
  }
  if (r.typo) {
    steps.push(last
      ? `the address ${r.typo.address} looks like a typo; if the member confirms: mailer retarget ${last.id} --to ${r.typo.suggestion} --reason "typo"`
      : `the address ${r.typo.address} looks like a typo of ${r.typo.suggestion}: correct it in the member file and import it again`);
  }
  if (currentSuppressed) {
    steps.push(`${member.email} is suppressed (${currentSuppressed.reason}); if the member wants mail there again: mailer suppress remove ${member.email}`);
  }
  if (!last) {
    steps.push('no mail has been sent to this member yet');
    return steps;
  }
  switch (last.status) {
    case 'bounced':
      steps.push(`send ${last.id} bounced after the server had accepted it (${last.category}); ask the member for another address: mailer retarget ${last.id} --to <address> --reason "bounced"`);
      break;
    case 'sent':
      if (last.opened) {
        steps.push(`send ${last.id} was opened: the member has it; ask them to search for "${last.type}" in their mailbox`);
        break;
      }
      steps.push(`send ${last.id} was accepted by the server; ask the member to look in the spam folder, then wait until the next morning 08:00 (some servers hold mail from new senders overnight)`);
      steps.push(`still nothing? send it to another address of theirs: mailer retarget ${last.id} --to <other address> --reason "not received"`);
      break;
    case 'deferred':
      steps.push(`send ${last.id} is waiting to be retried (${last.category}); to try now: mailer retry --deferred --member ${member.key}`);
      break;
    case 'failed':
      if (last.category && HOPELESS_CATEGORIES.has(last.category)) {
        steps.push(`the address does not work (${last.category}); ask the member for the right one: mailer retarget ${last.id} --to <address> --reason "${last.category}"`);
      } else {
        steps.push(`send ${last.id} failed (${last.category}); when the cause is fixed: mailer retry --failed --member ${member.key}`);
      }
      break;
    case 'skipped':
      steps.push(`send ${last.id} was skipped: ${last.reason}`);
      break;
    case 'queued':
      steps.push(`send ${last.id} is still queued: mailer send --resume ${last.mailingId}`);
      break;
    case 'retargeted':
      steps.push(`send ${last.id} was re-targeted to send ${last.retargetedTo}: mailer show ${last.retargetedTo}`);
      break;
    default:
      steps.push(`send ${last.id} is ${last.status}: mailer show ${last.id}`);
  }
  return steps;
}

