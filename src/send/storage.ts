import type { Store } from '../store/store.js';
import { LinkSigner } from '../domain/token.js';
import { dictionaryMessage, mailingContext, mailingTemplate } from './mailing.js';

export interface StorageMigration {
  /** rows compressed by this run */
  compressed: number;
  /** their bytes before and after */
  bytesBefore: number;
  bytesAfter: number;
  /** short write transactions it took, and the longest of them */
  batches: number;
  longestBatchMs: number;
  /** whether the file was rebuilt (VACUUM) to reuse freed pages without one from now on */
  vacuumed: boolean;
}

/** Each batch holds the write lock for about this long, far under the second it may. */
const BATCH_TARGET_MS = 100;
/** Between two batches the lock is free this long: a running send records its mails. */
const PAUSE_MS = 20;

/**
 * Brings the stored data of an older database to this mailer's form, while other commands go
 * on using it: messages stored as sent are compressed against their mailing's dictionary, a
 * batch at a time, each a short write of its own (rows of both forms are read alike, so a run
 * that is stopped can simply be started again and goes on where the plain rows are). With
 * `vacuum`, the file is rebuilt once so that freed pages are reused and can be handed back
 * without a VACUUM from then on (auto_vacuum=INCREMENTAL): that one holds the database for as
 * long as copying the file takes, and needs as much free disk again.
 */
export async function migrateStorage(store: Store, opts: { vacuum: boolean; onProgress?: (done: number, left: number, batch: number) => void }): Promise<StorageMigration> {
  const result: StorageMigration = { compressed: 0, bytesBefore: 0, bytesAfter: 0, batches: 0, longestBatchMs: 0, vacuumed: false };
  const makeDictionary = (mailingId: number): Buffer | null => {
    const mailing = store.mailings.mailing(mailingId);
    if (!mailing) return null;
    try {
      // with the boundary the mailing's messages are composed with from now on (a resumed run)
      const boundary = new LinkSigner(store.triage.linkSecret()).mailingBoundary(mailingId);
      return dictionaryMessage(mailingContext(mailingTemplate(mailing), mailing.settings, mailing.test, boundary), !!mailing.system);
    } catch {
      // A template this build cannot read any more: its messages are compressed without one.
      return null;
    }
  };
  let left = store.sends.plainMessageCount();
  let limit = 200;
  for (let after = 0; ;) {
    const started = performance.now();
    const batch = store.sends.compressPlainMessages(after, limit, makeDictionary);
    const ms = performance.now() - started;
    if (batch.last === null) break;
    after = batch.last;
    result.batches++;
    result.longestBatchMs = Math.max(result.longestBatchMs, ms);
    result.compressed += batch.rows;
    result.bytesBefore += batch.before;
    result.bytesAfter += batch.after;
    left = Math.max(0, left - batch.rows);
    opts.onProgress?.(result.compressed, left, result.batches);
    // The batch grows or shrinks toward its time, so that a slow disk still keeps it short.
    limit = Math.max(10, Math.min(5000, Math.round(limit * (BATCH_TARGET_MS / Math.max(ms, 1)))));
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  if (opts.vacuum && store.autoVacuum() !== 'incremental') {
    store.vacuumIntoIncremental();
    result.vacuumed = true;
  }
  return result;
}
