import type { Store } from '../store/store.js';
import type { DeliveryStore } from '../domain/ports.js';
import { BUILT_IN_RULES, Catalog } from '../domain/catalog.js';
import { parseRate } from '../config/rate.js';
import { DEFAULT_CONCURRENCY, type Settings } from '../config/settings.js';

/**
 * The send engine's view of the database. The engine names only the port, so this is the one
 * place that follows when the Store changes shape.
 */
export function deliveryStore(store: Store): DeliveryStore {
  const { sends, mailings, triage } = store;
  // Bound once per run: the engine calls these per send, and a method read off its group object
  // must keep that object as `this`.
  return {
    claimForDelivery: sends.claimForDelivery.bind(sends),
    claimSend: sends.claimSend.bind(sends),
    markSkipped: sends.markSkipped.bind(sends),
    requeue: sends.requeue.bind(sends),
    recordSent: sends.recordSent.bind(sends),
    recordUnsent: sends.recordUnsent.bind(sends),
    recordInterrupted: sends.recordInterrupted.bind(sends),
    nextQueued: sends.nextQueued.bind(sends),
    queuedSystemSends: sends.queuedSystemSends.bind(sends),
    mailing: mailings.mailing.bind(mailings),
    attachments: sends.attachments.bind(sends),
    ensureDictionary: sends.ensureDictionary.bind(sends),
    dictionary: sends.dictionary.bind(sends),
    linkSecret: triage.linkSecret.bind(triage),
    immediate: store.immediate.bind(store),
  };
}

/** The queue options every sending command shares, from the settings. */
export function queueSettings(store: Store, settings: Settings, clock: () => number) {
  return {
    concurrency: settings.concurrency ?? DEFAULT_CONCURRENCY,
    intervalMs: settings.rate ? parseRate(settings.rate) : 0,
    maxConnectionErrors: 5,
    backoff: settings.retryBackoff,
    maxMessageBytes: settings.maxMessageBytes,
    catalog: catalogOf(store),
    clock,
  };
}

/** The catalog as this database knows it: the operator's rules first, then the built-in ones. */
export function catalogOf(store: Store): Catalog {
  return new Catalog([...store.triage.errorRules(), ...BUILT_IN_RULES]);
}
