import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { collect, openContext, type Context } from './context.js';
import { addTransportOptions, transportFlags } from './filter-options.js';

export function registerSend(program: Command): void {
  addTransportOptions(program
    .command('send')
    .description('send a template to the selected members (queued first, so a run can stop and resume)')
    .argument('[template]', 'message file: header lines (Subject:, From:, Type:), a blank line, the text')
    .option('--where <cond>', 'member condition <field><op><value>, op = != ~ < > (repeatable, all must hold)', collect, [])
    .option('--segment <name>', 'a saved selection (mailer segment save)')
    .option('--member <id|email>', 'only this member (repeatable)', collect, [])
    .option('--test', 'render for the first members and send all to the test address, subject "[TEST] …"')
    .option('--test-to <address>', 'where --test sends go (default: testTo in the settings)')
    .option('--limit <n>', 'at most n recipients in this run (with --test: n test mails, default 5)')
    .option('--dry-run', 'render and check everything, send nothing, change nothing')
    .option('--allow-empty', 'send even when a field the template uses is empty')
    .option('--resume <mailing>', 'finish an interrupted or paused mailing')
    .option('--from <address>', 'sender when the template has no From: line'))
    .action(async (templatePath: string | undefined, opts: Record<string, any>, command: Command) => {
      const ctx = await openContext(command, { ...transportFlags(opts), testTo: opts.testTo, from: opts.from });
      try {
        await send(ctx, templatePath, opts);
      } finally {
        ctx.close();
      }
    });
}

async function send(ctx: Context, templatePath: string | undefined, opts: Record<string, any>): Promise<void> {
  const { sendMailing, serverStoppedError } = await import('../core/send.js');
  const { openTransport } = await import('../transport/index.js');
  const { parseId } = await import('../core/filters.js');
  const { SendProgress } = await import('../ui/progress.js');
  const { out, store } = ctx;
  let progress: { update(p: import('../ui/progress.js').ProgressCounts): void; stop(): void } | null = null;
  const result = await sendMailing(store, (concurrency) => openTransport(ctx.settings, concurrency), {
    templatePath,
    resume: opts.resume === undefined ? undefined : parseId(opts.resume, '--resume'),
    where: opts.where,
    segment: opts.segment,
    members: opts.member,
    test: !!opts.test,
    testTo: opts.testTo,
    limit: opts.limit === undefined ? undefined : Number(opts.limit),
    dryRun: !!opts.dryRun,
    allowEmpty: !!opts.allowEmpty,
    settings: ctx.settings,
    now: ctx.now,
  }, {
    onStart: async ({ mailing, queued, transport }) => {
      if (transport.startsWith('outbox')) out.note(`no SMTP server configured: mails are written to the ${transport} (set --smtp or "smtp" in mailer.json to send for real)`);
      progress = await SendProgress.start(out, queued, `mailing ${mailing.id}${mailing.test ? ' (test)' : ''}: sending ${queued} via ${transport}`);
    },
    onProgress: (p) => progress?.update(p),
  });
  (progress as { stop(): void } | null)?.stop();

  if (result.kind === 'dry-run') {
    const r = result.result;
    if (out.json) {
      out.jsonResult({ dryRun: true, selected: r.selected, wouldSend: r.wouldSendCount, skipped: r.skipped.length, recipients: r.wouldSend, skippedMembers: r.skipped });
      return;
    }
    const { renderTable } = await import('../ui/table.js');
    out.line(`dry run: ${r.selected} selected, ${r.wouldSendCount} would be sent, ${r.skipped.length} skipped; nothing was sent or changed`);
    if (r.wouldSend.length) {
      out.line();
      out.line(renderTable(['member', 'address'], r.wouldSend.map((w) => [w.member, w.email]), { tty: out.isTTY }));
      if (r.wouldSendCount > r.wouldSend.length) out.line(`… and ${r.wouldSendCount - r.wouldSend.length} more`);
    }
    if (r.skipped.length) {
      out.line();
      out.line('skipped:');
      out.line(renderTable(['member', 'address', 'reason'], r.skipped.map((s) => [s.member, s.email, s.reason]), { tty: out.isTTY }));
    }
    return;
  }

  const { summary } = result;
  if (out.json) {
    out.jsonResult({
      mailing: summary.mailing, selected: summary.selected, sent: summary.sent, failed: summary.failed,
      deferred: summary.deferred, skipped: summary.skipped, queued: summary.queued, byReason: summary.byReason,
    });
  } else {
    await printSummary(ctx, summary);
  }
  if (result.outcome.stopped) throw serverStoppedError(result);
  // The exit code speaks of this run: a resume that delivers the rest exits 0 even though
  // earlier failures are still in the mailing's counts.
  const interrupted = summary.queued > 0 && !result.outcome.limitReached;
  if (result.outcome.failed > 0 || result.outcome.deferred > 0 || interrupted) process.exitCode = ExitCode.someFailed;
}

async function printSummary(ctx: Context, summary: import('../core/mailing.js').MailingSummary): Promise<void> {
  const { out, store } = ctx;
  const { renderTable } = await import('../ui/table.js');
  out.line(`mailing ${summary.mailing}${summary.test ? ' (test)' : ''}: ${summary.status}${summary.statusReason ? ` (${summary.statusReason})` : ''}`);
  out.line(renderTable(['selected', 'sent', 'failed', 'deferred', 'skipped', 'queued'],
    [[summary.selected, summary.sent, summary.failed, summary.deferred, summary.skipped, summary.queued]], { tty: out.isTTY }));
  const reasons = Object.entries(summary.byReason);
  if (reasons.length) out.line(`by reason: ${reasons.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const notSent = store.logSends({ mailings: [summary.mailing], statuses: ['failed', 'deferred', 'skipped'], limit: 20 });
  if (notSent.length) {
    out.line();
    out.line(renderTable(['send', 'member', 'address', 'status', 'reason'],
      notSent.map((s) => [s.id, s.memberKey, s.email, s.status, s.reason]), { tty: out.isTTY }));
    const total = summary.failed + summary.deferred + summary.skipped;
    if (total > notSent.length) out.line(`… and ${total - notSent.length} more: mailer log --mailing ${summary.mailing} --status failed --status deferred --status skipped --limit 0`);
  }
  if (summary.queued > 0 && summary.status === 'paused') {
    out.line(`${summary.queued} still queued: mailer send --resume ${summary.mailing}`);
  }
}
