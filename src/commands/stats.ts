import type { Command } from 'commander';
import { collect, withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to stats's action. */
interface StatsFlags {
  mailing: string[];
  type: string[];
  since?: string;
  until?: string;
}

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('per mailing: selected, sent, failed by reason, deferred, bounced, opened, open rate, unsubscribed')
    .addHelpText('after', examples(['mailer stats', 'mailer stats --mailing 7 --json']))
    .option('--mailing <id>', 'this mailing (repeatable)', collect, [])
    .option('--type <type>', 'mail type (repeatable)', collect, [])
    .option('--since <when>', '2026-11-01, 2026-11-01T08:00, or back from now: 90m, 36h, 7d')
    .option('--until <when>', 'same forms; a date alone includes that day')
    .action((opts: StatsFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { parseSendFilter } = await import('../config/filters.js');
      const { mailingStats } = await import('../triage/stats.js');
      const { out, store } = ctx;
      const filter = parseSendFilter(opts, ctx.now(), (m) => store.members.findMembers(m).map((x) => x.id));
      const stats = mailingStats(store, filter);
      if (out.json) {
        out.jsonResult(stats);
        return;
      }
      if (stats.length === 0) {
        out.line('no mailings match');
        return;
      }
      const { renderTable } = await import('../ui/table.js');
      out.line(renderTable(['mailing', 'type', 'topic', 'selected', 'sent', 'failed', 'deferred', 'bounced', 'opened', 'open rate', 'unsubscribed', 'failed by reason', 'skipped by reason'],
        stats.map((s) => [s.mailing, s.type, s.required ? `${s.topic} (required)` : s.topic, s.selected, s.sent, s.failed, s.deferred, s.bounced, s.opened,
          `${(s.openRate * 100).toFixed(1)}%`, s.unsubscribed,
          Object.entries(s.failedByReason).map(([k, n]) => `${k} ${n}`).join(', '),
          Object.entries(s.skippedByReason).map(([k, n]) => `${k === 'unsubscribed' ? `unsubscribed (${s.topic})` : k} ${n}`).join(', ')]), { tty: out.isTTY }));
      const optOuts = store.triage.optOutCounts();
      const topics = Object.entries(optOuts.byTopic).map(([t, n]) => `${t === '*' ? 'all topics' : t} ${n}`);
      if (topics.length || optOuts.addressWide) {
        out.line(`opted out by topic: ${topics.length ? topics.join(', ') : 'none'}; suppressed for every mail: ${optOuts.addressWide}`);
      }
    }));
}
