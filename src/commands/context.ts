import type { Command } from 'commander';
import type { Settings, SettingsFlags } from '../config/settings.js';
import type { Store } from '../store/store.js';
import type { ExitCode } from '../errors.js';
import { Output } from '../ui/output.js';
import { systemClock } from '../config/clock.js';

/** What every command gets: settings resolved, an output, and the store opened on demand. */
export interface Context {
  out: Output;
  settings: Settings;
  store: Store;
  now: () => number;
}

/** The flags every command inherits from the program. */
interface GlobalFlags {
  json?: boolean;
  quiet?: boolean;
  db?: string;
  config?: string;
}

/**
 * What a command's work ends with: nothing when it went as asked, or the exit code of a run
 * that has already said on its own output what went wrong (some mails failed, a link is revoked).
 */
export type Outcome = void | ExitCode;

/**
 * A command that ends with a non-zero exit code but no error to print: thrown out of the
 * action, so that cli.ts, the one place that sets the exit code, sees it.
 */
export class Finished extends Error {
  constructor(readonly exitCode: ExitCode) {
    super(`finished with exit code ${exitCode}`);
    this.name = 'Finished';
  }
}

/**
 * Runs a command's work with its context, and closes the store however the work ends, so that
 * no command has to remember to.
 */
export async function withContext(command: Command, flags: SettingsFlags, work: (ctx: Context) => Promise<Outcome>): Promise<void> {
  const global = command.optsWithGlobals<GlobalFlags>();
  const out = new Output({ json: !!global.json, quiet: !!global.quiet });
  const { resolveSettings } = await import('../config/settings.js');
  const settings = resolveSettings({ ...flags, db: global.db, config: global.config });
  let store: Store | null = null;
  const { Store: StoreClass } = await import('../store/store.js');
  const ctx: Context = {
    out,
    settings,
    get store() {
      store ??= StoreClass.open(settings.db);
      return store;
    },
    now: systemClock(),
  };
  const close = () => store?.close();
  let outcome: Outcome;
  try {
    outcome = await work(ctx);
  } finally {
    close();
  }
  if (outcome) throw new Finished(outcome);
}

/** Collects a repeatable flag's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
