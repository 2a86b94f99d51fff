import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';
import type { Output } from '../ui/output.js';
import type { FetchResult } from '../triage/fetch.js';

/** What a fetch found, one plain line each: `bounces fetch` and `mailer run` print it alike. */
export function printFetch(out: Output, r: FetchResult, folder: string): void {
  const would = r.dryRun ? 'dry run, nothing changed: ' : '';
  out.line(`${would}${r.mailbox}: read ${r.read} new message${r.read === 1 ? '' : 's'}, ${r.bounces} bounce${r.bounces === 1 ? '' : 's'} (${r.matched} matched, ${r.unmatched.length} unmatched${r.alreadyImported ? `, ${r.alreadyImported} imported before` : ''}), ${r.dryRun ? `would move ${r.bounces}` : `moved ${r.moved}`} to ${folder}, ${r.left} left in place`);
  for (const s of r.suppressed) out.line(`${r.dryRun ? 'would suppress' : 'suppressed'} ${s}`);
  for (const u of r.unmatched) out.line(`unmatched ${u.source}${u.recipient ? ` (${u.recipient})` : ''}: ${u.reason}`);
  for (const u of r.unparsable) out.line(`unparsable UID ${u.uid}${u.subject ? ` "${u.subject}"` : ''}: ${u.reason}; left in place, look at it in a mail program`);
}

export function registerBounces(program: Command): void {
  const bounces = program
    .command('bounces')
    .description('bounce mails that came back after the server accepted a mail')
    .addHelpText('after', examples(['mailer bounces import ~/Maildir/.Bounces', 'mailer bounces fetch --dry-run']));
  bounces
    .command('fetch')
    .description(`read the bounce mailbox (bounceMailbox, IMAP): import the bounces not seen yet, move them to ${'mailer-processed'}; every other message stays as it was`)
    .addHelpText('after', examples(['mailer bounces fetch', 'mailer bounces fetch --dry-run --json']))
    .option('--dry-run', 'read and match, change nothing: neither the mailbox nor the database')
    .action((opts: { dryRun?: boolean }, command: Command) => withContext(command, {}, async (ctx) => {
      const { fetchBounces, PROCESSED_FOLDER } = await import('../triage/fetch.js');
      const { catalogOf } = await import('../send/delivery-store.js');
      const { out, store } = ctx;
      const { withMailboxLock } = await import('../send/lock.js');
      const fetch = () => fetchBounces(store, catalogOf(store), ctx.settings, { dryRun: !!opts.dryRun, now: ctx.now });
      // A dry run moves nothing: it needs no lock.
      const r = opts.dryRun ? await fetch() : await withMailboxLock(store, 'bounces fetch', ctx.now(), fetch);
      if (out.json) {
        out.jsonResult({ read: r.read, bounces: r.bounces, matched: r.matched, unmatched: r.unmatched, moved: r.moved, left: r.left, unparsable: r.unparsable, suppressed: r.suppressed, dryRun: r.dryRun });
      } else {
        printFetch(ctx.out, r, PROCESSED_FOLDER);
      }
      if (r.unmatched.length || r.unparsable.length) return ExitCode.someFailed;
    }));
  bounces
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
