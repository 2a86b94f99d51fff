import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to migrate's action. */
interface MigrateFlags {
  vacuum?: boolean;
}

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('bring an older database to the current storage: compress the messages it stored as sent, in short batches, while sends go on')
    .addHelpText('after', examples(['mailer migrate', 'mailer migrate --vacuum']))
    .option('--vacuum', 'then rebuild the file once, so that space freed by deleted sends is reused and can be given back (locks the database while it copies the file)')
    .action((opts: MigrateFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { migrateStorage } = await import('../send/storage.js');
      const { out, store } = ctx;
      const r = await migrateStorage(store, {
        vacuum: !!opts.vacuum,
        // A note every 100 batches (about ten seconds): a million rows take a few minutes.
        onProgress: (done, left, batch) => { if (batch % 100 === 0) out.note(`compressed ${done} stored messages, ${left} to go`); },
      });
      if (out.json) {
        out.jsonResult({ compressed: r.compressed, bytesBefore: r.bytesBefore, bytesAfter: r.bytesAfter, batches: r.batches, longestBatchMs: Math.round(r.longestBatchMs), vacuumed: r.vacuumed, autoVacuum: store.autoVacuum() });
        return;
      }
      out.line(r.compressed
        ? `compressed ${r.compressed} stored messages in ${r.batches} batches (longest ${Math.round(r.longestBatchMs)} ms): ${r.bytesBefore} bytes → ${r.bytesAfter}`
        : 'every stored message is compressed already');
      if (r.vacuumed) out.line('rebuilt the file: freed space is reused and can be given back from now on (auto_vacuum=INCREMENTAL)');
      else if (store.autoVacuum() !== 'incremental') out.line('the file was made before auto_vacuum=INCREMENTAL: `mailer migrate --vacuum` rebuilds it once (it locks the database while it copies the file)');
    }));
}
