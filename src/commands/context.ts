import type { Command } from 'commander';
import type { Settings, SettingsFlags } from '../config/settings.js';
import type { Store } from '../store/store.js';
import { Output } from '../ui/output.js';
import { systemClock } from '../config/clock.js';

/** What every command gets: settings resolved, an output, and the store opened on demand. */
export interface Context {
  out: Output;
  settings: Settings;
  store: Store;
  now: () => number;
  close(): void;
}

export async function openContext(command: Command, flags: SettingsFlags = {}): Promise<Context> {
  const global = command.optsWithGlobals() as { json?: boolean; quiet?: boolean; db?: string; config?: string };
  const out = new Output({ json: !!global.json, quiet: !!global.quiet });
  const { resolveSettings } = await import('../config/settings.js');
  const settings = resolveSettings({ ...flags, db: global.db, config: global.config });
  let store: Store | null = null;
  const { Store: StoreClass } = await import('../store/store.js');
  return {
    out,
    settings,
    get store() {
      store ??= StoreClass.open(settings.db);
      return store;
    },
    now: systemClock(),
    close() {
      store?.close();
    },
  };
}

/** Collects a repeatable flag's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
