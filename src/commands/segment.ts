import type { Command } from 'commander';
import { badInput } from '../errors.js';
import { collect, openContext } from './context.js';
import { examples } from './help.js';

export function registerSegment(program: Command): void {
  const segment = program.command('segment').description('saved member selections for send --segment')
    .addHelpText('after', examples(['mailer segment save nord --where region=Nord', 'mailer segment list']));
  segment
    .command('save')
    .description('save a selection under a name')
    .addHelpText('after', examples(['mailer segment save nord --where region=Nord', 'mailer segment save jugend --where age<27 --where status=aktiv']))
    .argument('<name>', 'segment name')
    .option('--where <cond>', 'member condition <field><op><value> (repeatable, all must hold)', collect, [])
    .action(async (name: string, opts: { where: string[] }, command: Command) => {
      const ctx = await openContext(command);
      try {
        const { parseCondition } = await import('../config/filters.js');
        const { checkConditionFields } = await import('../send/send.js');
        if (opts.where.length === 0) throw badInput('a segment needs at least one --where condition');
        const conditions = opts.where.map(parseCondition);
        checkConditionFields(ctx.store, conditions);
        ctx.store.members.saveSegment(name, conditions, ctx.now());
        if (ctx.out.json) ctx.out.jsonResult({ segment: name, conditions });
        else ctx.out.line(`segment "${name}" saved: ${opts.where.join(' AND ')}`);
      } finally {
        ctx.close();
      }
    });
  segment
    .command('list')
    .description('list saved segments')
    .addHelpText('after', examples(['mailer segment list', 'mailer segment list --json']))
    .action(async (_opts: unknown, command: Command) => {
      const ctx = await openContext(command);
      try {
        const segments = ctx.store.members.segments();
        if (ctx.out.json) {
          ctx.out.jsonResult(segments.map((s) => ({ name: s.name, conditions: s.conditions })));
          return;
        }
        if (segments.length === 0) ctx.out.line('no segments yet: mailer segment save <name> --where <field>=<value>');
        for (const s of segments) ctx.out.line(`${s.name}: ${s.conditions.map((c) => `${c.field}${c.op}${c.value}`).join(' AND ')}`);
      } finally {
        ctx.close();
      }
    });
}
