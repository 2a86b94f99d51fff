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
