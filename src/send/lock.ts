import os from 'node:os';
import { ExitCode, MailerError } from '../errors.js';
import type { Store } from '../store/store.js';

const LOCK = 'send';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One sending process per database (send, retry, retarget, run): two would hand the same
 * queued mail over twice. A lock left by a process that is gone is taken over. Returns the
 * release function.
 */
export function acquireSendLock(store: Store, what: string, now: number): () => void {
  const release = tryAcquireSendLock(store, what, now, (holder, otherHost) => {
    throw new MailerError(
      `another mailer (${holder.what}, pid ${holder.pid}${otherHost ? ` on ${holder.host}` : ''}, since ${new Date(holder.since).toISOString()}) is sending from this database; nothing was done`,
      { exitCode: ExitCode.locked, hint: otherHost ? 'wait for it to finish; if that machine is gone, delete the row in the locks table' : 'wait for it to finish, or stop that process; a lock of a dead process is taken over' },
    );
  });
  return release!;
}

/**
 * The send lock if no other process holds it, else null (`held` is told who does): a system
 * mail is then queued for the running send instead.
 */
export function tryAcquireSendLock(
  store: Store, what: string, now: number,
  held: (holder: NonNullable<ReturnType<Store['mailings']['lockHolder']>>, otherHost: boolean) => void = () => {},
): (() => void) | null {
  return tryAcquireLock(store, LOCK, what, now, held);
}

/** The bounce mailbox: read by one process at a time, or both would move the same messages. */
const MAILBOX_LOCK = 'mailbox';

/**
 * Runs `fn` holding the mailbox lock (bounces fetch, and mailer run's fetch); while another
 * process reads the mailbox, exit 4 naming it, before anything is read.
 */
export async function withMailboxLock<T>(store: Store, what: string, now: number, fn: () => Promise<T>): Promise<T> {
  const release = tryAcquireLock(store, MAILBOX_LOCK, what, now, (holder, otherHost) => {
    throw new MailerError(
      `another mailer (${holder.what}, pid ${holder.pid}${otherHost ? ` on ${holder.host}` : ''}, since ${new Date(holder.since).toISOString()}) is reading the bounce mailbox; it was not read`,
      { exitCode: ExitCode.locked, hint: otherHost ? 'it reads what came in: nothing is left out. If that machine is gone, delete the row in the locks table' : 'it reads what came in: nothing is left out. If that process is gone, its lock is taken over' },
    );
  });
  try {
    return await fn();
  } finally {
    release!();
  }
}

function tryAcquireLock(
  store: Store, name: string, what: string, now: number,
  held: (holder: NonNullable<ReturnType<Store['mailings']['lockHolder']>>, otherHost: boolean) => void,
): (() => void) | null {
  const me = { name, pid: process.pid, host: os.hostname() };
  const taken = store.immediate(() => {
    const holder = liveLockHolder(store, name);
    if (holder && !(holder.pid === me.pid && holder.host === me.host)) {
      held(holder, holder.host !== me.host);
      return false;
    }
    store.mailings.takeLock({ ...me, since: now, what });
    return true;
  });
  return taken ? () => store.mailings.releaseLock(me) : null;
}

/**
 * The process sending from this database, if one is: a lock of a process that is gone (killed
 * mid-run) does not count. One on another host is taken as alive: it cannot be asked.
 */
export function liveSendLockHolder(store: Store): ReturnType<Store['mailings']['lockHolder']> {
  return liveLockHolder(store, LOCK);
}

function liveLockHolder(store: Store, name: string): ReturnType<Store['mailings']['lockHolder']> {
  const holder = store.mailings.lockHolder(name);
  if (!holder) return undefined;
  return holder.host !== os.hostname() || alive(holder.pid) ? holder : undefined;
}
