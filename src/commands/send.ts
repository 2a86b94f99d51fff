import type { Command } from 'commander';
import { ExitCode, badInput } from '../errors.js';
import { parseWhen } from '../config/when.js';
import { collect, withContext, type Context, type Outcome } from './context.js';
import { addTransportOptions, transportFlags, type TransportFlags } from './filter-options.js';
import { wholeNumber } from '../config/numbers.js';
import { examples } from './help.js';

/** What commander hands to send's action. */
interface SendFlags extends TransportFlags {
  where: string[];
  segment?: string;
  member: string[];
  notOpened?: string;
  test?: boolean;
  testTo?: string;
  limit?: string;
  dryRun?: boolean;
  allowEmpty?: boolean;
  /** --no-track sets it false. */
  track: boolean;
  resume?: string;
  at?: string;
  reportTo?: string;
  from?: string;
  to?: string;
  data?: string;
  key?: string;
}

export function registerSend(program: Command): void {
  addTransportOptions(program
    .command('send')
    .description('send a template to the selected members (queued first, so a run can stop and resume)')
    .addHelpText('after', examples(['mailer send invitation.txt --test --test-to me@example.org', 'mailer send invitation.txt --where region=Nord --dry-run']))
    .argument('[template]', 'message file: header lines (Subject:, From:, Type:), a blank line, the text')
    .option('--where <cond>', 'member condition <field><op><value>, op = != ~ < > (repeatable, all must hold)', collect, [])
    .option('--segment <name>', 'a saved selection (mailer segment save)')
    .option('--member <id|email>', 'only this member (repeatable)', collect, [])
    .option('--not-opened <mailing>', 'follow-up: only members who got that mailing but did not open it')
    .option('--test', 'render for the first members and send all to the test address, subject "[TEST] …"')
    .option('--test-to <address>', 'where --test sends go (default: testTo in the settings)')
    .option('--limit <n>', 'at most n recipients in this run (with --test: n test mails, default 5)')
    .option('--dry-run', 'render and check everything, send nothing, change nothing')
    .option('--allow-empty', 'send even when a field the template uses is empty')
    .option('--no-track', 'no open pixel and no unsubscribe link in this mailing')
    .option('--resume <mailing>', 'finish an interrupted or paused mailing')
    .option('--at <datetime>', 'schedule: 2026-12-01T08:00 (local time); `mailer run` sends it when due')
    .option('--report-to <address>', 'after the run, a summary mail to this address (default: reportTo)')
    .option('--from <address>', 'sender when the template has no From: line')
    .option('--to <address>', 'a system mail: this one mail now, to this address (a member\'s or not)')
    .option('--data <file.json|->', 'with --to: a JSON object the template sees under its own names (- reads stdin)')
    .option('--key <text>', 'with --to: idempotency key; a second send with it sends nothing and prints the first'))
    .action((templatePath: string | undefined, opts: SendFlags, command: Command) => withContext(command, { ...transportFlags(opts), testTo: opts.testTo, from: opts.from, reportTo: opts.reportTo },
      (ctx) => (opts.to !== undefined ? sendOne(ctx, templatePath, opts) : send(ctx, templatePath, opts))));
}

/** The selection and run flags a system mail does not take. */
const BULK_ONLY: [keyof SendFlags, string][] = [
  ['segment', '--segment'], ['notOpened', '--not-opened'], ['test', '--test'], ['limit', '--limit'], ['dryRun', '--dry-run'],
  ['allowEmpty', '--allow-empty'], ['resume', '--resume'], ['at', '--at'], ['reportTo', '--report-to'],
];

/** `send <template> --to <address>`: one system mail, sent now or queued for the running send. */
async function sendOne(ctx: Context, templatePath: string | undefined, opts: SendFlags): Promise<Outcome> {
  const { sendSystemMail } = await import('../send/system.js');
  const { serverStopped } = await import('../send/queue.js');
  const { openTransports } = await import('../mail/transports.js');
  const { loadTemplate } = await import('../send/template.js');
  const used = BULK_ONLY.filter(([k]) => opts[k] !== undefined && opts[k] !== false).map(([, flag]) => flag);
  if (opts.where.length) used.push('--where');
  if (opts.member.length) used.push('--member');
  if (used.length) throw badInput(`--to sends one mail to one address: ${used.join(', ')} cannot go with it`, 'leave them out, or leave out --to to send to a selection of members');
  if (!templatePath) throw badInput('no template given', 'mailer send <template> --to <address> [--data order.json] [--key <order number>]');
  const data = opts.data === undefined ? undefined : await readData(opts.data);
  const template = loadTemplate(await templateFile(ctx, templatePath), ctx.settings.footerText);
  const result = await sendSystemMail(ctx.store, (n) => openTransports(ctx.settings, n), {
    template, to: opts.to!, data, key: opts.key, settings: ctx.settings, now: ctx.now,
  });
  const { out } = ctx;
  if (out.json) {
    out.jsonResult({ send: result.send, status: result.status, key: result.key, ...(result.repeated ? { repeated: true } : {}) });
  } else if (result.repeated) {
    out.line(`already sent with key ${JSON.stringify(result.key)}: send ${result.send} (${result.status}); nothing was sent now`);
  } else if (result.status === 'queued' && !result.stopped) {
    out.line(`queued: send ${result.send}; another mailer is sending from this database and delivers it next (or the next \`mailer run\`)`);
  } else {
    out.line(`send ${result.send}: ${result.status}${result.status === 'sent' ? '' : ` — mailer show ${result.send}`}`);
  }
  if (result.stopped) throw serverStopped(result.stopped, 'The mail stays queued.', 'mailer run');
  if (result.status === 'failed' || result.status === 'deferred' || result.status === 'skipped') return ExitCode.someFailed;
}

/** The JSON of --data: a file, or stdin for `-`. */
async function readData(source: string): Promise<unknown> {
  let text: string;
  try {
    if (source === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      const fs = await import('node:fs');
      text = fs.readFileSync(source, 'utf8');
    }
  } catch (err) {
    throw badInput(`--data: cannot read ${source === '-' ? 'stdin' : source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'give a JSON file, or - to read it from stdin');
  }
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw badInput(`--data ${source === '-' ? '(stdin)' : source} is not JSON: ${(err as Error).message}`, 'write one JSON object, e.g. {"order": {"number": "4711"}}');
  }
}

/** A template path as given; a bare name not found there is looked up in the template folder. */
async function templateFile(ctx: Context, given: string): Promise<string> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  // Absolute: the same file named from another folder belongs to the same system mailing.
  if (fs.existsSync(given)) return path.resolve(given);
  const { templateByName } = await import('../send/system.js');
  return templateByName(ctx.settings.templateDir, given, null)?.path ?? given;
}

async function send(ctx: Context, templatePath: string | undefined, opts: SendFlags): Promise<Outcome> {
  const { sendMailing } = await import('../send/send.js');
  const { serverStopped } = await import('../send/queue.js');
  const { openTransports } = await import('../mail/transports.js');
  const { parseId } = await import('../config/filters.js');
  const { SendProgress } = await import('../ui/progress.js');
  const { out, store } = ctx;
  let progress: { update(p: import('../ui/progress.js').ProgressCounts): void; stop(): void } | null = null;
  const result = await sendMailing(store, (concurrency) => openTransports(ctx.settings, concurrency), {
    templatePath,
    resume: opts.resume === undefined ? undefined : parseId(opts.resume, '--resume'),
    where: opts.where,
    segment: opts.segment,
    members: opts.member,
    test: !!opts.test,
    testTo: opts.testTo,
    limit: opts.limit === undefined ? undefined : wholeNumber(opts.limit, '--limit'),
    dryRun: !!opts.dryRun,
    allowEmpty: !!opts.allowEmpty,
    at: opts.at === undefined ? undefined : parseAt(opts.at, ctx.now()),
    noTrack: opts.track === false,
    notOpened: opts.notOpened === undefined ? undefined : parseId(opts.notOpened, '--not-opened'),
    settings: ctx.settings,
    now: ctx.now,
  }, {
    onStart: async ({ mailing, queued, transport }) => {
      if (transport.startsWith('outbox')) out.note(`no SMTP server configured: mails are written to the ${transport} (set --smtp or "smtp" in mailer.json to send for real)`);
      progress = await SendProgress.start(out, queued, `mailing ${mailing.id}${mailing.test ? ' (test)' : ''}: sending ${queued} via ${transport}`, undefined, transport);
    },
    onProgress: (p) => progress?.update(p),
  });
  (progress as { stop(): void } | null)?.stop();

  if (result.kind === 'dry-run') {
    const r = result.result;
    if (out.json) {
      // byReason as the run's summary counts it, so a dry run and the run compare line by line.
      const byReason: Record<string, number> = {};
      for (const s of r.skipped) byReason[s.category] = (byReason[s.category] ?? 0) + 1;
      out.jsonResult({ dryRun: true, selected: r.selected, wouldSend: r.wouldSendCount, skipped: r.skipped.length, queued: r.leftQueued, byReason, recipients: r.wouldSend, skippedMembers: r.skipped });
      return;
    }
    const { renderTable } = await import('../ui/table.js');
    const left = r.leftQueued ? `, ${r.leftQueued} left queued for the next run (--limit)` : '';
    out.line(`dry run: ${r.selected} selected, ${r.wouldSendCount} would be sent, ${r.skipped.length} skipped${left}; nothing was sent or changed`);
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

  if (result.kind === 'scheduled') {
    const { formatTime, isoTime } = await import('../ui/output.js');
    if (out.json) out.jsonResult({ mailing: result.summary.mailing, scheduled: isoTime(result.at), selected: result.summary.selected, queued: result.summary.queued, skipped: result.summary.skipped });
    else out.line(`mailing ${result.summary.mailing} scheduled for ${formatTime(result.at)}: ${result.summary.queued} queued, ${result.summary.skipped} skipped; \`mailer run\` (from cron) sends it when due`);
    return;
  }

  const { summary } = result;
  if (result.report) printReport(ctx, result.report);
  if (out.json) {
    out.jsonResult({
      mailing: summary.mailing, selected: summary.selected, sent: summary.sent, failed: summary.failed,
      deferred: summary.deferred, skipped: summary.skipped, queued: summary.queued, byReason: summary.byReason,
      ...(result.report ? { report: reportJson(result.report) } : {}),
    });
  } else {
    await printSummary(ctx, summary);
  }
  if (result.outcome.stopped) {
    throw serverStopped(result.outcome.stopped, `${result.summary.queued} mails stay queued.`, `mailer send --resume ${result.summary.mailing}`);
  }
  // The exit code speaks of this run: a resume that delivers the rest exits 0 even though
  // earlier failures are still in the mailing's counts.
  const interrupted = summary.queued > 0 && !result.outcome.limitReached;
  // A mail too large to send will not go out by waiting: the operator has to act, as for a failure.
  if (result.outcome.failed > 0 || result.outcome.deferred > 0 || result.outcome.tooLarge > 0 || result.outcome.unattachable > 0 || interrupted) return ExitCode.someFailed;
}

async function printSummary(ctx: Context, summary: import('../send/mailing.js').MailingSummary): Promise<void> {
  const { out, store } = ctx;
  const { renderTable } = await import('../ui/table.js');
  out.line(`mailing ${summary.mailing}${summary.test ? ' (test)' : ''}: ${summary.status}${summary.statusReason ? ` (${summary.statusReason})` : ''}`);
  out.line(renderTable(['selected', 'sent', 'failed', 'deferred', 'skipped', 'queued'],
    [[summary.selected, summary.sent, summary.failed, summary.deferred, summary.skipped, summary.queued]], { tty: out.isTTY }));
  const reasons = Object.entries(summary.byReason);
  // An opt-out is of the mailing's topic (or of all topics): the line says which.
  const topic = reasons.some(([k]) => k === 'unsubscribed') ? store.mailings.mailing(summary.mailing)?.topic : undefined;
  if (reasons.length) out.line(`by reason: ${reasons.map(([k, n]) => `${k === 'unsubscribed' ? `unsubscribed (${topic})` : k} ${n}`).join(', ')}`);
  const notSent = store.log.logSends({ mailings: [summary.mailing], statuses: ['failed', 'deferred', 'skipped'], limit: 20 });
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

function parseAt(value: string, now: number): number {
  const t = /^\d{4}-/.test(value.trim()) ? parseWhen(value, now) : null;
  if (t === null) throw badInput(`--at "${value}" is not a date and time`, 'write it as 2026-12-01T08:00 (local time)');
  if (t <= now) throw badInput(`--at ${value} is in the past`, 'leave --at out to send now');
  return t;
}

/** The report in --json output: its text only when it could not be mailed (then it is nowhere else). */
export function reportJson(report: import('../send/send.js').ReportResult) {
  return { to: report.to, sent: report.ok, error: report.error, text: report.ok ? undefined : report.text };
}

/** A report that could not be mailed still reaches the operator: on stdout, and a warning. */
export function printReport(ctx: Context, report: import('../send/send.js').ReportResult): void {
  if (report.ok) {
    ctx.out.note(`report sent to ${report.to}`);
    return;
  }
  ctx.out.warn(`the report to ${report.to} could not be sent (${report.error}); here it is:`);
  ctx.out.line(report.subject);
  ctx.out.line(report.text);
}
