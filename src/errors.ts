/** Exit codes of the product contract (SPEC "Exit codes"). */
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
