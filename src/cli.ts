import { Command, CommanderError, Help, Option } from 'commander';
import { examples } from './commands/help.js';
import { ExitCode, MailerError, databaseBusy, isDatabaseBusy, storageProblem } from './errors.js';
import { printable } from './ui/printable.js';
import { stopRequest, whenAskedToStopAgain } from './send/session.js';
import { Finished } from './commands/context.js';
import { registerImport } from './commands/import.js';
import { registerSend } from './commands/send.js';
import { registerSegment } from './commands/segment.js';
import { registerLog } from './commands/log.js';
import { registerShow } from './commands/show.js';
import { registerRetry } from './commands/retry.js';
import { registerRetarget } from './commands/retarget.js';
import { registerToken } from './commands/token.js';
import { registerWhy } from './commands/why.js';
import { registerErrors } from './commands/errors.js';
import { registerSuppress } from './commands/suppress.js';
import { registerRun } from './commands/run.js';
import { registerMailings } from './commands/mailings.js';
import { registerCheck } from './commands/check.js';
import { registerBounces } from './commands/bounces.js';
import { registerServe } from './commands/serve.js';
import { registerStats } from './commands/stats.js';
import { registerPlan } from './commands/plan.js';
import { registerApiKey } from './commands/api-key.js';
import { registerAuth } from './commands/auth.js';
import { registerForget } from './commands/forget.js';
import { registerExport } from './commands/export.js';
import { registerPrune } from './commands/prune.js';
import { registerMigrate } from './commands/migrate.js';

/** Builds the program. Command files only declare flags; their actions load the heavy parts. */
export function buildProgram(): Command {
  const program = new Command('mailer')
    .description('Batch mailings and delivery triage: import members, send, and find out what happened to each mail.')
    .version('0.1.0')
    .showSuggestionAfterError()
    .exitOverride()
    .addOption(new Option('--json', 'machine-readable output on stdout'))
    .addOption(new Option('-q, --quiet', 'no progress and no notes'))
    .addOption(new Option('--db <path>', 'SQLite database (default: $MAILER_DB, else ./mailer.db)'))
    .addOption(new Option('--config <path>', 'settings file (default: ./mailer.json if present)'))
    .addHelpText('after', examples(['mailer import members.csv', 'mailer send invitation.txt --test --test-to me@example.org']))
    // Before the commands are added: they inherit it.
    .configureHelp({ optionDescription: describeOption });
  for (const register of [
    registerImport, registerSend, registerSegment, registerLog, registerShow,
    registerWhy, registerRetry, registerRetarget, registerToken, registerErrors, registerSuppress,
    registerRun, registerPlan, registerMailings, registerCheck, registerBounces, registerServe, registerStats, registerApiKey, registerAuth,
    registerForget, registerExport, registerPrune, registerMigrate,
  ]) {
    register(program);
  }
  const override = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  return program;
}

/** A repeatable flag starts as an empty list, which is no default worth showing as "(default: [])". */
function describeOption(this: Help, option: Option): string {
  if (Array.isArray(option.defaultValue) && option.defaultValue.length === 0) return option.description;
  return Help.prototype.optionDescription.call(this, option);
}

export async function main(argv: string[]): Promise<void> {
  // `mailer log | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  // A second Ctrl-C or SIGTERM while a send run stops: the user means now. The mails in hand
  // are left for the next run to mark as possibly sent twice.
  whenAskedToStopAgain(() => process.exit(130));
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
  // A send run stopped by a signal (send/session.ts): the shell's convention (128 + SIGINT),
  // whatever else the run said.
  if (stopRequest.signal.aborted && process.exitCode !== 0) process.exitCode = 130;
}

/**
 * The one funnel: a command that has reported its outcome itself only sets the code, a
 * MailerError is explained, commander has spoken already, anything else is a bug.
 */
function exitCodeFor(err: unknown): number {
  if (err instanceof Finished) return err.exitCode;
  if (err instanceof MailerError) {
    // A message may quote stored data or a server's reply: never raw control characters.
    process.stderr.write(`error: ${printable(err.message, true)}\n`);
    if (err.hint) process.stderr.write(`  → ${printable(err.hint, true)}\n`);
    return err.exitCode;
  }
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : ExitCode.badInput;
  }
  // A read or write that waited out the busy timeout, wherever it was (a first import holds
  // the database alone while it runs): not a bug, and the user can simply try again.
  if (isDatabaseBusy(err)) return exitCodeFor(databaseBusy());
  // A full disk or a read-only file, wherever it struck: the user's to fix, not a bug.
  const storage = storageProblem(err);
  if (storage) return exitCodeFor(storage);
  const e = err as Error;
  process.stderr.write(`internal error: ${printable(e?.message ?? String(err), true)}\n`);
  if (process.env.MAILER_DEBUG) process.stderr.write(`${e?.stack}\n`);
  else process.stderr.write('  → this is a bug in mailer; run again with MAILER_DEBUG=1 for details and report it\n');
  return ExitCode.someFailed;
}
