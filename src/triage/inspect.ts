import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { findSend } from '../store/sends.js';
import { explain } from '../domain/catalog.js';
import type { AttachmentRecord, Attempt, Send, BounceRecord, SendEvent } from '../domain/types.js';
import { rebuildMessage, type RebuildResult } from '../mail/compose.js';
import { readOwnMessage, type MessageView } from '../mail/message-view.js';

/** One send as `show` presents it: the message as it left, and what happened to it. */
export interface SendDetail {
  send: Send;
  raw: Buffer | null;
  /** the files the message went out with (their bodies are not in `raw`) */
  attachments: AttachmentRecord[];
  headers: [string, string][];
  text: string | null;
  htmlBytes: number | null;
  attempts: (Attempt & { explanation: string })[];
  bounces: BounceRecord[];
  events: SendEvent[];
  /** when prune removed the message and data (retention); null when it has not */
  contentRemovedAt: number | null;
  /** the member was erased (forget): when and why */
  erased: { at: number; reason: string } | null;
}

/**
 * The exact message as it left; a send that has none says why (skipped, not sent yet). With
 * attachments, the files are put back in, when each still has the SHA-256 it went out with.
 */
export async function storedMessage(store: Store, id: number): Promise<RebuildResult> {
  const send = findSend(store, id);
  const raw = store.sends.rawMessage(id);
  if (!raw) {
    const removed = store.erasure.contentRemovedAt(id);
    if (removed !== null) throw badInput(`send ${id} has no message: its content was removed on ${new Date(removed).toISOString().slice(0, 10)} (retention)`, `\`mailer show ${id}\` shows its history`);
    const erased = store.erasure.forgottenMember(send.memberId);
    if (erased) throw badInput(`send ${id} has no message: its member was erased on ${new Date(erased.at).toISOString().slice(0, 10)} (${erased.reason})`, `\`mailer show ${id}\` shows its history`);
    throw badInput(`send ${id} has no message: it is ${send.status}${send.reason ? ` (${send.reason})` : ''}`, `\`mailer show ${id}\` shows its history`);
  }
  const attachments = store.sends.attachments(id);
  return attachments.length ? rebuildMessage(raw, attachments) : { ok: true, raw };
}

export async function sendDetail(store: Store, id: number): Promise<SendDetail> {
  const send = findSend(store, id);
  const raw = store.sends.rawMessage(id) ?? null;
  const detail: SendDetail = {
    send, raw, attachments: store.sends.attachments(id), headers: [], text: null, htmlBytes: null,
    attempts: store.sends.attempts(id).map((a) => ({ ...a, explanation: a.category ? explain(a.category) : '' })),
    bounces: store.triage.bounces(id),
    events: store.triage.events(id),
    contentRemovedAt: raw ? null : store.erasure.contentRemovedAt(id),
    erased: store.erasure.forgottenMember(send.memberId) ?? null,
  };
  if (raw) Object.assign(detail, readOwnMessage(raw) ?? await readAnyMessage(raw));
  return detail;
}

/** Any other message (written by an older or another build) goes through a full MIME parser. */
export async function readAnyMessage(raw: Buffer): Promise<MessageView> {
  const { simpleParser } = await import('mailparser');
  const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
  // Header values decoded (=?UTF-8?Q?…?= words, address lists) so a person can read them.
  const headers = parsed.headerLines.map((h): [string, string] => {
    const name = h.line.slice(0, h.line.indexOf(':'));
    // mailparser files List-* headers under one "list" key: their own line keeps its value.
    if (h.key.startsWith('list-')) return [name, h.line.slice(h.line.indexOf(':') + 1).replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim()];
    const value = parsed.headers.get(h.key) as unknown;
    const text = value instanceof Date ? value.toUTCString()
      : value && typeof value === 'object' && 'text' in value ? String((value as { text: string }).text)
      : value && typeof value === 'object' && 'value' in value ? String((value as { value: string }).value)
      : String(value ?? '');
    return [name, text];
  });
  return { headers, text: parsed.text ?? null, htmlBytes: typeof parsed.html === 'string' ? Buffer.byteLength(parsed.html) : null };
}
