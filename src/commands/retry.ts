import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { addSendFilterOptions, addTransportOptions, transportFlags, type SendFilterFlags, type TransportFlags } from './filter-options.js';
import { collect, withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to retry's action. */
interface RetryFlags extends SendFilterFlags, TransportFlags {
  failed?: boolean;
  deferred?: boolean;
  reason: string[];
  includePermanent?: boolean;
  limit?: string;
  dryRun?: boolean;
}

export function registerRetry(program: Command): void {
  addTransportOptions(addSendFilterOptions(
    program
      .command('retry')
      .description("send failed or deferred mails again, to each member's current address")
      .addHelpText('after', examples(['mailer retry --deferred --reason greylisted', 'mailer retry --failed --mailing 7 --dry-run'])),
  ))
    .option('--failed', 'retry failed sends')
    .option('--deferred', 'retry deferred sends (greylisting, full mailbox, rate limits)')
    .option('--reason <category>', 'only sends with this error category (repeatable), e.g. greylisted', collect, [])
    .option('--include-permanent', 'also retry unknown mailboxes and bad domains to the same address')
    .option('--limit <n>', 'at most n sends (default: all that match)')
    .option('--dry-run', 'list what would be retried, send nothing')
    .action((opts: RetryFlags, command: Command) => withContext(command, transportFlags(opts), async (ctx) => {
      const { parseSendFilter } = await import('../config/filters.js');
      const { retrySends, CONTENT_REMOVED } = await import('../send/retry.js');
      const { HOPELESS_CATEGORIES } = await import('../domain/catalog.js');
      const { serverStopped, changedAttachmentNotes } = await import('../send/queue.js');
      const { openTransports } = await import('../mail/transports.js');
      const { renderTable } = await import('../ui/table.js');
      const { out, store } = ctx;
      const filter = parseSendFilter(opts, ctx.now(), (m) => store.members.findMembers(m).map((x) => x.id));
      const r = await retrySends(store, (n) => openTransports(ctx.settings, n), {
        failed: !!opts.failed, deferred: !!opts.deferred, filter, includePermanent: !!opts.includePermanent,
        dryRun: !!opts.dryRun, settings: ctx.settings, now: ctx.now,
      });
      const leftOut = Object.values(r.leftOut).reduce((a, b) => a + b, 0);
      for (const note of changedAttachmentNotes(r.outcome)) out.warn(note);
      if (out.json) {
        out.jsonResult({
          dryRun: r.dryRun, selected: r.selected, retried: r.retried, sent: r.sent, failed: r.failed, deferred: r.deferred,
          skipped: r.skipped, queued: r.queued, leftOut, leftOutByReason: r.leftOut,
          sends: r.candidates.map((c) => ({ id: c.send.id, member: c.send.memberKey, from: c.send.email, to: c.to, status: c.send.status, category: c.send.category })),
        });
      } else {
        if (r.dryRun) {
          out.line(`dry run: ${r.retried} would be retried, ${leftOut} left out; nothing was sent`);
          if (r.candidates.length) {
            out.line(renderTable(['send', 'member', 'was sent to', 'goes to', 'status', 'reason'],
              r.candidates.map((c) => [c.send.id, c.send.memberKey, c.send.email, c.to, c.send.status, c.send.category]), { tty: out.isTTY }));
          }
        } else {
          out.line(`retried ${r.retried} of ${r.selected} selected: ${r.sent} sent, ${r.failed} failed, ${r.deferred} deferred, ${r.skipped} skipped${r.queued ? `, ${r.queued} not tried` : ''}`);
        }
        if (leftOut) {
          out.line(`left out ${leftOut}: ${Object.entries(r.leftOut).map(([k, n]) => `${k} ${n}`).join(', ')}`);
          if (r.leftOut[CONTENT_REMOVED]) {
            out.line('  a system mail whose data was removed with its content (retention; mailer prune) cannot be made again: send it anew with its data (mailer send <template> --to … --data …)');
          }
          if ([...HOPELESS_CATEGORIES].some((c) => r.leftOut[c])) {
            out.line('  the same address would be refused again: ask the member for a new one (mailer retarget <send> --to …), or add --include-permanent');
          }
        }
        if (r.selected === 0) out.line('no failed or deferred sends match');
      }
      if (r.outcome?.stopped) throw serverStopped(r.outcome.stopped, `${r.queued} sends were not tried; they keep their status.`, 'the same retry command');
      if (r.failed || r.deferred) return ExitCode.someFailed;
    }));
}
