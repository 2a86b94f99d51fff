import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { findSend } from '../store/sends.js';
import { addressProblem, normalizeAddress } from '../domain/address.js';
import { deliverSends, listSource, type QueueOutcome } from './queue.js';
import { deliveryStore, queueSettings } from './delivery-store.js';
import { withSendLock, withTransports, type OpenTransports } from './session.js';
import { runBudget } from './quota.js';
import type { Settings } from '../config/settings.js';
import type { Send } from '../domain/types.js';

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
  const member = store.members.memberById(original.memberId)!;
  if (member.email === to && original.email === to) {
    throw badInput(`${to} is already the address of member ${member.key}, and send ${original.id} went to it`, `to send it again to the same address: mailer retry --failed --deferred --member ${member.key} --include-permanent`);
  }
  const suppressed = store.triage.suppression(to);
  if (suppressed) throw badInput(`${to} is suppressed (${suppressed.reason})`, `if the member wants mail there again: mailer suppress remove ${to}`);

  const revoked = [...new Set([member.email, original.email])].filter((e): e is string => !!e && e !== to);
  return withSendLock(store, 'retarget', req.now(), () => {
    const replacementId = store.sends.retarget(original, to, req.reason, req.now());
    const options = { ...queueSettings(store, req.settings, req.now), concurrency: 1, limit: runBudget(store, req.settings, undefined, req.now()).budget ?? undefined };
    return withTransports(openTransports, 1, async (transports, description) => {
      const outcome = await deliverSends(deliveryStore(store), transports, listSource([replacementId]), options);
      return { original: store.sends.send(original.id)!, replacement: store.sends.send(replacementId)!, revoked, outcome, transport: description };
    });
  });
}
