import type { Command } from 'commander';
import { collect, withContext } from './context.js';
import { wholeNumber } from '../config/numbers.js';
import { examples } from './help.js';

/** What commander hands to mailings's action. */
interface MailingsFlags {
  limit: string;
}

/** What commander hands to cancel's action. */
interface CancelFlags {
  member: string[];
}

export function registerMailings(program: Command): void {
  program
    .command('mailings')
    .description('the mailings, newest first: scheduled, running, paused, done, cancelled, with counts')
    .addHelpText('after', examples(['mailer mailings', 'mailer mailings --limit 5 --json']))
    .option('--limit <n>', 'at most n mailings', '20')
    .action((opts: MailingsFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { formatTime, isoTime } = await import('../ui/output.js');
      const { renderTable } = await import('../ui/table.js');
      const list = ctx.store.mailings.list(wholeNumber(opts.limit, '--limit'));
      if (ctx.out.json) {
        ctx.out.jsonResult(list.map((m) => ({
          mailing: m.id, plan: ctx.store.plans.planOfMailing(m.id)?.name ?? null, type: m.type, template: m.templatePath, test: m.test, status: m.status, reason: m.statusReason,
          createdAt: isoTime(m.createdAt), scheduledAt: isoTime(m.scheduledAt), finishedAt: isoTime(m.finishedAt),
          selected: m.selected, sent: m.sent, failed: m.failed, deferred: m.deferred, skipped: m.skipped, queued: m.queued, cancelled: m.cancelled,
        })));
        return;
      }
      if (list.length === 0) {
        ctx.out.line('no mailings yet: mailer send <template>');
        return;
      }
      const planOf = (id: number) => {
        const p = ctx.store.plans.planOfMailing(id);
        return p ? `${p.name}${p.kind === 'follow-up' ? ' (follow-up)' : ''}` : '';
      };
      ctx.out.line(renderTable(['id', 'type', 'plan', 'status', 'when', 'selected', 'sent', 'failed', 'deferred', 'skipped', 'queued', 'cancelled'],
        list.map((m) => [m.id, m.test ? `${m.type} (test)` : m.type, planOf(m.id), m.statusReason ? `${m.status}: ${m.statusReason}` : m.status,
          formatTime(m.status === 'scheduled' ? m.scheduledAt : m.finishedAt ?? m.createdAt), m.selected, m.sent, m.failed, m.deferred, m.skipped, m.queued, m.cancelled]),
        { tty: ctx.out.isTTY }));
    }));

  program
    .command('cancel')
    .description('cancel what has not been sent yet: a whole mailing, or single members of it')
    .addHelpText('after', examples(['mailer cancel 12', 'mailer cancel 12 --member 1042']))
    .argument('<mailing>', 'mailing id (see mailer mailings)')
    .option('--member <id|email>', 'only this member (repeatable): the customer who already came by', collect, [])
    .action((id: string, opts: CancelFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { cancelMailing } = await import('../send/cancel.js');
      const { parseId } = await import('../config/filters.js');
      const r = cancelMailing(ctx.store, parseId(id, 'mailing'), opts.member, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult(r);
      else if (opts.member.length) ctx.out.line(`mailing ${r.mailing}: ${r.cancelled} send(s) cancelled for ${opts.member.join(', ')}${r.alreadySent ? `; ${r.alreadySent} already sent` : ''}`);
      else ctx.out.line(`mailing ${r.mailing} cancelled: ${r.cancelled} unsent send(s) will not go out`);
      if (r.inFlight) ctx.out.warn(`${r.inFlight} send(s) were being handed to the server at this moment and may already be out: mailer log --mailing ${r.mailing}`);
    }));
}
