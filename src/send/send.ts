import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { parseCondition } from '../config/filters.js';
import { checkAttachments, createMailing, dryRun, summarize, type DryRunResult, type MailingSummary } from './mailing.js';
import { withSendLock, withTransports, type OpenTransports } from './session.js';
import type { Transport } from '../domain/ports.js';
import { buildReport, deliverReport } from './report.js';
import { runBudget } from './quota.js';
import { deliverSends, mailingQueue, type QueueOutcome, type QueueProgress } from './queue.js';
import { deliveryStore, queueSettings } from './delivery-store.js';
import { DEFAULT_CONCURRENCY, type Settings } from '../config/settings.js';
import { loadTemplate } from './template.js';
import type { FieldCondition, Mailing, MailingSettings, MemberSelection } from '../domain/types.js';
import { isValidAddress } from '../domain/address.js';

export interface SendRequest {
  templatePath?: string;
  resume?: number;
  where: string[];
  segment?: string;
  members: string[];
  test: boolean;
  testTo?: string;
  limit?: number;
  dryRun: boolean;
  allowEmpty: boolean;
  /** schedule for this time instead of sending now */
  at?: number;
  /** no open pixel and no unsubscribe link in this mailing */
  noTrack?: boolean;
  /** follow-up: only members who did not open this mailing */
  notOpened?: number;
  settings: Settings;
  now: () => number;
}

export interface SendHooks {
  /** the transport is open and the queue is about to be worked off */
  onStart?(info: { mailing: Mailing; queued: number; transport: string }): void | Promise<void>;
  onProgress?(progress: QueueProgress): void;
}

export type SendResult =
  | { kind: 'dry-run'; result: DryRunResult }
  | { kind: 'sent'; summary: MailingSummary; outcome: QueueOutcome; transport: string; report?: ReportResult }
  | { kind: 'scheduled'; summary: MailingSummary; at: number };

/** Member conditions from --where and --segment, checked against the fields members have. */
export function resolveSelection(store: Store, req: { where: string[]; segment?: string; members: string[] }): MemberSelection {
  const conditions: FieldCondition[] = req.where.map(parseCondition);
  if (req.segment) {
    const saved = store.members.segment(req.segment);
    if (!saved) throw badInput(`no segment "${req.segment}"`, 'list them with `mailer segment list`, or save one with `mailer segment save <name> --where …`');
    conditions.push(...saved);
  }
  checkConditionFields(store, conditions);
  for (const m of req.members) {
    if (store.members.findMembers(m).length === 0) {
      throw badInput(`no member with id or address "${m}"`, 'check the spelling; `mailer log --email <address>` finds sends by address');
    }
  }
  return { conditions, members: req.members };
}

export function checkConditionFields(store: Store, conditions: FieldCondition[]): void {
  const known = new Set(['id', 'email', 'name', ...store.members.fieldNames()]);
  for (const c of conditions) {
    if (!known.has(c.field)) {
      throw badInput(`--where ${c.field}${c.op}${c.value}: no member field "${c.field}"`, `fields are: ${[...known].join(', ')}`);
    }
  }
}

/** What a mailing keeps of the settings: the send and a plan's mailings alike. */
export function mailingSettings(settings: Settings, opts: { allowEmpty: boolean; noTrack?: boolean }): MailingSettings {
  return {
    from: settings.from, replyTo: settings.replyTo, bounceAddress: settings.bounceAddress, allowEmpty: opts.allowEmpty,
    track: settings.track && !opts.noTrack, publicUrl: settings.publicUrl, verp: settings.verp,
  };
}

export async function sendMailing(
  store: Store,
  openTransports: OpenTransports,
  req: SendRequest,
  hooks: SendHooks = {},
): Promise<SendResult> {
  const { settings } = req;
  const concurrency = settings.concurrency ?? DEFAULT_CONCURRENCY;

  let mailing: Mailing | undefined;
  let plan: Parameters<typeof createMailing>[1] | undefined;
  if (req.resume !== undefined) {
    if (req.templatePath || req.where.length || req.segment || req.members.length || req.test || req.notOpened !== undefined) {
      throw badInput('--resume takes no template and no selection: it finishes the mailing as it was planned');
    }
    if (req.dryRun) throw badInput('--dry-run with --resume: the mailing is already planned; `mailer log --mailing` shows it');
    mailing = store.mailings.mailing(req.resume);
    if (!mailing) throw badInput(`no mailing ${req.resume}`, 'see the mailing ids in `mailer mailings`');
    if (mailing.status === 'cancelled') throw badInput(`mailing ${mailing.id} was cancelled`, 'send the template again to make a new mailing');
  } else {
    if (!req.templatePath) throw badInput('no template given', 'mailer send <template> [--where …] — or --resume <mailing>');
    const template = loadTemplate(req.templatePath, settings.footerText);
    const selection = resolveSelection(store, req);
    if (req.notOpened !== undefined) {
      const earlier = store.mailings.mailing(req.notOpened);
      if (!earlier) throw badInput(`no mailing ${req.notOpened}`, 'see the mailing ids in `mailer mailings`');
      if (earlier.test) throw badInput(`mailing ${req.notOpened} is a test send`, 'name the real mailing');
      selection.notOpenedOf = req.notOpened;
    }
    let testTo: string | undefined;
    if (req.test) {
      testTo = req.testTo ?? settings.testTo;
      if (!testTo) throw badInput('--test needs an address to send to', 'give --test-to <address>, or set "testTo" in mailer.json');
      if (!isValidAddress(testTo.toLowerCase())) throw badInput(`test address "${testTo}" is not a valid e-mail address`);
      testTo = testTo.toLowerCase();
    }
    plan = {
      template, selection, testTo, limit: req.test ? req.limit ?? 5 : req.limit, now: req.now(), maxMessageBytes: settings.maxMessageBytes,
      settings: mailingSettings(settings, { allowEmpty: req.allowEmpty, noTrack: req.noTrack }),
    };
    if (req.dryRun) return { kind: 'dry-run', result: dryRun(store, plan) };
    if (req.at !== undefined) {
      // Scheduled: the recipients are recorded now (so single members can be cancelled), the
      // mails are rendered and sent by `mailer run` when the time comes.
      const scheduled = createMailing(store, { ...plan, at: req.at });
      return { kind: 'scheduled', summary: summarize(store, scheduled.mailing.id), at: req.at };
    }
  }

  return withSendLock(store, mailing ? `send --resume ${mailing.id}` : 'send', req.now(), async () => {
    const current = mailing ?? createMailing(store, plan!).mailing;
    // Every member's files are looked at before the first mail goes: the ones that cannot be
    // sent are listed at the end of this run, not found one by one over hours.
    const unsendable = mailing ? 0 : checkAttachments(store, current, settings.maxMessageBytes, req.now());
    // This run hands over at most --limit mails, and no more than the provider's quota allows.
    const { budget, reason } = runBudget(store, settings, req.limit !== undefined && !current.test ? { n: req.limit, flag: '--limit' } : undefined, req.now());
    const cancelled = () => badInput(`mailing ${current.id} was cancelled`, 'send the template again to make a new mailing');
    // Cancelled since it was looked at (cancel takes no lock): said before any server is tried.
    if (store.mailings.mailing(current.id)?.status === 'cancelled') throw cancelled();
    return withTransports(openTransports, concurrency, async (transports, description) => {
      const queued = summarize(store, current.id).queued;
      if (!store.mailings.startMailing(current.id)) throw cancelled();
      await hooks.onStart?.({ mailing: current, queued, transport: description });
      const engineStore = deliveryStore(store);
      const outcome = await deliverSends(engineStore, transports, mailingQueue(engineStore, current.id), {
        ...queueSettings(store, settings, req.now),
        limit: budget ?? undefined,
        onProgress: hooks.onProgress,
      });
      outcome.unattachable += unsendable;
      settleMailing(store, current.id, outcome, reason ?? undefined, req.now());
      const summary = summarize(store, current.id);
      const report = current.test || outcome.done === 0 ? undefined : await reportTo(store, transports, settings, [summary]);
      return { kind: 'sent' as const, summary, outcome, transport: description, report };
    });
  });
}

export interface ReportResult {
  to: string;
  ok: boolean;
  error?: string;
  text: string;
  subject: string;
}

/** The operator report, when `reportTo` is set; a failure to send it is returned, not thrown. */
export async function reportTo(store: Store, transports: Transport[], settings: Settings, summaries: MailingSummary[]): Promise<ReportResult | undefined> {
  if (!settings.reportTo) return undefined;
  const report = buildReport(store, summaries);
  const from = settings.from ?? `mailer <${settings.reportTo}>`;
  const r = await deliverReport(transports, report, settings.reportTo, from, settings.bounceAddress);
  return { to: settings.reportTo, ok: r.ok, error: r.ok ? undefined : r.error, text: report.text, subject: report.subject };
}

/** After a run: paused with the reason while work is left, else done. */
export function settleMailing(store: Store, mailingId: number, outcome: QueueOutcome, limit: string | undefined, now: number): void {
  const left = summarize(store, mailingId).queued;
  // Cancelled while it ran: it stays cancelled (the sends in hand went out, the rest did not).
  if (store.mailings.mailing(mailingId)?.status === 'cancelled') return;
  if (outcome.stopped) {
    store.mailings.setMailingStatus(mailingId, 'paused', `server unusable: ${outcome.stopped.message}`, now);
  } else if (left > 0) {
    const why = outcome.interrupted ? 'stopped by a signal; the next run continues'
      : outcome.limitReached ? `${limit ?? 'the limit of the run'} reached; the next run continues` : 'some sends were interrupted';
    store.mailings.setMailingStatus(mailingId, 'paused', why, now);
  } else {
    store.mailings.setMailingStatus(mailingId, 'done', null, now);
  }
}

/** The exit-3 error for a run the server stopped, naming the cause and the way on. */
