import path from 'node:path';
import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { addressOf, base64Length, composeParts, MessageWithFiles, newMessageId, type AttachmentFile, type ComposeInput } from '../mail/compose.js';
import { attachmentFiles, ATTACHMENT_CATEGORIES } from './attachments.js';
import type { OutgoingMessage } from '../domain/ports.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../config/settings.js';
import { parseTemplate, checkPlaceholders, dataView, memberView, render, type Template } from './template.js';
import type { RenderedMessage } from '../domain/types.js';
import type { Mailing, MailingSettings, Member, MemberSelection } from '../domain/types.js';
import { LinkSigner, type MailLinks } from '../domain/token.js';

/**
 * A mailing is recorded before anything is sent: the template as it is now, and one send row
 * per recipient. From then on the queue alone says what is left to do.
 */
export interface PlanInput {
  template: Template;
  selection: MemberSelection;
  settings: MailingSettings;
  /** test send: deliver to this address instead, at most `limit` members */
  testTo?: string;
  limit?: number;
  /** schedule for this time: recorded as scheduled in the same transaction */
  at?: number;
  /** the dry run skips a mail whose encoded message is larger (the run reads it from its settings) */
  maxMessageBytes?: number;
  now: number;
}

/** A mail skipped for its size, with the reason the log shows. */
export interface SizeSkip {
  category: 'too-large';
  reason: string;
}

/**
 * A mail larger than maxMessageBytes, counting the whole message as encoded, is not sent. The
 * rendered text and HTML in UTF-8 are a lower bound of that size (no transfer encoding makes a
 * byte smaller), so a mail that is surely over is refused before composing it, which for a mail
 * of many megabytes costs seconds and hundreds of MB; given the composed message, it is exact.
 */
export function sizeSkip(maxBytes: number, message: RenderedMessage, composedBytes?: number, files: AttachmentFile[] = []): SizeSkip | null {
  const bytes = composedBytes ?? Buffer.byteLength(message.text) + (message.html === null ? 0 : Buffer.byteLength(message.html))
    + files.reduce((sum, f) => sum + base64Length(f.size), 0);
  if (bytes <= maxBytes) return null;
  return {
    category: 'too-large',
    reason: `the message is ${composedBytes !== undefined ? '' : 'at least '}${bytes} bytes encoded${files.length ? ' (attachments included)' : ''}, over maxMessageBytes ${maxBytes}; ${files.length ? 'attach less, ' : ''}shorten the template, or raise "maxMessageBytes" in mailer.json if the server takes it`,
  };
}

/** Skip reasons that say the mail itself cannot go as it is (the operator has to act): a run with any exits 1. */
export const UNSENDABLE_CATEGORIES: ReadonlySet<string> = new Set(['too-large', ...ATTACHMENT_CATEGORIES]);

/**
 * What every mail of one mailing shares, worked out once per mailing rather than per mail. The
 * run and the dry run both compose through it, so the dry run measures the mail the run sends.
 */
export interface MailingContext {
  template: Template;
  test: boolean;
  allowEmpty: boolean;
  fromHeader: string;
  fromAddress: string;
  envelopeFrom: string;
  /** the replyTo setting: for a mail whose template gives no Reply-To of its own */
  replyTo: string | null;
  /** the public URL for pixel and unsubscribe links, when this mailing is tracked */
  trackingUrl: string | null;
  /** List-Unsubscribe and its one-click POST: never in a required mail */
  listUnsubscribe: boolean;
  /** the open pixel: in a required mail only when its template says Track: yes */
  pixel: boolean;
  /** the public URL for {{unsubscribe_url}}, when the template shows that link */
  unsubscribeUrl: string | null;
  verp: boolean;
  /** the template's folder: Attachment: paths are relative to it and may not leave it */
  folder: string;
  /** the multipart boundary its messages share (compose.ts ComposeInput.boundary); null: each its own */
  boundary: string | null;
}

/**
 * For a template that passed checkTemplate with these settings. `boundary` is the mailing's
 * (LinkSigner.mailingBoundary), where its messages are stored: a dry run has none.
 */
export function mailingContext(template: Template, settings: MailingSettings, test: boolean, boundary: string | null = null): MailingContext {
  const fromHeader = template.from ?? settings.from!;
  const fromAddress = addressOf(fromHeader, 'the sender');
  return {
    template, test, fromHeader, fromAddress,
    allowEmpty: !!settings.allowEmpty,
    envelopeFrom: settings.bounceAddress ? addressOf(settings.bounceAddress, 'bounceAddress') : fromAddress,
    replyTo: settings.replyTo || null,
    trackingUrl: settings.track && settings.publicUrl && !test ? publicBase(settings.publicUrl) : null,
    listUnsubscribe: !template.required,
    pixel: template.required ? template.track === true : template.track !== false,
    unsubscribeUrl: template.names.has('unsubscribe_url') && settings.publicUrl ? publicBase(settings.publicUrl) : null,
    verp: !!settings.verp && !!settings.bounceAddress,
    folder: path.resolve(path.dirname(template.path)),
    boundary,
  };
}

const publicBase = (url: string) => url.replace(/\/+$/, '');

/** The page of a send's unsubscribe value, as {{unsubscribe_url}} shows it. */
export function unsubscribeUrl(ctx: MailingContext, links: MailLinks): string {
  return ctx.unsubscribeUrl === null ? '' : `${ctx.unsubscribeUrl}/u/${links.unsubscribe}`;
}

/**
 * Quoted-printable writes a byte as at most three (=XX) plus a soft break every 76; base64 and
 * RFC 2047 headers take less; the MIME frame and mailer's own headers take a few KB.
 */
const MOST_BYTES_PER_RENDERED_BYTE = 3.1;
const MIME_FRAME_BYTES = 64 * 1024;

/**
 * A mail that fits under maxBytes however it is encoded: the dry run need not compose it to
 * know, which would cost it three times its rendering for mails nowhere near the limit.
 */
export function surelyFits(maxBytes: number, message: RenderedMessage, files: AttachmentFile[] = []): boolean {
  let bytes = Buffer.byteLength(message.text) + Buffer.byteLength(message.subject);
  if (message.html !== null) bytes += Buffer.byteLength(message.html);
  for (const value of [message.from, message.replyTo, ...message.extraHeaders.map(([, v]) => v)]) if (value) bytes += Buffer.byteLength(value);
  // A file's base64 length is known from its size alone; its part's headers (the name in
  // RFC 2231 and RFC 2047 forms, the type, the boundary) stay within a few KB.
  let files64 = 0;
  for (const f of files) files64 += base64Length(f.size) + 4 * Buffer.byteLength(f.name) + 1024;
  return bytes * MOST_BYTES_PER_RENDERED_BYTE + MIME_FRAME_BYTES + files64 <= maxBytes;
}

/** A member's files, or why the mail cannot be sent with them (attachment-path, attachment-missing). */
export function filesFor(ctx: MailingContext, message: RenderedMessage) {
  return attachmentFiles(ctx.folder, message.attachments ?? []);
}

/**
 * `raw` is the message as the log keeps it, and as the server gets it when `files` is null;
 * with files, their bodies are left out of `raw`, and `files` reads them in on the way.
 */
export type Composed =
  | { ok: true; raw: Buffer; files: MessageWithFiles | null; size: number; messageId: string }
  | { ok: false; skip: SizeSkip };

/** What the transport is handed for a composed mail. */
export function outgoing(composed: Extract<Composed, { ok: true }>): Buffer | OutgoingMessage {
  return composed.files ?? composed.raw;
}

/**
 * One rendered mail as it is handed to the server, or the reason it is too large to be.
 * `links` gives a send's pixel and unsubscribe values; it is asked only when the mailing is tracked.
 */
export function composeFor(
  ctx: MailingContext, message: RenderedMessage, to: { name: string | null; address: string },
  sendId: number, links: (sendId: number) => MailLinks, maxBytes: number, files: AttachmentFile[] = [],
): Composed {
  const surelyTooLarge = sizeSkip(maxBytes, message, undefined, files);
  if (surelyTooLarge) return { ok: false, skip: surelyTooLarge };
  const messageId = newMessageId(sendId, ctx.fromAddress);
  let tracking: ComposeInput['tracking'];
  if (ctx.trackingUrl && (ctx.listUnsubscribe || ctx.pixel)) {
    const { unsubscribe, open } = links(sendId);
    tracking = { baseUrl: ctx.trackingUrl, unsubscribe: ctx.listUnsubscribe ? unsubscribe : null, pixel: ctx.pixel ? open : null };
  }
  const parts = composeParts({
    message,
    from: message.from ?? ctx.fromHeader,
    // The template's Reply-To wins over the setting; one rendered empty (a blank line, or a
    // field empty under --allow-empty) names nobody to reply to, so the setting's applies.
    replyTo: message.replyTo || ctx.replyTo,
    // A test mail goes to the tester, not by the member's name.
    to: { name: ctx.test ? null : to.name, address: to.address },
    messageId,
    sendId,
    test: ctx.test,
    tracking,
    attachments: files,
    boundary: ctx.boundary ?? undefined,
  });
  const oversize = sizeSkip(maxBytes, message, parts.size, files);
  if (oversize) return { ok: false, skip: oversize };
  return { ok: true, raw: parts.skeleton, files: parts.slots.length ? new MessageWithFiles(parts) : null, size: parts.size, messageId };
}

export function checkTemplate(store: Store, template: Template, settings: MailingSettings): void {
  checkPlaceholders(template, store.members.fieldNames());
  checkSender(template, settings);
}

/** A mail needs a sender, from the template or the settings, and valid addresses for both. */
export function checkSender(template: Template, settings: MailingSettings): void {
  const from = template.from ?? settings.from;
  if (!from) {
    throw badInput(`${template.path}: no sender`, 'add a line "From: Name <address>" to the template, or set "from" in mailer.json');
  }
  addressOf(from, 'the sender');
  if (settings.bounceAddress) addressOf(settings.bounceAddress, 'bounceAddress');
  if (template.names.has('unsubscribe_url')) {
    if (template.required) {
      throw badInput(`${template.path}: {{unsubscribe_url}} in a mail with "Required: yes", which members cannot unsubscribe from`,
        'remove the link from the template, or the line "Required: yes" if members may opt out of this mail');
    }
    if (!settings.publicUrl) {
      throw badInput(`${template.path}: {{unsubscribe_url}} needs "publicUrl" (where mailer serve is reached) in mailer.json`,
        'set "publicUrl", e.g. "https://mail.verein.example", or remove the link from the template');
    }
  }
}

export function createMailing(store: Store, input: PlanInput): { mailing: Mailing; selected: number } {
  const { template } = input;
  checkTemplate(store, template, input.settings);
  return store.transaction(() => {
    const mailing = store.mailings.createMailing({
      type: template.type,
      topic: template.topic,
      required: template.required,
      sender: template.from ?? input.settings.from ?? null,
      templatePath: template.path,
      template: template.source,
      htmlTemplate: template.html,
      footer: template.footer,
      settings: { ...input.settings, testTo: input.testTo },
      test: input.testTo !== undefined,
      status: input.at !== undefined ? 'scheduled' : 'running',
      now: input.now,
    });
    if (input.at !== undefined) store.mailings.scheduleMailing(mailing.id, input.at);
    // A test send takes only the first members; a real send queues everyone and --limit
    // caps the run, so the rest stays queued for the next one.
    const selected = store.mailings.enqueue(mailing, input.selection, {
      testTo: input.testTo, limit: input.testTo !== undefined ? input.limit : undefined, now: input.now,
    });
    return { mailing: { ...mailing, selected }, selected };
  });
}

/** The template of a mailing as it was when the mailing was made. */
export function mailingTemplate(mailing: Mailing): Template {
  return parseTemplate(mailing.template, { path: mailing.templatePath, html: mailing.htmlTemplate, footer: mailing.footer });
}

export interface DryRunResult {
  selected: number;
  wouldSend: { member: string; email: string }[];
  wouldSendCount: number;
  skipped: { member: string; email: string | null; category: string; reason: string }[];
  /** past --limit: would be queued and left for the next run */
  leftQueued: number;
}

/** As long as a send id of a large database and a token (newToken): 22 URL-safe characters. */
const DRY_RUN_SEND_ID = 1_000_000;
const DRY_RUN_TOKEN = 'TOKEN'.padEnd(22, '0');
/** Link values of that send id: signed with a throwaway key, they have the real ones' length. */
const DRY_RUN_LINKS = new LinkSigner(Buffer.alloc(32)).mailLinks(DRY_RUN_SEND_ID);

/**
 * The stand-in members a mailing's dictionary is composed for: no one's data. Names of several
 * lengths, with and without letters beyond ASCII, so that the dictionary has the To: header in
 * both its forms and the quoted-printable line breaks at several places: on the example
 * newsletter five took the stored messages from 168 to 155 bytes against one (ten: no better).
 */
/**
 * zlib takes in the whole dictionary again for every message it compresses: a longer one costs
 * every stored message time for little. For the example newsletter (1.7 KB a message), five
 * renderings (8.4 KB) stored 123 bytes a message in 25 µs, two (3.4 KB) 126 bytes in 17 µs.
 */
const DICTIONARY_BYTES = 4 * 1024;

const STAND_INS = [
  { name: 'Erika Mustermann', email: 'member@example.invalid' },
  { name: 'Änne Beispiel-Musterfrau', email: 'aenne.beispiel@example.invalid' },
  { name: 'Max Muster', email: 'max@example.invalid' },
  { name: 'Hännes Probe', email: 'haennes.probe.12345@example.invalid' },
  { name: 'Chloé Platzhalter', email: 'chloe.platzhalter@example.invalid' },
];

/**
 * A mailing's preset dictionary for its stored messages (store/message-codec.ts): its template
 * composed as the run composes it, for each stand-in member, every field holding its own name
 * (longer for each next one), with stand-in link values of the real length. Most of each real
 * message is found in it; nothing in it is a member's (`mailer forget` must leave no personal
 * value in the file). The renderings go last to first, so the first one is nearest to the
 * message; as many as fit DICTIONARY_BYTES, at least one. Null when the template cannot be
 * composed so (the messages are then compressed without one).
 */
export function dictionaryMessage(ctx: MailingContext, system: boolean): Buffer | null {
  const parts: Buffer[] = [];
  let total = 0;
  for (const [k, standIn] of STAND_INS.entries()) {
    const fields: Record<string, string> = {};
    for (const name of ctx.template.names) if (name !== '.' && !name.includes('.')) fields[name] = k ? `${name} ${'x'.repeat(2 * k)}` : name;
    const member: Member = { id: 0, key: 'id', email: standIn.email, name: standIn.name, fields, emailProblem: null };
    const view = memberView(member, standIn.email, DRY_RUN_TOKEN, unsubscribeUrl(ctx, DRY_RUN_LINKS));
    const rendered = render(ctx.template, system ? dataView(view, {}) : view, { allowEmpty: true, data: system });
    if (!rendered.ok) return null;
    const { attachments: _files, ...message } = rendered.message;
    const composed = composeFor(ctx, message, { name: standIn.name, address: standIn.email }, DRY_RUN_SEND_ID, () => DRY_RUN_LINKS, Number.MAX_SAFE_INTEGER);
    if (!composed.ok) return null;
    if (parts.length && total + composed.raw.length > DICTIONARY_BYTES) break;
    parts.unshift(composed.raw);
    total += composed.raw.length;
  }
  return parts.length ? Buffer.concat(parts) : null;
}

/** Everything a send would check, without writing a thing. */
export function dryRun(store: Store, input: PlanInput, listed = 20): DryRunResult {
  checkTemplate(store, input.template, input.settings);
  const result: DryRunResult = { selected: 0, wouldSend: [], wouldSendCount: 0, skipped: [], leftQueued: 0 };
  // As the send does it: a test takes the first `limit` members; a real send queues everyone,
  // and --limit counts the mails handed over, so a member skipped on the way takes no place.
  const test = input.testTo !== undefined;
  const maxBytes = input.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const ctx = mailingContext(input.template, input.settings, test);
  const topic = { topic: input.template.topic, required: input.template.required };
  for (const member of store.members.selectedMembers(input.selection, topic, test ? input.limit : undefined)) {
    result.selected++;
    const email = input.testTo ?? member.email;
    let skip: { category: string; reason: string } | null = null;
    if (input.testTo === undefined && member.skip) {
      skip = member.skip;
    } else if (!test && input.limit !== undefined && result.wouldSendCount >= input.limit) {
      // Past --limit the run renders nobody: a member with an empty field is skipped only when
      // a later run reaches it. Left queued, as the run would leave it.
      result.leftQueued++;
      continue;
    } else {
      skip = mailSkip(ctx, member, email!, maxBytes);
    }
    if (skip) {
      result.skipped.push({ member: member.key, email: member.email, ...skip });
    } else {
      result.wouldSendCount++;
      if (result.wouldSend.length < listed) result.wouldSend.push({ member: member.key, email: email! });
    }
  }
  return result;
}

/**
 * Why a member's mail cannot go out as the run would make it: a field, a file, its size. The
 * dry run asks it, and the check a send with attachments makes before it hands anything over.
 */
export function mailSkip(ctx: MailingContext, member: Member, email: string, maxBytes: number): { category: string; reason: string } | null {
  const rendered = render(ctx.template, memberView(member, email, DRY_RUN_TOKEN, unsubscribeUrl(ctx, DRY_RUN_LINKS)), { allowEmpty: ctx.allowEmpty });
  if (!rendered.ok) return { category: rendered.category, reason: rendered.reason };
  const found = filesFor(ctx, rendered.message);
  if (!found.ok) return { category: found.category, reason: found.reason };
  if (surelyFits(maxBytes, rendered.message, found.files)) return null;
  // Composed as the run composes it, with stand-ins of the same length for the send id, the
  // token and the links: the size measured is the mail's size (to a few bytes). With files, only
  // the skeleton is built; their base64 length follows from their sizes.
  const composed = composeFor(ctx, rendered.message, { name: member.name, address: email }, DRY_RUN_SEND_ID, () => DRY_RUN_LINKS, maxBytes, found.files);
  return composed.ok ? null : composed.skip;
}

/**
 * Before a mailing with attachments hands anything over: every queued member's files are
 * checked, and a member whose files are missing, lead outside or make the mail too large is
 * skipped at once, so the run lists them all up front. Returns how many were skipped so.
 */
export function checkAttachments(store: Store, mailing: Mailing, maxBytes: number, now: number): number {
  const template = mailingTemplate(mailing);
  if (template.parts.attachments.length === 0) return 0;
  const ctx = mailingContext(template, mailing.settings, mailing.test);
  let skipped = 0;
  for (const { send, member, email } of store.sends.queuedOf(mailing.id)) {
    const skip = mailSkip(ctx, member, email, maxBytes);
    if (skip && UNSENDABLE_CATEGORIES.has(skip.category)) {
      store.sends.markSkipped(send, skip.category, skip.reason, now);
      skipped++;
    }
  }
  return skipped;
}

export interface MailingSummary {
  mailing: number;
  test: boolean;
  status: string;
  statusReason: string | null;
  selected: number;
  sent: number;
  failed: number;
  deferred: number;
  skipped: number;
  queued: number;
  byReason: Record<string, number>;
}

export function summarize(store: Store, mailingId: number): MailingSummary {
  const mailing = store.mailings.mailing(mailingId)!;
  const summary: MailingSummary = {
    mailing: mailing.id, test: mailing.test, status: mailing.status, statusReason: mailing.statusReason,
    selected: mailing.selected, sent: 0, failed: 0, deferred: 0, skipped: 0, queued: 0, byReason: {},
  };
  for (const { status, category, n } of store.mailings.mailingCounts(mailingId)) {
    if (status === 'queued') summary.queued += n;
    else if (status === 'sent' || status === 'failed' || status === 'deferred' || status === 'skipped') summary[status] += n;
    if (category && status !== 'sent') summary.byReason[category] = (summary.byReason[category] ?? 0) + n;
  }
  return summary;
}
