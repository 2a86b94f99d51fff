import type { Command } from 'commander';
import { collect, withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to segment save's action. */
interface SegmentSaveFlags {
  where: string[];
}

export function registerSegment(program: Command): void {
  const segment = program.command('segment').description('saved member selections for send --segment')
    .addHelpText('after', examples(['mailer segment save nord --where region=Nord', 'mailer segment list']));
  segment
    .command('save')
    .description('save a selection under a name')
    .addHelpText('after', examples(['mailer segment save nord --where region=Nord', 'mailer segment save jugend --where age<27 --where status=aktiv']))
    .argument('<name>', 'segment name')
    .option('--where <cond>', 'member condition <field><op><value> (repeatable, all must hold)', collect, [])
    .action((name: string, opts: SegmentSaveFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { saveSegment, segmentConditions } = await import('../send/segment.js');
      const conditions = segmentConditions(opts.where);
      saveSegment(ctx.store, name, conditions, ctx.now());
      if (ctx.out.json) ctx.out.jsonResult({ segment: name, conditions });
      else ctx.out.line(`segment "${name}" saved: ${opts.where.join(' AND ')}`);
    }));
  segment
    .command('list')
    .description('list saved segments')
    .addHelpText('after', examples(['mailer segment list', 'mailer segment list --json']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const segments = ctx.store.members.segments();
      if (ctx.out.json) {
        ctx.out.jsonResult(segments.map((s) => ({ name: s.name, conditions: s.conditions })));
        return;
      }
      if (segments.length === 0) ctx.out.line('no segments yet: mailer segment save <name> --where <field>=<value>');
      for (const s of segments) ctx.out.line(`${s.name}: ${s.conditions.map((c) => `${c.field}${c.op}${c.value}`).join(' AND ')}`);
    }));
}
