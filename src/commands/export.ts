import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to export's action. */
interface ExportFlags {
  out?: string;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('everything stored about one member as one JSON document (GDPR art. 15): fields, addresses, sends, messages, bounces, opens')
    .addHelpText('after', examples(['mailer export 1042 --out anna.json', 'mailer export anna@example.org']))
    .argument('<member>', 'member id or e-mail address (also an old one)')
    .option('--out <file.json>', 'write it to this file, readable by its owner only (default: stdout)')
    .action((who: string, opts: ExportFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { exportMember } = await import('../members/export.js');
      const { writePrivate } = await import('../ui/private-file.js');
      const doc = exportMember(ctx.store, who, ctx.now());
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (opts.out === undefined) {
        ctx.out.write(text);
        return;
      }
      writePrivate(opts.out, text);
      const sends = (doc.sends as unknown[]).length;
      if (ctx.out.json) ctx.out.jsonResult({ member: (doc.member as { id: string }).id, file: opts.out, sends });
      else ctx.out.line(`member ${(doc.member as { id: string }).id}: written to ${opts.out} (${sends} send${sends === 1 ? '' : 's'}), readable by you only`);
    }));
}
