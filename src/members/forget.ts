import fs from 'node:fs';
import { badInput } from '../errors.js';
import { erasedHash } from '../domain/erasure.js';
import type { Store } from '../store/store.js';
import type { ErasureCounts } from '../store/erasure.js';
import type { Member } from '../domain/types.js';

export interface ForgetResult extends ErasureCounts {
  /** the member id (key) as given by the import, before it was erased */
  member: string;
  /** outbox files of the member's mails that were (or, dry, would be) removed */
  files: number;
  /** addresses another member has too: they stay, with their suppressions */
  shared: string[];
  dryRun: boolean;
  /** forget: whether the WAL could be emptied at once (else a reader held it) */
  walEmptied: boolean;
  /** the one VACUUM of a database made before secure_delete, in ms; null when none was needed */
  vacuumMs: number | null;
}

/**
 * The member a data-protection command is about: by id or address (an old one too). One who
 * was erased already says so; an address two members share needs the id.
 */
export function memberToErase(store: Store, who: string): Member {
  const found = store.members.findMembers(who.trim());
  if (found.length > 1) {
    throw badInput(`the address ${who} belongs to ${found.length} members (${found.map((m) => m.key).join(', ')})`, 'name the member by id');
  }
  if (found.length === 1) return found[0];
  const erased = store.erasure.forgottenAs(who);
  if (erased) throw badInput(`member "${who}" was erased on ${day(erased.at)} (${erased.reason}); nothing is stored about them any more`);
  throw badInput(`no member with id or address "${who}"`, 'check the spelling; `mailer log --email <address>` lists sends by address');
}

/**
 * Erases a member's personal data (see store/erasure.ts for what goes and what stays), then
 * makes sure no copy is left in the database files (Store.scrub), then removes the outbox
 * files of their mails: on the embedded default they are the only other copy.
 */
export function forgetMember(store: Store, who: string, opts: { reason: string; now: number; dryRun: boolean }): ForgetResult {
  const reason = opts.reason.trim();
  if (!reason) throw badInput('--reason is empty', 'say why, e.g. --reason "asked by letter of 2026-11-30"');
  const member = memberToErase(store, who);
  const secret = store.erasure.secret();
  const addresses = store.erasure.memberAddresses(member.id);
  const hashes = addresses.map((email) => ({ email, hash: erasedHash(secret, 'address', email), shared: store.erasure.addressInUse(email, member.id) }));
  const files = store.erasure.outboxFiles(member.id).filter((f) => fs.existsSync(f));
  const counts = store.erasure.counts(member.id, addresses.length);
  const result: ForgetResult = {
    member: member.key, ...counts, files: files.length, shared: hashes.filter((h) => h.shared).map((h) => h.email),
    dryRun: opts.dryRun, walEmptied: true, vacuumMs: null,
  };
  if (opts.dryRun) return result;
  store.erasure.forget({ member: member.id, keyHash: erasedHash(secret, 'key', member.key), reason, now: opts.now, hashes });
  Object.assign(result, store.scrub());
  for (const f of files) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      result.files--;
    }
  }
  return result;
}

export function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
