import type { Command } from 'commander';
import { badInput } from '../errors.js';
import { openContext } from './context.js';
import { examples } from './help.js';

export function registerSuppress(program: Command): void {
  const suppress = program.command('suppress').description('addresses no mail goes to (unsubscribed, bounced, asked not to)')
    .addHelpText('after', examples(["mailer suppress add anna@example.org --reason 'asked by phone'", 'mailer suppress list']));
  suppress
    .command('add')
    .argument('<address>', 'the e-mail address')
    .option('--reason <text>', 'why', 'added by hand')
    .description('suppress an address: every send and retry leaves it out')
    .addHelpText('after', examples(["mailer suppress add anna@example.org --reason 'asked by phone'"]))
    .action(async (address: string, opts: { reason: string }, command: Command) => {
      const ctx = await openContext(command);
      try {
        const { addressProblem, normalizeAddress } = await import('../domain/address.js');
        const email = normalizeAddress(address);
        const problem = addressProblem(email);
        if (problem) throw badInput(`"${address}" is not a valid e-mail address: ${problem}`);
        ctx.store.triage.suppress(email, opts.reason, ctx.now());
        if (ctx.out.json) ctx.out.jsonResult({ email, reason: opts.reason, suppressed: true });
        else ctx.out.line(`suppressed ${email}: ${opts.reason}`);
      } finally {
        ctx.close();
      }
    });
  suppress
    .command('remove')
    .argument('<address>', 'the e-mail address')
    .description('allow mail to an address again')
    .addHelpText('after', examples(['mailer suppress remove anna@example.org']))
    .action(async (address: string, _opts: unknown, command: Command) => {
      const ctx = await openContext(command);
      try {
        const { normalizeAddress } = await import('../domain/address.js');
        const email = normalizeAddress(address);
        if (!ctx.store.triage.unsuppress(email)) throw badInput(`${email} is not suppressed`, 'mailer suppress list shows the suppressed addresses');
        if (ctx.out.json) ctx.out.jsonResult({ email, suppressed: false });
        else ctx.out.line(`${email} is no longer suppressed`);
      } finally {
        ctx.close();
      }
    });
  suppress
    .command('list')
    .description('the suppressed addresses, newest first')
    .addHelpText('after', examples(['mailer suppress list', 'mailer suppress list --json']))
    .action(async (_opts: unknown, command: Command) => {
      const ctx = await openContext(command);
      try {
        const { formatTime, isoTime } = await import('../ui/output.js');
        const list = ctx.store.triage.suppressions();
        if (ctx.out.json) {
          ctx.out.jsonResult(list.map((s) => ({ email: s.email, reason: s.reason, since: isoTime(s.createdAt) })));
          return;
        }
        if (list.length === 0) ctx.out.line('no suppressed addresses');
        for (const s of list) ctx.out.line(`${s.email}  since ${formatTime(s.createdAt)}  ${s.reason}`);
      } finally {
        ctx.close();
      }
    });
}
