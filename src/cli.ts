import { Command, CommanderError, Option } from 'commander';
import { ExitCode, MailerError, databaseBusy, isDatabaseBusy } from './errors.js';
import { stopRequest } from './core/session.js';
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
    .addOption(new Option('--config <path>', 'settings file (default: ./mailer.json if present)'));
  for (const register of [
    registerImport, registerSend, registerSegment, registerLog, registerShow,
    registerWhy, registerRetry, registerRetarget, registerToken, registerErrors, registerSuppress,
    registerRun, registerMailings, registerCheck, registerBounces, registerServe, registerStats,
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

export async function main(argv: string[]): Promise<void> {
  // `mailer log | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
  // A send run stopped by a signal (core/session.ts): the shell's convention (128 + SIGINT),
  // whatever else the run said.
  if (stopRequest.signal.aborted && process.exitCode !== 0) process.exitCode = 130;
}

/** The one funnel: a MailerError is explained, commander has spoken already, anything else is a bug. */
function exitCodeFor(err: unknown): number {
  if (err instanceof MailerError) {
    process.stderr.write(`error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`  → ${err.hint}\n`);
    return err.exitCode;
  }
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : ExitCode.badInput;
  }
  // A read or write that waited out the busy timeout, wherever it was (a first import holds
  // the database alone while it runs): not a bug, and the user can simply try again.
  if (isDatabaseBusy(err)) return exitCodeFor(databaseBusy());
  const e = err as Error;
  process.stderr.write(`internal error: ${e?.message ?? String(err)}\n`);
  if (process.env.MAILER_DEBUG) process.stderr.write(`${e?.stack}\n`);
  else process.stderr.write('  → this is a bug in mailer; run again with MAILER_DEBUG=1 for details and report it\n');
  return ExitCode.someFailed;
}
