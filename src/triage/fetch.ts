import type { Settings } from '../config/settings.js';
import type { Catalog } from '../domain/catalog.js';
import { badInput } from '../errors.js';
import type { Store } from '../store/store.js';
import { emptyImportResult, importBounce, type BounceImportResult } from './bounces.js';

/**
 * `mailer bounces fetch`: the bounce mailbox over IMAP. Reads only what arrived since the last
 * fetch (the folder's UIDVALIDITY and highest UID are kept in the database, so no flag has to be
 * set on anybody's mail), imports each bounce exactly as `bounces import` does, moves the
 * bounces to mailer-processed and leaves every other message where it was, flags untouched.
 */
export const PROCESSED_FOLDER = 'mailer-processed';

export interface FetchResult {
  mailbox: string;
  dryRun: boolean;
  read: number;
  bounces: number;
  matched: number;
  unmatched: BounceImportResult['unmatched'];
  moved: number;
  left: number;
  unparsable: { uid: number; subject: string | null; reason: string }[];
  suppressed: string[];
  alreadyImported: number;
}

export async function fetchBounces(store: Store, catalog: Catalog, settings: Settings, opts: { dryRun: boolean; now: () => number }): Promise<FetchResult> {
  if (!settings.bounceMailbox) {
    throw badInput('no bounce mailbox is configured', 'set "bounceMailbox": "imaps://user@imap.example.org/INBOX" in mailer.json (password in MAILER_IMAP_PASSWORD)');
  }
  const { ImapMailbox, MAX_BOUNCE_BYTES } = await import('../mail/imap.js');
  const { tokensFor } = await import('../mail/transports.js');
  const oauth2 = settings.oauth2 ? await tokensFor(settings) : undefined;
  const mailbox = await ImapMailbox.open(settings.bounceMailbox, { password: settings.imapPassword, oauth2, readOnly: opts.dryRun, requireTls: settings.requireTls });
  const imported = emptyImportResult();
  const result: FetchResult = {
    mailbox: mailbox.description, dryRun: opts.dryRun, read: 0, bounces: 0, matched: 0, unmatched: imported.unmatched,
    moved: 0, left: 0, unparsable: [], suppressed: imported.suppressed, alreadyImported: 0,
  };
  try {
    const state = store.triage.mailboxState(mailbox.description);
    // A new UIDVALIDITY means the UIDs were given anew (RFC 3501 2.3.1.1): start from the bottom.
    const after = state && state.uidValidity === mailbox.uidValidity ? state.lastUid : 0;
    const bounces: number[] = [];
    let last = after;
    for (const entry of await mailbox.newer(after)) {
      result.read++;
      last = entry.uid;
      if (entry.size > MAX_BOUNCE_BYTES) {
        result.left++;
        continue;
      }
      const raw = await mailbox.read(entry.uid);
      let kind: Awaited<ReturnType<typeof importBounce>> | 'unparsable' = 'unparsable';
      let reason = 'the server gave no content for it';
      if (raw) {
        try {
          kind = await importBounce(store, catalog, { source: `${mailbox.description};UID=${entry.uid}`, raw }, opts.now(), imported, opts.dryRun);
        } catch (err) {
          reason = `it cannot be parsed: ${(err as Error).message}`;
        }
        if (kind === 'not-a-bounce' && looksLikeReport(raw)) {
          kind = 'unparsable';
          reason = 'a delivery report in which no recipient and no status could be read';
        }
      }
      if (kind === 'bounce' || kind === 'already-imported') {
        bounces.push(entry.uid);
        continue;
      }
      result.left++;
      if (kind === 'unparsable') result.unparsable.push({ uid: entry.uid, subject: raw ? headerOf(raw, 'subject') : null, reason });
    }
    result.bounces = bounces.length;
    result.matched = imported.matched;
    result.alreadyImported = imported.alreadyImported;
    if (!opts.dryRun) {
      await mailbox.moveTo(bounces, PROCESSED_FOLDER);
      result.moved = bounces.length;
      // Saved after the move: a fetch that broke off reads the same messages again, and the
      // bounces among them are recognised by their bytes and only moved.
      // A fetch that found nothing new writes nothing either.
      if (!state || state.uidValidity !== mailbox.uidValidity || last !== after) store.triage.saveMailboxState(mailbox.description, mailbox.uidValidity, last, opts.now());
    }
  } finally {
    await mailbox.close();
  }
  return result;
}

/** A message that announces itself as a delivery report (RFC 3464, or a mailer daemon's). */
function looksLikeReport(raw: Buffer): boolean {
  const type = headerOf(raw, 'content-type') ?? '';
  if (/multipart\/report/i.test(type)) return true;
  const from = headerOf(raw, 'from') ?? '';
  const subject = headerOf(raw, 'subject') ?? '';
  return /mailer-daemon|postmaster/i.test(from) && /undeliver|deliver(y|ed)|returned|failure|unzustellbar|nicht zugestellt/i.test(subject);
}

/** One top-level header's value, unfolded (RFC 5322 2.2.3); only the header block is looked at. */
function headerOf(raw: Buffer, name: string): string | null {
  const text = raw.subarray(0, 64 * 1024).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const block = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(block);
  return m ? m[1].trim() : null;
}
