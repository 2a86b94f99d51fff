import type { Command } from 'commander';
import { withContext } from './context.js';
import { wholeNumber } from '../config/numbers.js';
import { examples } from './help.js';

/** What commander hands to why's action. */
interface WhyFlags {
  limit: string;
}

export function registerWhy(program: Command): void {
  program
    .command('why')
    .description("everything about one member's mails, and the next step to take")
    .addHelpText('after', examples(['mailer why anna@example.org', 'mailer why 1042 --limit 5']))
    .argument('<member>', 'member id or e-mail address (also an old one)')
    .option('--limit <n>', 'at most n sends', '20')
    .action((who: string, opts: WhyFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { whyWithDomainCheck, ErasedMember } = await import('../triage/why.js');
      const { formatTime, isoTime } = await import('../ui/output.js');
      const { sendRecord } = await import('../ui/send-record.js');
      const { out, store } = ctx;
      let r: Awaited<ReturnType<typeof whyWithDomainCheck>>;
      try {
        r = await whyWithDomainCheck(store, who, wholeNumber(opts.limit, '--limit'), ctx.settings);
      } catch (err) {
        if (!(err instanceof ErasedMember)) throw err;
        // Nothing else is stored about them: that is the answer, not an error.
        if (out.json) out.jsonResult({ member: who, erased: { at: isoTime(err.at), reason: err.reason } });
        else out.line(`member ${who}: ${err.message}; nothing else is stored about them (mailer forget)`);
        return;
      }
      const m = r.member;
      if (out.json) {
        out.jsonResult({
          member: { id: m.key, name: m.name, email: m.email, problem: m.emailProblem },
          otherMembersWithThisAddress: r.others,
          addresses: r.addresses.map((a) => ({ email: a.email, addedAt: isoTime(a.addedAt), replacedAt: isoTime(a.replacedAt), revokedAt: isoTime(a.revokedAt), revokeReason: a.revokeReason })),
          suppressions: r.suppressions.map((s) => ({ email: s.email, reason: s.reason, since: isoTime(s.createdAt) })),
          optOuts: r.optOuts.map((o) => ({ email: o.email, topic: o.topic, reason: o.reason, since: isoTime(o.createdAt) })),
          sends: r.sends.map((s) => ({
            ...sendRecord(s), explanation: s.explanation, retargetedTo: s.retargetedTo, retargetOf: s.retargetOf, opened: s.opened,
            bounces: s.bounces.map((b) => ({ at: isoTime(b.at), action: b.action, status: b.statusCode, diagnostic: b.diagnostic })),
          })),
          typo: r.typo,
          nextSteps: r.nextSteps,
        });
        return;
      }
      out.line(out.bold(`member ${m.key}${m.name ? ` — ${m.name}` : ''}`) + `  ${m.email ?? '(no address)'}${m.emailProblem ? `  [${m.emailProblem}]` : ''}`);
      if (r.others.length) out.line(`(the address also belongs to member ${r.others.join(', ')})`);
      if (r.typo) out.line(`⚠ ${r.typo.address} looks like a typo — did they mean ${r.typo.suggestion}?`);
      for (const s of r.suppressions) out.line(`⚠ ${s.email} is suppressed since ${formatTime(s.createdAt)}: ${s.reason}`);
      for (const o of r.optOuts) {
        out.line(`⚠ ${o.email} has opted out of ${o.topic === '*' ? 'all topics' : `the topic "${o.topic}"`} since ${formatTime(o.createdAt)}: ${o.reason}`);
      }
      out.line();
      out.line('addresses:');
      for (const a of r.addresses) {
        const state = a.revokedAt ? `revoked ${formatTime(a.revokedAt)}${a.revokeReason ? ` (${a.revokeReason})` : ''}` : a.replacedAt ? `replaced ${formatTime(a.replacedAt)}` : 'current';
        out.line(`  ${a.email}  since ${formatTime(a.addedAt)}, ${state}`);
      }
      out.line();
      out.line(r.sends.length ? 'sends, newest first:' : 'no sends yet');
      for (const s of r.sends) {
        out.line(`  ${s.id}  ${formatTime(s.sentAt ?? s.updatedAt)}  ${s.type}  to ${s.email ?? '-'}  ${s.status}${s.test ? ' (test)' : ''}${s.retargetedTo ? ` → send ${s.retargetedTo}` : ''}${s.retargetOf ? ` (re-target of ${s.retargetOf})` : ''}`);
        if (s.category) out.line(`      ${s.category}: ${s.reason ?? ''}`);
        if (s.explanation && s.status !== 'sent') out.line(`      ${s.explanation}`);
        for (const b of s.bounces) out.line(`      bounce ${formatTime(b.at)}: ${b.action} ${b.statusCode ?? ''} ${b.diagnostic ?? ''}`.trimEnd());
        if (s.opened) out.line('      opened');
      }
      out.line();
      out.line('next:');
      for (const step of r.nextSteps) out.line(`  ${step}`);
    }));
}
