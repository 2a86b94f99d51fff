import type { Store } from '../store/store.js';
import { parseRetention, retentionHeader } from '../config/when.js';

export interface PruneResult {
  dryRun: boolean;
  /** stored messages and system-mail data removed (or, dry, to be removed) */
  messages: number;
  /** send rows removed, with their attempts, events and bounces */
  sends: number;
  mailings: number;
  /** the one VACUUM of a database made before secure_delete, in ms; null when none was needed */
  vacuumMs: number | null;
}

/**
 * Retention: each mailing's stored messages (and system-mail data) older than its template's
 * `Retention:`, else the setting `retention.messages`; send rows older than `retention.log`.
 * The counts of removed rows are kept per mailing (stats stays true). Nothing set: nothing goes.
 */
export function prune(store: Store, retention: { messages?: number; log?: number }, opts: { now: number; dryRun: boolean }): PruneResult {
  return store.withCache(PRUNE_CACHE_MB, () => pruneAll(store, retention, opts));
}

/** The page cache while pruning (see Store.withCache); the default is 2 MB. */
const PRUNE_CACHE_MB = 128;

function pruneAll(store: Store, retention: { messages?: number; log?: number }, opts: { now: number; dryRun: boolean }): PruneResult {
  const result: PruneResult = { dryRun: opts.dryRun, messages: 0, sends: 0, mailings: 0, vacuumMs: null };
  for (const m of store.erasure.mailingsForPrune()) {
    const header = retentionHeader(m.template);
    const keep = (header !== null ? parseRetention(header) : null) ?? retention.messages;
    let touched = false;
    if (keep !== undefined) {
      const n = store.erasure.pruneContent(m.id, opts.now - keep, opts.now, opts.dryRun);
      result.messages += n;
      touched ||= n > 0;
    }
    if (retention.log !== undefined) {
      const n = store.erasure.pruneLog(m.id, opts.now - retention.log, opts.now, opts.dryRun);
      result.sends += n;
      touched ||= n > 0;
    }
    if (touched) result.mailings++;
  }
  if (!opts.dryRun && (result.messages || result.sends)) result.vacuumMs = store.scrub().vacuumMs;
  return result;
}
