import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { normalizeAddress } from '../domain/address.js';
import type { Catalog } from '../domain/catalog.js';

/**
 * Bounces: mails the server accepted that came back later. Read from .eml files, mbox files
 * or Maildir folders; delivery status notifications (RFC 3464) and the common plain-text
 * bounces of Exim, Postfix, Exchange and Gmail; matched to their send; a permanent one marks
 * the send bounced and suppresses the address.
 */
export interface ParsedBounce {
  recipients: { recipient: string | null; action: string; status: string | null; diagnostic: string | null }[];
  sendIdHeader: number | null;
  verpId: number | null;
  messageIds: string[];
  date: number | null;
}

export interface BounceImportResult {
  read: number;
  matched: number;
  unmatched: { source: string; recipient: string | null; reason: string }[];
  permanent: number;
  temporary: number;
  alreadyImported: number;
  suppressed: string[];
}

export interface RawMessage {
  source: string;
  raw: Buffer;
}

/** Every message in a file or folder: .eml, mbox, Maildir (cur/ and new/). */
export function readMessages(target: string): RawMessage[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw badInput(`cannot read ${target}: no such file or folder`, 'give a bounce mail (.eml), an mbox file or a Maildir folder');
  }
  if (stat.isFile()) return readFile(target);
  const maildir = ['cur', 'new'].map((d) => path.join(target, d)).filter((d) => fs.existsSync(d));
  const folders = maildir.length ? maildir : [target];
  return folders.flatMap((folder) => fs.readdirSync(folder).sort()
    .map((name) => path.join(folder, name))
    .filter((file) => fs.statSync(file).isFile())
    .flatMap(readFile));
}

function readFile(file: string): RawMessage[] {
  const raw = fs.readFileSync(file);
  if (!raw.subarray(0, 5).equals(Buffer.from('From '))) return [{ source: file, raw }];
  // mbox: messages start at a "From " line; ">From " in bodies is unescaped (mboxrd).
  const text = raw.toString('latin1');
  const starts = [...text.matchAll(/^From [^\n]*\n/gm)].map((m) => ({ at: m.index!, body: m.index! + m[0].length }));
  return starts.map((s, i) => ({
    source: `${file}#${i + 1}`,
    raw: Buffer.from(text.slice(s.body, i + 1 < starts.length ? starts[i + 1].at : text.length).replace(/^>(>*From )/gm, '$1'), 'latin1'),
  }));
}

const ENHANCED = /\b([245]\.\d{1,3}\.\d{1,3})\b/;
const ADDRESS = /[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;

export async function parseBounce(raw: Buffer): Promise<ParsedBounce> {
  const { simpleParser } = await import('mailparser');
  const mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  const text = [mail.text ?? '', ...mail.attachments.filter((a) => /^(text|message)\//.test(a.contentType)).map((a) => a.content.toString('utf8'))].join('\n');
  const latin = raw.toString('latin1');
  const headerEnd = latin.search(/\r?\n\r?\n/);
  const afterTop = headerEnd >= 0 ? latin.slice(headerEnd) : '';

  const sendId = /^X-Mailer-Send-Id:\s*(\d+)/im.exec(afterTop);
  const addressed = ['delivered-to', 'x-original-to', 'to'].map((h) => headerText(mail.headers.get(h))).join(' ');
  const verp = /\+(\d+)@/.exec(addressed);
  const messageIds = [...afterTop.matchAll(/^Message-ID:\s*(<[^>\s]+>)/gim)].map((m) => m[1]);

  let recipients = dsnRecipients(text);
  if (recipients.length === 0) recipients = plainRecipients(text, headerText(mail.headers.get('x-failed-recipients')));
  return {
    recipients,
    sendIdHeader: sendId ? Number(sendId[1]) : null,
    verpId: verp ? Number(verp[1]) : null,
    messageIds,
    date: mail.date ? mail.date.getTime() : null,
  };
}

function headerText(value: unknown): string {
  if (!value) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && 'text' in (value as object)) return String((value as { text: string }).text);
  return String(value);
}

/** RFC 3464 per-recipient fields: a group starts at each Final-Recipient. */
function dsnRecipients(text: string): ParsedBounce['recipients'] {
  const lines = text.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ').split('\n');
  const groups: ParsedBounce['recipients'] = [];
  for (const line of lines) {
    const m = /^(Final-Recipient|Action|Status|Diagnostic-Code):\s*(.*)$/i.exec(line.trim());
    if (!m) continue;
    const field = m[1].toLowerCase();
    const value = m[2].trim();
    if (field === 'final-recipient') {
      groups.push({ recipient: normalizeAddress(value.replace(/^[^;]*;\s*/, '').replace(/^<|>$/g, '')), action: 'failed', status: null, diagnostic: null });
      continue;
    }
    const current = groups[groups.length - 1];
    if (!current) continue;
    if (field === 'action') current.action = value.toLowerCase();
    else if (field === 'status') current.status = ENHANCED.exec(value)?.[1] ?? null;
    else current.diagnostic = value.replace(/^[^;]*;\s*/, '');
  }
  return groups;
}

/** Plain-text bounces: the recipient and the server's reply, found the way a person would. */
function plainRecipients(text: string, failedHeader: string): ParsedBounce['recipients'] {
  const body = text.replace(/\r\n/g, '\n');
  const reply = /\b([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b[^\n]*/.exec(body) ?? /\b([45]\d\d)\s[^\n]*/.exec(body);
  const enhanced = reply ? ENHANCED.exec(reply[0])?.[1] ?? null : ENHANCED.exec(body)?.[1] ?? null;
  if (!reply && !enhanced && !/delivery|undeliver|returned|failed|unzustellbar/i.test(body)) return [];
  const recipient = failedHeader.match(ADDRESS)?.[0]
    ?? /RCPT TO:\s*<([^>]+)>/i.exec(body)?.[1]
    ?? /^\s*<?([^\s<>@]+@[^\s<>]+\.[A-Za-z]{2,})>?:?\s*$/m.exec(body)?.[1]
    ?? /^<([^>]+)>:/m.exec(body)?.[1]
    ?? null;
  const temporary = /\b(delayed|will (be )?retr(y|ied)|temporar|still trying|verzögert)/i.test(body) || (enhanced ?? reply?.[1] ?? '').startsWith('4');
  return [{
    recipient: recipient ? normalizeAddress(recipient) : null,
    action: temporary ? 'delayed' : 'failed',
    status: enhanced,
    diagnostic: reply ? reply[0].trim() : null,
  }];
}

/**
 * Imports bounces: each is matched to its send by X-Mailer-Send-Id, the VERP address, the
 * original Message-ID, then recipient and time. A message already imported (same bytes) is
 * skipped, so importing a mailbox twice changes nothing the second time.
 */
export async function importBounces(store: Store, catalog: Catalog, target: string, now: number): Promise<BounceImportResult> {
  const result = emptyImportResult();
  for (const message of readMessages(target)) {
    const kind = await importBounce(store, catalog, message, now, result);
    if (kind === 'not-a-bounce') result.unmatched.push({ source: message.source, recipient: null, reason: 'not a bounce: no delivery status and no server reply in it' });
  }
  return result;
}

export function emptyImportResult(): BounceImportResult {
  return { read: 0, matched: 0, unmatched: [], permanent: 0, temporary: 0, alreadyImported: 0, suppressed: [] };
}

/** What one message turned out to be. */
export type BounceKind = 'bounce' | 'already-imported' | 'not-a-bounce';

/**
 * One message, the way `bounces import` and `bounces fetch` both read it: recorded per
 * recipient, matched, and a permanent one suppresses its address. With `dryRun`, it is parsed
 * and matched and the counts say what would happen, but nothing is written.
 */
export async function importBounce(store: Store, catalog: Catalog, message: RawMessage, now: number, result: BounceImportResult, dryRun = false): Promise<BounceKind> {
  result.read++;
  const fingerprint = createHash('sha256').update(message.raw).digest('hex');
  if (store.triage.hasBounce(fingerprint)) {
    result.alreadyImported++;
    return 'already-imported';
  }
  const parsed = await parseBounce(message.raw);
  if (parsed.recipients.length === 0) return 'not-a-bounce';
  const at = parsed.date ?? now;
  // One file, one fingerprint: a report about several recipients is recorded once per recipient.
  parsed.recipients.forEach((r, index) => {
    const match = matchSend(store, parsed, r.recipient, at);
    const failure = { responseCode: r.diagnostic ? Number(/^\s*(?:smtp;\s*)?([245]\d\d)/i.exec(r.diagnostic)?.[1]) || undefined : undefined, response: [r.diagnostic, r.status].filter(Boolean).join(' '), message: r.diagnostic ?? r.status ?? 'bounced' };
    const c = catalog.classify(failure);
    const permanent = r.action === 'failed' && !(r.status ?? '').startsWith('4');
    if (!dryRun) {
      store.triage.recordBounce({
        fingerprint: index === 0 ? fingerprint : `${fingerprint}:${index}`, sendId: match?.id ?? null, matchedBy: match?.by ?? null,
        recipient: r.recipient, action: r.action, statusCode: r.status, diagnostic: r.diagnostic,
        category: c.category, permanent, source: message.source, at,
      }, now);
    }
    if (permanent) result.permanent++;
    else result.temporary++;
    if (!match) {
      result.unmatched.push({ source: message.source, recipient: r.recipient, reason: 'no send found for it' });
      return;
    }
    result.matched++;
    const address = r.recipient ?? store.sends.send(match.id)?.email ?? null;
    if (permanent && address && !store.triage.suppression(address) && !result.suppressed.includes(address)) {
      if (!dryRun) store.triage.suppress(address, `bounced: ${r.diagnostic ?? r.status ?? 'permanent failure'} (send ${match.id})`, now);
      result.suppressed.push(address);
    }
  });
  return 'bounce';
}

function matchSend(store: Store, parsed: ParsedBounce, recipient: string | null, at: number): { id: number; by: string } | null {
  const exists = (id: number | null) => id !== null && store.sends.send(id) !== undefined;
  if (exists(parsed.sendIdHeader)) return { id: parsed.sendIdHeader!, by: 'X-Mailer-Send-Id' };
  if (exists(parsed.verpId)) return { id: parsed.verpId!, by: 'VERP address' };
  for (const messageId of parsed.messageIds) {
    const id = store.triage.sendIdByMessageId(messageId);
    if (id !== undefined) return { id, by: 'Message-ID' };
  }
  if (recipient) {
    const id = store.triage.sendIdByRecipient(recipient, at);
    if (id !== undefined) return { id, by: 'recipient and time' };
  }
  return null;
}
