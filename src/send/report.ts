import type { Store } from '../store/store.js';
import { addressOf, composeNotice } from '../mail/compose.js';
import type { MailingSummary } from './mailing.js';
import type { Transport } from '../domain/ports.js';

/**
 * The operator's summary after a run, so that whoever started it learns the outcome without
 * looking: counts by status and reason, the failed ones by name, and the commands
 * that retry them.
 */
export interface OperatorReport {
  subject: string;
  text: string;
}

export function buildReport(store: Store, summaries: MailingSummary[], listed = 100): OperatorReport {
  const lines: string[] = [];
  let sent = 0;
  let failed = 0;
  for (const s of summaries) {
    sent += s.sent;
    failed += s.failed + s.deferred;
    const mailing = store.mailings.mailing(s.mailing)!;
    lines.push(`Mailing ${s.mailing} (${mailing.type}, ${mailing.templatePath}): ${s.status}${s.statusReason ? ` — ${s.statusReason}` : ''}`);
    lines.push(`  selected ${s.selected}, sent ${s.sent}, failed ${s.failed}, deferred ${s.deferred}, skipped ${s.skipped}, queued ${s.queued}`);
    const reasons = Object.entries(s.byReason);
    if (reasons.length) lines.push(`  by reason: ${reasons.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    const notSent = store.log.logSends({ mailings: [s.mailing], statuses: ['failed', 'deferred'], limit: listed });
    for (const n of notSent) lines.push(`  - ${n.status} ${n.category}: member ${n.memberKey}${n.memberName ? ` (${n.memberName})` : ''} <${n.email}> — ${n.reason ?? ''} [send ${n.id}]`);
    if (s.failed + s.deferred > notSent.length) lines.push(`  … and ${s.failed + s.deferred - notSent.length} more: mailer log --mailing ${s.mailing} --status failed --status deferred --limit 0`);
    if (s.failed) lines.push(`  retry the failed ones: mailer retry --failed --mailing ${s.mailing}`);
    if (s.deferred) lines.push(`  deferred ones are retried by \`mailer run\`; now: mailer retry --deferred --mailing ${s.mailing}`);
    if (s.queued) lines.push(`  finish it: mailer send --resume ${s.mailing}`);
    lines.push('');
  }
  return {
    subject: `mailer: ${sent} sent, ${failed} not delivered (${summaries.map((s) => `mailing ${s.mailing}`).join(', ')})`,
    text: lines.join('\n'),
  };
}

/** Sends the report through the first server that takes it; returns the error if none does. */
export async function deliverReport(
  transports: Transport[], report: OperatorReport, to: string, from: string, envelopeFrom: string | undefined,
): Promise<{ ok: true; response: string } | { ok: false; error: string }> {
  const raw = await composeNotice({ from, to, subject: report.subject, text: report.text });
  let error = 'no mail server to send it';
  for (const transport of transports) {
    try {
      return { ok: true, response: await transport.deliver({ from: envelopeFrom ?? addressOf(from, 'the sender'), to: [to] }, raw, `report-${Date.now()}`) };
    } catch (err) {
      error = `${transport.description}: ${(err as Error).message}`;
    }
  }
  return { ok: false, error };
}
