import type { Command } from 'commander';
import { ExitCode, MailerError } from '../errors.js';
import { addTransportOptions, transportFlags, type TransportFlags } from './filter-options.js';
import { withContext } from './context.js';
import { printReport, reportJson } from './send.js';
import { wholeNumber } from '../config/numbers.js';
import { examples } from './help.js';

/** What commander hands to run's action. */
interface RunFlags extends TransportFlags {
  max?: string;
  reportTo?: string;
}

export function registerRun(program: Command): void {
  addTransportOptions(
    program
      .command('run')
      .description('for cron: make the plans\' mailings when due, send due mailings, finish interrupted ones, retry deferred sends after their back-off')
    .addHelpText('after', examples(['mailer run', 'mailer run --max 500 --report-to vorstand@verein.example']))
      .option('--max <n>', 'at most n mails in this run (providers cap mails per hour or day)')
      .option('--report-to <address>', 'after a run that sent something, a summary mail (default: reportTo)'),
  ).action((opts: RunFlags, command: Command) => withContext(command, { ...transportFlags(opts), reportTo: opts.reportTo }, async (ctx) => {
    const { runDue } = await import('../send/run.js');
    const { openTransports } = await import('../mail/transports.js');
    const { isoTime } = await import('../ui/output.js');
    const { out, store } = ctx;
    const max = opts.max === undefined ? undefined : wholeNumber(opts.max, '--max');
    const stamp = () => new Date(ctx.now()).toISOString().replace(/\.\d+Z$/, 'Z');
    // The bounce mailbox first: a bounce that came in since the last run suppresses its address
    // before this run sends to it. A mailbox that cannot be read does not hold up the sending;
    // the run says so and ends with exit 3 naming it.
    let fetched: import('../triage/fetch.js').FetchResult | null = null;
    let mailboxError: MailerError | null = null;
    const first = ctx.settings.bounceMailbox ? async () => {
      const { fetchBounces, PROCESSED_FOLDER } = await import('../triage/fetch.js');
      const { catalogOf } = await import('../send/delivery-store.js');
      const { withMailboxLock } = await import('../send/lock.js');
      try {
        fetched = await withMailboxLock(store, 'run', ctx.now(), () => fetchBounces(store, catalogOf(store), ctx.settings, { dryRun: false, now: ctx.now }));
        const f = fetched;
        out.note(`${stamp()} bounce mailbox ${f.mailbox}: ${f.read} new, ${f.bounces} bounces (${f.matched} matched), moved ${f.moved} to ${PROCESSED_FOLDER}${f.unparsable.length ? `, ${f.unparsable.length} unparsable left in place (mailer bounces fetch --dry-run lists them)` : ''}`);
      } catch (err) {
        // Another process reading the mailbox reads what came in: this run sends without it.
        if (err instanceof MailerError && err.exitCode === ExitCode.locked) {
          out.warn(`${err.message}; sending goes on`);
          return;
        }
        if (!(err instanceof MailerError) || err.exitCode !== ExitCode.serverUnusable) throw err;
        mailboxError = err;
        out.warn(`${err.message}; sending goes on`);
      }
    } : undefined;
    const r = await runDue(store, (n) => openTransports(ctx.settings, n), {
      max, settings: ctx.settings, now: ctx.now, first,
      // One plain line per event: a cron mail that a person can read.
      onEvent: (line) => out.note(`${stamp()} ${line}`),
    });
    const { localLabel } = await import('../config/plan-schedule.js');
    for (const m of r.plans.missed) {
      out.warn(`plan ${m.plan}: ${m.followUp ? 'the follow-up of ' : 'the period '}${m.period} (due ${localLabel(m.due)}) passed without a run; it is not sent late`);
    }
    for (const e of r.plans.errors) {
      out.warn(`plan ${e.plan}: no ${e.followUp ? 'follow-up ' : ''}mailing made for ${e.period}: ${e.message}; the next run tries again`);
    }
    if (r.report) printReport(ctx, r.report);
    if (out.json) {
      out.jsonResult({
        handedOver: r.handedOver, budget: r.budget, budgetReason: r.budgetReason, retried: r.retried,
        mailings: r.mailings.map((s) => ({ mailing: s.mailing, status: s.status, selected: s.selected, sent: s.sent, failed: s.failed, deferred: s.deferred, skipped: s.skipped, queued: s.queued, byReason: s.byReason })),
        stopped: r.stopped,
        plans: r.plans.made.map((m) => ({ plan: m.plan, period: m.period, mailing: m.mailing, followUp: m.followUp, selected: m.selected })),
        missed: r.plans.missed.map((m) => ({ plan: m.plan, period: m.period, followUp: m.followUp, due: isoTime(m.due) })),
        planErrors: r.plans.errors,
        pruned: { messages: r.pruned.messages, sends: r.pruned.sends },
        ...(r.report ? { report: reportJson(r.report) } : {}),
        ...(ctx.settings.bounceMailbox ? { bounces: bounceJson(fetched) } : {}),
      });
    }
    if (r.stopped) {
      const { serverStopped } = await import('../send/queue.js');
      throw serverStopped(r.stopped, 'Unsent mails stay queued.', 'mailer run');
    }
    if (mailboxError) throw mailboxError;
    if (r.failed || r.deferred || r.tooLarge || r.unattachable || r.plans.errors.length) return ExitCode.someFailed;
  }));
}

function bounceJson(f: import('../triage/fetch.js').FetchResult | null) {
  if (!f) return null;
  return { read: f.read, bounces: f.bounces, matched: f.matched, unmatched: f.unmatched, moved: f.moved, left: f.left, unparsable: f.unparsable };
}
