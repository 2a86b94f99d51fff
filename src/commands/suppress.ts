import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to suppress add's action. */
interface SuppressAddFlags {
  reason: string;
}

export function registerSuppress(program: Command): void {
  const suppress = program.command('suppress').description('addresses no mail goes to (unsubscribed, bounced, asked not to)')
    .addHelpText('after', examples(["mailer suppress add anna@example.org --reason 'asked by phone'", 'mailer suppress list']));
  suppress
    .command('add')
    .argument('<address>', 'the e-mail address')
    .option('--reason <text>', 'why', 'added by hand')
    .description('suppress an address: every send and retry leaves it out')
    .addHelpText('after', examples(["mailer suppress add anna@example.org --reason 'asked by phone'"]))
    .action((address: string, opts: SuppressAddFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { addressToSuppress } = await import('../members/suppressions.js');
      const email = addressToSuppress(address);
      ctx.store.triage.suppress(email, opts.reason, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult({ email, reason: opts.reason, suppressed: true });
      else ctx.out.line(`suppressed ${email}: ${opts.reason}`);
    }));
  suppress
    .command('remove')
    .argument('<address>', 'the e-mail address')
    .description('allow mail to an address again')
    .addHelpText('after', examples(['mailer suppress remove anna@example.org']))
    .action((address: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { unsuppressAddress } = await import('../members/suppressions.js');
      const email = unsuppressAddress(ctx.store, address);
      if (ctx.out.json) ctx.out.jsonResult({ email, suppressed: false });
      else ctx.out.line(`${email} is no longer suppressed`);
    }));
  suppress
    .command('list')
    .description('the suppressed addresses, newest first')
    .addHelpText('after', examples(['mailer suppress list', 'mailer suppress list --json']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { formatTime, isoTime } = await import('../ui/output.js');
      const list = ctx.store.triage.suppressions();
      if (ctx.out.json) {
        ctx.out.jsonResult(list.map((s) => ({ email: s.email, reason: s.reason, since: isoTime(s.createdAt) })));
        return;
      }
      if (list.length === 0) ctx.out.line('no suppressed addresses');
      for (const s of list) ctx.out.line(`${s.email}  since ${formatTime(s.createdAt)}  ${s.reason}`);
    }));
}
