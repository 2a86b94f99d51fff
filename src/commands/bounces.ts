import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';

export function registerBounces(program: Command): void {
  program
    .command('bounces')
    .description('bounce mails that came back after the server accepted a mail')
    .addHelpText('after', examples(['mailer bounces import ~/Maildir/.Bounces', 'mailer bounces import returned.mbox --json']))
    .command('import')
    .description('read bounces (.eml, mbox, Maildir), match them to their sends; a permanent one suppresses the address')
    .addHelpText('after', examples(['mailer bounces import bounce.eml', 'mailer bounces import ~/Maildir/.Bounces']))
    .argument('<file|folder>', 'a bounce mail, an mbox file, or a folder (Maildir or .eml files)')
    .action((target: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { importBounces } = await import('../triage/bounces.js');
      const { catalogOf } = await import('../send/delivery-store.js');
      const { out, store } = ctx;
      const r = await importBounces(store, catalogOf(store), target, ctx.now());
      if (out.json) {
        out.jsonResult(r);
      } else {
        out.line(`read ${r.read}: ${r.matched} matched, ${r.unmatched.length} unmatched, ${r.permanent} permanent, ${r.temporary} temporary${r.alreadyImported ? `, ${r.alreadyImported} already imported` : ''}`);
        for (const s of r.suppressed) out.line(`suppressed ${s}`);
        for (const u of r.unmatched) out.line(`unmatched ${u.source}${u.recipient ? ` (${u.recipient})` : ''}: ${u.reason}`);
      }
      if (r.unmatched.length) return ExitCode.someFailed;
    }));
}
