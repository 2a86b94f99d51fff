import type { Store } from '../store/store.js';
import { acquireSendLock, tryAcquireSendLock } from './lock.js';
import type { Transport } from '../domain/ports.js';

export type OpenTransports = (concurrency: number) => Promise<Transport[]>;

/**
 * Set when the process is asked to stop (Ctrl-C, or SIGTERM from cron or a shutdown): workers
 * take no new sends, finish and record the ones in hand, and the run ends with the rest queued
 * (so nothing is left half-done to be marked a possible duplicate).
 */
export const stopRequest = new AbortController();

/**
 * Everything that hands mail over runs inside this: the send lock first (so a second process
 * exits 4 before changing anything), then the transports, closed and released whatever happens.
 */
export async function withSendLock<T>(store: Store, what: string, now: number, fn: () => Promise<T>): Promise<T> {
  return locked(acquireSendLock(store, what, now), fn);
}

/** The same when no other process holds the lock; undefined, without running `fn`, when one does. */
export async function ifSendLockFree<T>(store: Store, what: string, now: number, fn: () => Promise<T>): Promise<T | undefined> {
  const release = tryAcquireSendLock(store, what, now);
  return release ? locked(release, fn) : undefined;
}

async function locked<T>(release: () => void, fn: () => Promise<T>): Promise<T> {
  const stopOnSignal = [['SIGINT', askToStop('SIGINT')], ['SIGTERM', askToStop('SIGTERM')]] as const;
  for (const [signal, handler] of stopOnSignal) process.on(signal, handler);
  try {
    return await fn();
  } finally {
    for (const [signal, handler] of stopOnSignal) process.off(signal, handler);
    release();
  }
}

/** What a second signal does; the program decides (cli.ts ends the process), a test may not. */
let stopAgain: () => void = () => {};

export function whenAskedToStopAgain(fn: () => void): void {
  stopAgain = fn;
}

/**
 * While mail is handed over, the first Ctrl-C or SIGTERM lets the mails in hand finish and be
 * recorded; a second one ends the process at once (the next run then marks those in hand as
 * possibly sent twice). Outside a send run signals keep their default: an import or a check
 * stops at once, and an import's open transaction is simply never committed.
 */
function askToStop(signal: string): () => void {
  return () => {
    if (stopRequest.signal.aborted) {
      stopAgain();
      return;
    }
    process.stderr.write(`\n${signal}: stopping after the work in hand (again to stop at once)\n`);
    stopRequest.abort();
  };
}

export async function withTransports<T>(open: OpenTransports, concurrency: number, fn: (transports: Transport[], description: string) => Promise<T>): Promise<T> {
  const transports = await open(concurrency);
  try {
    return await fn(transports, transports.map((t) => t.description).join(', '));
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}
