import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to forget's action. */
interface ForgetFlags {
  reason?: string;
  dryRun?: boolean;
}

export function registerForget(program: Command): void {
  program
    .command('forget')
    .description("erase a member's personal data (GDPR art. 17): fields, name, addresses, messages, tokens, opens, unsubscribes; counts stay")
    .addHelpText('after', examples([
      "mailer forget 1042 --reason 'asked by letter of 2026-11-30'",
      "mailer forget anna@example.org --reason 'asked by phone' --dry-run",
    ]))
    .argument('<member>', 'member id or e-mail address (also an old one)')
    .requiredOption('--reason <text>', 'why (kept, and shown by why <member id>): do not write personal data into it')
    .option('--dry-run', 'print what would be erased, change nothing')
    .action((who: string, opts: ForgetFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { forgetMember } = await import('../members/forget.js');
      const { out, store } = ctx;
      const r = forgetMember(store, who, { reason: opts.reason ?? '', now: ctx.now(), dryRun: !!opts.dryRun });
      if (out.json) {
        out.jsonResult({ member: r.member, addresses: r.addresses, sends: r.sends, messages: r.messages, tokens: r.tokens, events: r.events, files: r.files, dryRun: r.dryRun });
      } else {
        const verb = r.dryRun ? 'would erase' : 'erased';
        out.line(`member ${r.member}: ${verb} fields and name, ${r.addresses} address${r.addresses === 1 ? '' : 'es'}, the data of ${r.sends} send${r.sends === 1 ? '' : 's'}, ${r.messages} stored message${r.messages === 1 ? '' : 's'}, ${r.tokens} token${r.tokens === 1 ? '' : 's'}, ${r.events} open/unsubscribe record${r.events === 1 ? '' : 's'}, ${r.files} outbox file${r.files === 1 ? '' : 's'}`);
        out.line(r.dryRun
          ? 'kept: each send\'s status, times, category and mailing; a keyed hash of each address, so suppressions hold and a later import of it is flagged'
          : 'kept: each send\'s status, times, category and mailing; a keyed hash of each address (suppressions hold; import flags it, --include-forgotten imports it again)');
        if (r.dryRun) out.line('dry run: nothing was changed');
      }
      for (const a of r.shared) out.warn(`${a} is the address of another member too: it stays, with its suppressions`);
      if (r.vacuumMs !== null) out.note(`this database was made before erased data was overwritten: it was vacuumed once (${(r.vacuumMs / 1000).toFixed(1)} s)`);
      if (!r.walEmptied) out.warn('another mailer process (serve?) was reading the database: its write-ahead log may still hold erased values until the next write; run `mailer forget` again later or stop that process');
    }));
}
