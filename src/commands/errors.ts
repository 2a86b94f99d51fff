import type { Command } from 'commander';
import type { ErrorRuleInput } from '../triage/error-rules.js';
import { withContext } from './context.js';
import { examples } from './help.js';

export function registerErrors(program: Command): void {
  const errors = program.command('errors').description('the error catalog: server replies → category, permanent or temporary, explanation')
    .addHelpText('after', examples(['mailer errors list', "mailer errors add --match 5.7.1 --category policy --permanent --text 'the provider refuses our domain'"]));
  errors
    .command('list')
    .description('the rules, yours first, then the built-in ones')
    .addHelpText('after', examples(['mailer errors list', 'mailer errors list --json']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { listErrorRules } = await import('../triage/error-rules.js');
      const { renderTable } = await import('../ui/table.js');
      const rules = listErrorRules(ctx.store);
      const kind = (p: boolean | undefined) => (p === undefined ? 'by reply (5xx/4xx)' : p ? 'permanent' : 'temporary');
      if (ctx.out.json) {
        ctx.out.jsonResult(rules.map((r) => ({ match: r.match, category: r.category, permanent: r.permanent ?? null, source: r.source, text: r.explanation })));
        return;
      }
      ctx.out.line(renderTable(['match', 'category', 'kind', 'source'], rules.map((r) => [r.match, r.category, kind(r.permanent), r.source]), { tty: ctx.out.isTTY }));
    }));
  errors
    .command('add')
    .description('add a rule; it wins over the built-in ones from the next send on')
    .addHelpText('after', examples(['mailer errors add --match 451 --category greylisted --temporary', "mailer errors add --match '/quota exceeded/i' --category mailbox-full --temporary --text 'the mailbox is full'"]))
    .requiredOption('--match <code|regex>', 'a reply code (550), an enhanced code (5.1.1), an error code (ECONNRESET) or /a regex/')
    .requiredOption('--category <c>', 'one of the categories (see mailer errors list)')
    .option('--permanent', 'the mail cannot be delivered as it is')
    .option('--temporary', 'retrying later may work')
    .option('--text <explanation>', 'what it means, in plain words')
    .action((opts: ErrorRuleInput, command: Command) => withContext(command, {}, async (ctx) => {
      const { errorRuleFrom } = await import('../triage/error-rules.js');
      const rule = errorRuleFrom(opts);
      ctx.store.triage.addErrorRule(rule, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult(rule);
      else ctx.out.line(`rule added: ${opts.match} → ${opts.category}, ${opts.permanent ? 'permanent' : 'temporary'}`);
    }));
}
