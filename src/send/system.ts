import fs from 'node:fs';
import path from 'node:path';
import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Settings } from '../config/settings.js';
import { DEFAULT_CONCURRENCY } from '../config/settings.js';
import { addressProblem, normalizeAddress } from '../domain/address.js';
import type { MailingSettings, Member, Send, SendStatus } from '../domain/types.js';
import { checkDataPlaceholders, dataView, loadTemplate, memberView, render, type Template } from './template.js';
import { checkSender } from './mailing.js';
import { deliverSends, listSource, type QueueOutcome } from './queue.js';
import { deliveryStore, queueSettings } from './delivery-store.js';
import { ifSendLockFree, withTransports, type OpenTransports } from './session.js';
import { runBudget } from './quota.js';

/**
 * System mails: one mail to one address now, rendered with the caller's data (an order, a
 * registration). Each is a send of its template's system mailing, so log, show, why, retry and
 * retarget know it as any other send. Queued first; delivered at once when no other process
 * holds the send lock, else by the run that does, ahead of its next bulk mail.
 */
export interface SystemMailRequest {
  template: Template;
  to: string;
  /** the parsed JSON; must be an object (undefined: none) */
  data: unknown;
  key?: string;
  settings: Settings;
  now: () => number;
}

export interface SystemMailResult {
  send: number;
  status: SendStatus;
  key: string | null;
  /** the key was used before: nothing was sent, this is the first send */
  repeated: boolean;
  /** the server could not be used: the mail stays queued */
  stopped?: QueueOutcome['stopped'];
}

/** How a request names its fields in a message: `--to` on the command line, `to` in the API. */
export type FieldLabel = (field: 'to' | 'data' | 'key') => string;
export const flagLabel: FieldLabel = (field) => `--${field}`;

/** An idempotency key is the caller's order or request number, not a document. */
const MAX_KEY_LENGTH = 200;
/** As long as a real token (22 URL-safe characters): the trial render measures the real mail. */
const TRIAL_TOKEN = 'TOKEN'.padEnd(22, '0');

function checkKey(key: string | undefined, label: FieldLabel): string | null {
  if (key === undefined) return null;
  if (typeof key !== 'string' || key.trim() === '' || key.length > MAX_KEY_LENGTH || /[\u0000-\u001f\u007f]/.test(key)) {
    throw badInput(`${label('key')}: the key must be text of 1 to ${MAX_KEY_LENGTH} characters without control characters`, 'use the order or request number');
  }
  return key;
}

function checkData(data: unknown, label: FieldLabel): Record<string, unknown> {
  if (data === undefined || data === null) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw badInput(`${label('data')}: the data must be a JSON object, not ${Array.isArray(data) ? 'a list' : typeof data}`, 'write it as {"order": {"number": "4711", "items": […]}}');
  }
  return data as Record<string, unknown>;
}

/** A system mail's settings: never tracked (no pixel, no unsubscribe link in an order confirmation). */
function systemSettings(settings: Settings): MailingSettings {
  return { from: settings.from, replyTo: settings.replyTo, bounceAddress: settings.bounceAddress, allowEmpty: false, track: false, verp: settings.verp };
}

/**
 * Everything checked (address, data, placeholders, a trial render) and the send queued; a key
 * used before returns that send instead and queues nothing. A second process with the same key
 * waits for the first one's write (BEGIN IMMEDIATE) and then finds its send.
 */
export function queueSystemMail(store: Store, req: SystemMailRequest, label: FieldLabel = flagLabel): { send: Send; repeated: boolean } {
  const key = checkKey(req.key, label);
  const first = key === null ? undefined : store.sends.sendByKey(key);
  if (first) return { send: first, repeated: true };
  const to = normalizeAddress(typeof req.to === 'string' ? req.to : '');
  const problem = typeof req.to === 'string' ? addressProblem(to) : 'no address given';
  if (problem) throw badInput(`${label('to')}: "${typeof req.to === 'string' ? req.to : ''}" is not a valid e-mail address: ${problem}`, 'nothing was sent; check the address');
  const data = checkData(req.data, label);
  const { template } = req;
  const settings = systemSettings(req.settings);
  checkSender(template, settings);
  const member = store.members.recipient(to);
  checkDataPlaceholders(template, [...Object.keys(member?.fields ?? {}), ...Object.keys(data)]);
  trialRender(template, member, to, data, label);
  const json = JSON.stringify(data);
  return store.immediate(() => {
    const again = key === null ? undefined : store.sends.sendByKey(key);
    if (again) return { send: again, repeated: true };
    const now = req.now();
    const recipient = store.members.recipientOrUnlisted(to, now);
    const mailing = store.mailings.systemMailing({
      type: template.type, templatePath: template.path, template: template.source, htmlTemplate: template.html,
      footer: template.footer, settings, now,
    });
    const id = store.sends.insertSystemSend({ mailing: mailing.id, member: recipient.id, email: to, type: template.type, data: json, key, now });
    return { send: store.sends.send(id)!, repeated: false };
  });
}

/** The mail rendered once before it is queued: what would skip it at the run is refused now. */
function trialRender(template: Template, member: Member | undefined, to: string, data: Record<string, unknown>, label: FieldLabel): void {
  const recipient: Member = member ?? { id: 0, key: '', email: to, name: null, fields: {}, emailProblem: null };
  const rendered = render(template, dataView(memberView(recipient, to, TRIAL_TOKEN), data), { allowEmpty: false, data: true });
  if (rendered.ok) return;
  if (rendered.category === 'header-injection') {
    throw badInput(`${label('data')}: ${rendered.reason.replace('(from a member field)', '(from the data)')}`, 'remove the line break from that value');
  }
  const name = /"([^"]+)"/.exec(rendered.reason)?.[1] ?? '?';
  throw badInput(`${template.path}: the placeholder {{${name}}} has no value: neither ${label('data')} nor the recipient's fields fill it`, `add "${name}" to the data`);
}

/**
 * Delivers the queued system mails now, if no other process holds the send lock; undefined when
 * one does (it delivers them between its own mails, or the next `mailer run` does).
 */
export async function deliverSystemMails(store: Store, openTransports: OpenTransports, settings: Settings, now: () => number): Promise<QueueOutcome | undefined> {
  return ifSendLockFree(store, 'send --to', now(), async () => {
    const ids = store.sends.queuedSystemSends(1000);
    if (ids.length === 0) return undefined;
    const options = queueSettings(store, settings, now);
    const concurrency = Math.min(ids.length, settings.concurrency ?? DEFAULT_CONCURRENCY);
    return withTransports(openTransports, concurrency, (transports) => deliverSends(deliveryStore(store), transports, listSource(ids), {
      ...options, concurrency, limit: runBudget(store, settings, undefined, now()).budget ?? undefined,
    }));
  });
}

/** `send --to`: queued, then delivered now unless a running send takes it. */
export async function sendSystemMail(store: Store, openTransports: OpenTransports, req: SystemMailRequest, label: FieldLabel = flagLabel): Promise<SystemMailResult> {
  const queued = queueSystemMail(store, req, label);
  if (queued.repeated) return resultOf(queued.send, true);
  const outcome = await deliverSystemMails(store, openTransports, req.settings, req.now);
  return { ...resultOf(store.sends.send(queued.send.id)!, false), stopped: outcome?.stopped ?? null };
}

export function resultOf(send: Send, repeated: boolean): SystemMailResult {
  return { send: send.id, status: send.status, key: send.key ?? null, repeated };
}

/** A template name safe to look up: a file name, no folder, no dots to climb with. */
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/**
 * The template `name` in the template folder (`bestellung` is templates/bestellung.txt, with
 * its .html sibling); undefined for a name that is a path or names no file. Never a path from
 * a request: only names of the safe shape are joined to the folder.
 */
export function templateByName(dir: string, name: unknown, footer: string | null): Template | undefined {
  if (typeof name !== 'string' || !TEMPLATE_NAME.test(name)) return undefined;
  const file = path.join(dir, `${name}.txt`);
  if (path.dirname(file) !== path.resolve(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return undefined;
  return loadTemplate(file, footer);
}
