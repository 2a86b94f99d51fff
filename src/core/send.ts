import { badInput, ExitCode, MailerError } from '../errors.js';
import type { Store } from '../store/store.js';
import { parseCondition } from './filters.js';
import { createMailing, dryRun, summarize, type DryRunResult, type MailingSummary } from './mailing.js';
import type { Transport } from './ports.js';
import { catalogOf, deliverSends, mailingQueue, type QueueOutcome, type QueueProgress } from './queue.js';
import type { Settings } from './settings.js';
import { loadTemplate } from './template.js';
import { parseRate } from './throttle.js';
import type { FieldCondition, Mailing, MemberSelection } from './types.js';
import { isValidAddress } from './address.js';

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
  | { kind: 'sent'; summary: MailingSummary; outcome: QueueOutcome; transport: string };

/** Member conditions from --where and --segment, checked against the fields members have. */
export function resolveSelection(store: Store, req: { where: string[]; segment?: string; members: string[] }): MemberSelection {
  const conditions: FieldCondition[] = req.where.map(parseCondition);
  if (req.segment) {
    const saved = store.segment(req.segment);
    if (!saved) throw badInput(`no segment "${req.segment}"`, 'list them with `mailer segment list`, or save one with `mailer segment save <name> --where …`');
    conditions.push(...saved);
  }
  checkConditionFields(store, conditions);
  for (const m of req.members) {
    if (store.findMembers(m).length === 0) {
      throw badInput(`no member with id or address "${m}"`, 'check the spelling; `mailer log --email <address>` finds sends by address');
    }
  }
  return { conditions, members: req.members };
}

export function checkConditionFields(store: Store, conditions: FieldCondition[]): void {
  const known = new Set(['id', 'email', 'name', ...store.fieldNames()]);
  for (const c of conditions) {
    if (!known.has(c.field)) {
      throw badInput(`--where ${c.field}${c.op}${c.value}: no member field "${c.field}"`, `fields are: ${[...known].join(', ')}`);
    }
  }
}

export async function sendMailing(
  store: Store,
  openTransport: (concurrency: number) => Promise<Transport>,
  req: SendRequest,
  hooks: SendHooks = {},
): Promise<SendResult> {
  const { settings } = req;
  const concurrency = settings.concurrency ?? 4;
  const intervalMs = settings.rate ? parseRate(settings.rate) : 0;
  if (req.limit !== undefined && (!Number.isInteger(req.limit) || req.limit < 1)) {
    throw badInput(`--limit must be a whole number of at least 1, not "${req.limit}"`);
  }

  let mailing: Mailing;
  if (req.resume !== undefined) {
    if (req.templatePath || req.where.length || req.segment || req.members.length || req.test) {
      throw badInput('--resume takes no template and no selection: it finishes the mailing as it was planned');
    }
    const found = store.mailing(req.resume);
    if (!found) throw badInput(`no mailing ${req.resume}`, 'see the mailing ids in `mailer log`');
    if (found.status === 'cancelled') throw badInput(`mailing ${found.id} was cancelled`, 'send the template again to make a new mailing');
    mailing = found;
  } else {
    if (!req.templatePath) throw badInput('no template given', 'mailer send <template> [--where …] — or --resume <mailing>');
    const template = loadTemplate(req.templatePath, settings.footerText);
    const selection = resolveSelection(store, req);
    let testTo: string | undefined;
    if (req.test) {
      testTo = req.testTo ?? settings.testTo;
      if (!testTo) throw badInput('--test needs an address to send to', 'give --test-to <address>, or set "testTo" in mailer.json');
      if (!isValidAddress(testTo.toLowerCase())) throw badInput(`test address "${testTo}" is not a valid e-mail address`);
      testTo = testTo.toLowerCase();
    }
    const plan = {
      template, selection, testTo, limit: req.test ? req.limit ?? 5 : req.limit, now: req.now(),
      settings: { from: settings.from, replyTo: settings.replyTo, bounceAddress: settings.bounceAddress, allowEmpty: req.allowEmpty },
    };
    if (req.dryRun) return { kind: 'dry-run', result: dryRun(store, plan) };
    ({ mailing } = createMailing(store, plan));
  }
  if (req.dryRun) throw badInput('--dry-run with --resume: the mailing is already planned; `mailer log --mailing` shows it');

  const transport = await openTransport(concurrency);
  try {
    const queued = summarize(store, mailing.id).queued;
    store.setMailingStatus(mailing.id, 'running', null, req.now());
    await hooks.onStart?.({ mailing, queued, transport: transport.description });
    const outcome = await deliverSends(store, transport, mailingQueue(store, mailing.id), {
      concurrency,
      intervalMs,
      limit: mailing.test ? undefined : req.limit,
      maxConnectionErrors: 5,
      catalog: catalogOf(store),
      clock: req.now,
      onProgress: hooks.onProgress,
    });
    const left = summarize(store, mailing.id).queued;
    if (outcome.stopped) {
      store.setMailingStatus(mailing.id, 'paused', `server unusable: ${outcome.stopped.message}`, req.now());
    } else if (left > 0) {
      store.setMailingStatus(mailing.id, 'paused', outcome.limitReached ? `--limit ${req.limit} reached` : 'some sends were interrupted', req.now());
    } else {
      store.setMailingStatus(mailing.id, 'done', null, req.now());
    }
    return { kind: 'sent', summary: summarize(store, mailing.id), outcome, transport: transport.description };
  } finally {
    await transport.close();
  }
}

/** The exit-3 error for a run the server stopped, naming the cause and the way on. */
export function serverStoppedError(result: { summary: MailingSummary; outcome: QueueOutcome }): MailerError {
  const { stopped } = result.outcome;
  return new MailerError(
    `stopped: the mail server ${stopped!.server} cannot be used (${stopped!.category}): ${stopped!.message}. ${result.summary.queued} mails stay queued.`,
    { exitCode: ExitCode.serverUnusable, hint: `when the server works again, run \`mailer send --resume ${result.summary.mailing}\`` },
  );
}
