import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { explain, HOPELESS_CATEGORIES } from '../domain/catalog.js';
import { suspectTypo } from './typo.js';
import type { AddressRecord, Member, OptOut, Send, BounceRecord, Suppression } from '../domain/types.js';
import type { Settings } from '../config/settings.js';
import { deliverabilityWords } from '../domain/deliverability.js';

export interface WhyReport {
  member: Member;
  others: string[];
  addresses: AddressRecord[];
  suppressions: Suppression[];
  /** opt-outs of single topics (or '*', all topics), of the member's addresses */
  optOuts: OptOut[];
  sends: (Send & { explanation: string; bounces: BounceRecord[]; opened: boolean })[];
  typo: { address: string; suggestion: string } | null;
  nextSteps: string[];
}

/** A member who was erased: all that is left to say. */
export class ErasedMember extends Error {
  constructor(readonly at: number, readonly reason: string) {
    super(`erased on ${new Date(at).toISOString().slice(0, 10)} (${reason})`);
    this.name = 'ErasedMember';
  }
}

/** Throws ErasedMember for a member erased by `forget` (by the id or an address they had). */
export function why(store: Store, idOrEmail: string, limit = 20): WhyReport {
  const members = store.members.findMembers(idOrEmail.trim());
  const erased = members.length === 0 ? store.erasure.forgottenAs(idOrEmail) : members.length === 1 ? store.erasure.forgottenMember(members[0].id) : undefined;
  if (erased) throw new ErasedMember(erased.at, erased.reason);
  if (members.length === 0) {
    throw badInput(`no member with id or address "${idOrEmail}"`, 'check the spelling; `mailer log --email <address>` lists sends by address');
  }
  const [member, ...others] = members;
  const addresses = store.members.addressHistory(member.id);
  const sends = store.log.logSends({ memberIds: [member.id], limit }).map((s) => ({
    ...s, explanation: s.category ? explain(s.category) : '', bounces: store.triage.bounces(s.id), opened: store.triage.events(s.id).some((e) => e.kind === 'open'),
  }));
  const emails = [...new Set(addresses.map((a) => a.email))];
  const suppressions = emails.map((e) => store.triage.suppression(e)).filter((s): s is Suppression => !!s);
  const optOuts = emails.flatMap((e) => store.triage.optOutsOf(e));
  const suggestion = member.email ? suspectTypo(member.email) : null;
  const report: WhyReport = {
    member, others: others.map((m) => m.key), addresses, suppressions, optOuts, sends,
    typo: suggestion ? { address: member.email!, suggestion } : null, nextSteps: [],
  };
  report.nextSteps = nextSteps(report);
  return report;
}

/** Refusals that a sender domain without SPF, DKIM or DMARC draws. */
const DOMAIN_CATEGORIES: ReadonlySet<string> = new Set(['rejected-as-spam', 'policy']);
const UNDELIVERED: ReadonlySet<string> = new Set(['failed', 'deferred', 'bounced']);
/** why answers in a moment even when DNS does not: each query gets one short try, the check as a whole a deadline. */
const DOMAIN_CHECK_DEADLINE_MS = 3000;

/**
 * why, and when a send was refused as spam or by policy, the From domain's deliverability
 * check: one more next step when the domain fails it. The check runs only then, and a DNS that
 * does not answer leaves the report as it was.
 */
export async function whyWithDomainCheck(store: Store, idOrEmail: string, limit: number, settings: Settings): Promise<WhyReport> {
  const report = why(store, idOrEmail, limit);
  const refused = report.sends.find((s) => UNDELIVERED.has(s.status) && s.category !== null && DOMAIN_CATEGORIES.has(s.category));
  if (!refused) return report;
  try {
    const { domainCheckInput, domainOfAddress, failedRequirements } = await import('./deliverability.js');
    const { dnsResolver } = await import('../dns/resolver.js');
    const mailing = store.mailings.mailing(refused.mailingId);
    const templateFrom = /^From:[ \t]*(.+)$/im.exec(mailing?.template.split(/\r?\n\r?\n/)[0] ?? '')?.[1];
    // The sender as the run chose it (send/mailing.ts mailingContext): the template's From, else the settings'.
    const domain = domainOfAddress(templateFrom ?? mailing?.settings.from ?? settings.from);
    if (!domain) return report;
    const dns = dnsResolver({ servers: settings.dnsServers, timeoutMs: 1000, tries: 1 });
    const failing = await failedRequirements(domainCheckInput(settings, { domain, dns }), DOMAIN_CHECK_DEADLINE_MS);
    if (failing) {
      const words = deliverabilityWords();
      report.nextSteps.push(words.whyLine(domain, failing.map((name) => `${words.requirement[name]}: ${words.notMet}`).join('; ')));
    }
  } catch {
    // A domain that cannot be checked says nothing about the send: why stays as it is.
  }
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
  for (const o of r.optOuts.filter((x) => x.email === member.email)) {
    const topic = o.topic === '*' ? 'all topics' : `the topic "${o.topic}"`;
    steps.push(`${member.email} has opted out of ${topic} (${o.reason}), required mails still go out; if the member wants it again: mailer suppress remove ${member.email} --topic "${o.topic}"`);
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

