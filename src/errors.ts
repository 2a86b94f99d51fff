/** Exit codes: scripts and cron tell outcomes apart by them, so they never change meaning. */
export const ExitCode = {
  ok: 0,
  someFailed: 1,
  badInput: 2,
  serverUnusable: 3,
  locked: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The one error type a user ever sees: what went wrong and with what (file:line, member,
 * send id, host:port), the exit code, and what to do next. Anything else is a bug.
 */
export class MailerError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;

  constructor(message: string, options: { exitCode?: ExitCode; hint?: string } = {}) {
    super(message);
    this.name = 'MailerError';
    this.exitCode = options.exitCode ?? ExitCode.badInput;
    this.hint = options.hint;
  }
}

export function badInput(message: string, hint?: string): MailerError {
  return new MailerError(message, { exitCode: ExitCode.badInput, hint });
}

/** SQLite waits this long for another connection's write lock before it gives up. */
export const BUSY_TIMEOUT_MS = 5000;
/** A send run's batch waits longer: it holds mails handed over whose results must not be taken back. */
export const SEND_BUSY_WAIT_MS = 2 * 60_000;

/** SQLite's answer when another connection has held the lock past the busy timeout. */
export function isDatabaseBusy(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'SQLITE_BUSY';
}

/** Another mailer command has held the database's write lock past the busy timeout. */
export function databaseBusy(database = 'the database'): MailerError {
  return new MailerError(`${database} is busy: another mailer command (an import, say) has been writing it for more than ${BUSY_TIMEOUT_MS / 1000} s`, {
    hint: 'try again when that command has finished',
    exitCode: ExitCode.locked,
  });
}

/** The database file this process opened last: named when a write to it fails later on. */
let databaseInUse: string | null = null;

export function noteDatabase(file: string): void {
  databaseInUse = file;
}

/**
 * A file or disk condition that is not a bug: a full disk, a read-only file, a file that is not
 * SQLite, a path that is a folder. SQLite rolls back the transaction a failed write was part of,
 * so what was committed before it is kept. Null for anything else.
 */
export function storageProblem(err: unknown, database = databaseInUse ?? 'the database'): MailerError | null {
  const e = err as { code?: unknown; path?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const where = typeof e?.path === 'string' ? e.path : database;
  const kept = 'the change it was making was rolled back; nothing recorded before it was lost';
  const fail = (message: string, hint: string) => new MailerError(message, { exitCode: ExitCode.badInput, hint });
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return fail(`the disk is full: no space left to write ${where}; ${kept}`, 'free space on that disk, then run the same command again (an interrupted mailing resumes with mailer send --resume <mailing> or mailer run)');
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'EFBIG' || code === 'EIO') {
    return fail(`cannot write ${where}: disk I/O error (a full disk, a file size limit or a failing disk); ${kept}`, 'free space or check the disk, then run the same command again');
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS') {
    return fail(`${where} is read-only: mailer cannot record anything in it`, 'check the permissions of the file and its folder (SQLite writes -wal and -shm files beside it), or point --db / MAILER_DB at a writable path');
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return fail(`permission denied: ${where}`, 'check the permissions of the file and its folder');
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return fail(`cannot open database ${where}`, 'check that the path is a file in a folder you may write, or point --db / MAILER_DB at another path');
  }
  if (code === 'SQLITE_NOTADB') return notMailerDatabase(where, 'it is not an SQLite file');
  if (code.startsWith('SQLITE_CORRUPT')) {
    return fail(`database ${where} is damaged (${String(e?.message ?? code)})`, 'restore it from a backup, or point --db / MAILER_DB at another path to start a new one');
  }
  if (code === 'EISDIR') return fail(`${where} is a folder, not a file`, 'give the path of a file');
  return null;
}

export function notMailerDatabase(file: string, why: string): MailerError {
  return new MailerError(`${file} is not a mailer database: ${why}`, {
    exitCode: ExitCode.badInput,
    hint: 'mailer leaves it as it is; point --db / MAILER_DB at another path (a new file is created)',
  });
}
