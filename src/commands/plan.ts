import path from 'node:path';
import type { Command } from 'commander';
import { collect, withContext } from './context.js';
import { examples } from './help.js';
import type { Store } from '../store/store.js';
import type { Plan } from '../store/plans.js';
import type { PlanInput } from '../send/plan.js';

/** What commander hands to plan add's action: the plan but for its name, and the template as a flag. */
type PlanAddFlags = Omit<PlanInput, 'name' | 'templatePath'> & { template: string };

export function registerPlan(program: Command): void {
  const plan = program.command('plan').description('recurring mailings (the monthly reminder and its follow-up), made and sent by `mailer run`')
    .addHelpText('after', examples([
      'mailer plan add erinnerung --template erinnerung.txt --where "erinnerungsmonat={{month}}" --every month --on 1 --at 08:00 --follow-up 14d',
      'mailer plan list',
    ]));
  plan
    .command('add')
    .description('add a plan; everything is checked first, and it is first due at its next occurrence')
    .addHelpText('after', examples([
      'mailer plan add erinnerung --template erinnerung.txt --where "erinnerungsmonat={{month}}" --every month --on 1 --at 08:00 --follow-up 14d',
      'mailer plan add wochenpost --template post.txt --segment aktive --every week --on monday --at 07:30',
    ]))
    .argument('<name>', 'plan name')
    .requiredOption('--template <file>', 'the message file; {{month}}, {{month_number}} and {{year}} are those of the due date')
    .option('--where <cond>', 'member condition <field><op><value> (repeatable, all must hold); {{month}} too', collect, [])
    .option('--segment <name>', 'a saved segment')
    .requiredOption('--every <unit>', 'month, week or day')
    .option('--on <day>', 'day of the month (1-31; 31 is the last day of a shorter month) or weekday (monday … sunday)')
    .requiredOption('--at <HH:MM>', 'local time of day')
    .option('--follow-up <days>', 'this many days after the mailing, again to its members who did not open it (e.g. 14d)')
    .option('--follow-up-template <file>', 'the follow-up\'s message file (default: the plan\'s template)')
    .action((name: string, opts: PlanAddFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { addPlan, nextDue } = await import('../send/plan.js');
      const { localLabel } = await import('../config/plan-schedule.js');
      // Absolute: cron runs `mailer run` from wherever it likes.
      const p = addPlan(ctx.store, ctx.settings, {
        name, templatePath: path.resolve(opts.template), where: opts.where, segment: opts.segment, every: opts.every, on: opts.on, at: opts.at,
        followUp: opts.followUp, followUpTemplate: opts.followUpTemplate === undefined ? undefined : path.resolve(opts.followUpTemplate),
      }, ctx.now());
      const next = nextDue(ctx.store, p, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult(await planJson(ctx.store, p, ctx.now()));
      else ctx.out.line(`plan "${p.name}" added: first due ${next === null ? '—' : localLabel(next)}; \`mailer run\` (from cron) makes and sends it`);
    }));
  plan
    .command('list')
    .description('the plans, with the next due time of each and the last mailing each made')
    .addHelpText('after', examples(['mailer plan list', 'mailer plan list --json']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { nextDue } = await import('../send/plan.js');
      const { clockLabel: clock, localLabel, weekdayName } = await import('../config/plan-schedule.js');
      const plans = ctx.store.plans.list();
      if (ctx.out.json) {
        ctx.out.jsonResult(await Promise.all(plans.map((p) => planJson(ctx.store, p, ctx.now()))));
        return;
      }
      if (plans.length === 0) {
        ctx.out.line('no plans yet: mailer plan add <name> --template <file> --every month --on 1 --at 08:00');
        return;
      }
      const { renderTable } = await import('../ui/table.js');
      ctx.out.line(renderTable(['name', 'every', 'selection', 'template', 'follow-up', 'next', 'last mailing'], plans.map((p) => {
        const next = nextDue(ctx.store, p, ctx.now());
        const when = p.every === 'month' ? `month on the ${p.on}. at ${clock(p.at)}` : p.every === 'week' ? `${weekdayName(p.on!)} at ${clock(p.at)}` : `day at ${clock(p.at)}`;
        const selection = [...p.where, ...(p.segment ? [`segment ${p.segment}`] : [])].join(' AND ') || 'all members';
        return [p.name, when, selection, path.basename(p.templatePath), p.followUpDays === null ? '' : `${p.followUpDays}d`,
          p.paused ? 'paused' : next === null ? '' : next <= ctx.now() ? `${localLabel(next)} (due now)` : localLabel(next), p.lastMailing ?? ''];
      }), { tty: ctx.out.isTTY }));
    }));
  plan
    .command('remove')
    .description('remove a plan: it makes no more mailings (the ones it made stay)')
    .addHelpText('after', examples(['mailer plan remove erinnerung']))
    .argument('<name>', 'plan name')
    .action((name: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { planByName } = await import('../send/plan.js');
      const p = planByName(ctx.store, name);
      ctx.store.plans.remove(p.id, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult({ removed: p.name });
      else ctx.out.line(`plan "${p.name}" removed; its mailings stay in \`mailer mailings\``);
    }));
  for (const [verb, paused] of [['pause', true], ['resume', false]] as const) {
    plan
      .command(verb)
      .description(paused ? 'pause a plan: runs make nothing for it' : 'resume a plan: it is due again at its next occurrence (periods of the pause are not sent)')
      .addHelpText('after', examples([`mailer plan ${verb} erinnerung`]))
      .argument('<name>', 'plan name')
      .action((name: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
        const { pausePlan, nextDue } = await import('../send/plan.js');
        const { localLabel } = await import('../config/plan-schedule.js');
        const p = pausePlan(ctx.store, name, paused, ctx.now());
        const next = nextDue(ctx.store, p, ctx.now());
        if (ctx.out.json) ctx.out.jsonResult(await planJson(ctx.store, p, ctx.now()));
        else ctx.out.line(paused ? `plan "${p.name}" paused` : `plan "${p.name}" resumed: next due ${next === null ? '—' : localLabel(next)}`);
      }));
  }
}

async function planJson(store: Store, p: Plan, now: number) {
  const { nextDue } = await import('../send/plan.js');
  const { isoTime } = await import('../ui/output.js');
  const { clockLabel, weekdayName } = await import('../config/plan-schedule.js');
  return {
    name: p.name, template: p.templatePath, every: p.every, next: isoTime(nextDue(store, p, now)), paused: p.paused,
    lastMailing: p.lastMailing, followUpDays: p.followUpDays,
    on: p.every === 'week' ? weekdayName(p.on!) : p.on, at: clockLabel(p.at),
    where: p.where, segment: p.segment, followUpTemplate: p.followUpTemplate,
  };
}
