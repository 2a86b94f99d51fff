import type { Command } from 'commander';
import { ExitCode, badInput } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to import's action. */
interface ImportFlags {
  key?: string;
  emailColumn?: string;
  nameColumn?: string;
  delimiter?: string;
  encoding?: string;
  includeForgotten?: boolean;
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('import or update members from a CSV file (upsert by member id)')
    .addHelpText('after', examples(['mailer import members.csv', "mailer import export.csv --key Mitgliedsnummer --email-column E-Mail --delimiter ';'"]))
    .argument('<file>', 'CSV file: delimiter , ; or tab, UTF-8, Windows-1252 or UTF-16 (with BOM), detected')
    .option('--key <column>', 'column with the member id (default: "id" if present, else the e-mail)')
    .option('--email-column <column>', 'column with the e-mail address (default: email, e-mail or mail)')
    .option('--name-column <column>', 'column with the name (default: name)')
    .option('--delimiter <char>', 'field delimiter: any one character, e.g. "|", or "tab" (default: detected among , ; tab)')
    .option('--encoding <name>', 'utf-8, windows-1252, utf-16le or utf-16be (default: detected)')
    .option('--include-forgotten', 'import members erased by `mailer forget` again (else their rows are rejected as forgotten)')
    .action((file: string, opts: ImportFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { importMembers } = await import('../members/import.js');
      const { delimiterProblem, parseDelimiter, parseEncoding } = await import('../members/csv-dialect.js');
      const delimiter = opts.delimiter === undefined ? undefined : parseDelimiter(opts.delimiter);
      if (delimiter === null) {
        throw badInput(`--delimiter ${JSON.stringify(opts.delimiter)} ${delimiterProblem(opts.delimiter!)}`, 'give one character, e.g. --delimiter "|", or --delimiter tab');
      }
      const encoding = opts.encoding === undefined ? undefined : parseEncoding(opts.encoding);
      if (encoding === null) throw badInput(`--encoding "${opts.encoding}" is not known`, 'use utf-8, windows-1252, utf-16le or utf-16be');
      const r = await importMembers(ctx.store, file, {
        key: opts.key, emailColumn: opts.emailColumn, nameColumn: opts.nameColumn, delimiter, encoding, includeForgotten: !!opts.includeForgotten, now: ctx.now(),
      });
      const { out } = ctx;
      if (out.json) {
        out.jsonResult({
          read: r.read, inserted: r.inserted, updated: r.updated, unchanged: r.unchanged,
          withoutEmail: r.withoutEmail, invalidEmail: r.invalidEmail, rejected: r.rejected,
          warned: r.warned, warnings: r.warnings,
        });
      } else {
        out.note(`${file}: ${r.encoding}, delimiter ${r.delimiter === '\t' ? 'tab' : `"${r.delimiter}"`}`);
        out.line(`read ${r.read}: ${r.inserted} new, ${r.updated} updated, ${r.unchanged} unchanged, ${r.rejected.length} rejected`);
        if (r.withoutEmail || r.invalidEmail) {
          out.line(`flagged (imported, but sends skip them): ${r.withoutEmail} without address, ${r.invalidEmail} with an invalid address`);
          for (const f of r.flagged.slice(0, 20)) out.line(`  ${file}:${f.line}  member ${f.member}: ${f.reason}`);
          if (r.withoutEmail + r.invalidEmail > 20) out.line(`  … and ${r.withoutEmail + r.invalidEmail - 20} more`);
        }
        if (r.warned) {
          out.line(`imported with a warning: ${r.warned}`);
          for (const w of r.warnings.slice(0, 20)) out.line(`  ${file}:${w.line}  ${w.reason}`);
          if (r.warned > 20) out.line(`  … and ${r.warned - 20} more`);
        }
        for (const rej of r.rejected) out.line(`rejected ${file}:${rej.line}: ${rej.reason}`);
        if (r.rejected.some((x) => x.reason === 'forgotten')) {
          out.line('rows rejected as forgotten: these members were erased with `mailer forget` (at their request); they are not imported again unless you give --include-forgotten');
        }
        if (r.rejected.some((x) => x.reason !== 'forgotten')) out.line('fix these lines and import the file again: the other rows are in, a second import only adds what changed');
      }
      if (r.rejected.length) return ExitCode.someFailed;
    }));
}
