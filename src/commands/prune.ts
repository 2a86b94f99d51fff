import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to prune's action. */
interface PruneFlags {
  dryRun?: boolean;
}

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('remove what retention says is past its time: stored messages (retention.messages, a template\'s Retention:) and send rows (retention.log); counts stay')
    .addHelpText('after', examples(['mailer prune --dry-run', 'mailer prune --json']))
    .option('--dry-run', 'print what would be removed, change nothing')
    .action((opts: PruneFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { prune } = await import('../send/prune.js');
      const { out, store, settings } = ctx;
      // Not while mails are being handed over: a send claimed for a retry would lose its data
      // between the check and the hand-over, and be passed over by every later prune.
      const { acquireSendLock } = await import('../send/lock.js');
      const release = opts.dryRun ? () => {} : acquireSendLock(store, 'prune', ctx.now());
      let r;
      try {
        r = prune(store, settings.retention, { now: ctx.now(), dryRun: !!opts.dryRun });
      } finally {
        release();
      }
      if (out.json) {
        out.jsonResult({ messages: r.messages, sends: r.sends, mailings: r.mailings, dryRun: r.dryRun });
        return;
      }
      const none = settings.retention.messages === undefined && settings.retention.log === undefined;
      if (none && r.messages === 0) out.note('no retention is set ("retention": {"messages": "90d", "log": "2y"} in the settings, or Retention: in a template): everything is kept');
      out.line(`${r.dryRun ? 'would remove' : 'removed'}: ${r.messages} stored message${r.messages === 1 ? '' : 's'} (and system-mail data), ${r.sends} send row${r.sends === 1 ? '' : 's'} with their attempts and events, in ${r.mailings} mailing${r.mailings === 1 ? '' : 's'}; each mailing's counts are kept`);
      if (r.vacuumMs !== null) out.note(`this database was made before removed data was overwritten: it was vacuumed once (${(r.vacuumMs / 1000).toFixed(1)} s)`);
    }));
}
