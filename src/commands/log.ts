import type { Command } from 'commander';
import { addSendFilterOptions, type SendFilterFlags } from './filter-options.js';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to log's action. */
interface LogFlags extends SendFilterFlags {
  limit: string;
  csv?: boolean;
}

export function registerLog(program: Command): void {
  addSendFilterOptions(
    program
      .command('log')
      .description('the send log, newest first: who got what, when, and what happened')
      .addHelpText('after', examples(['mailer log --member 1042', 'mailer log --mailing 7 --status failed --status deferred --csv > problems.csv'])),
  )
    .option('--limit <n>', 'at most n sends, 0 for all', '50')
    .option('--csv', 'CSV instead of a table')
    .action((opts: LogFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { parseSendFilter } = await import('../config/filters.js');
      const { sendRecord, SEND_RECORD_FIELDS } = await import('../ui/send-record.js');
      const { out, store } = ctx;
      const filter = parseSendFilter(opts, ctx.now(), (m) => store.members.findMembers(m).map((x) => x.id));
      if (opts.csv) {
        const { csvLine } = await import('../ui/csv.js');
        out.write(csvLine(SEND_RECORD_FIELDS));
        const rows = filter.limit ? store.log.logSends(filter) : store.log.iterateSends(filter);
        for (const s of rows) out.write(csvLine(SEND_RECORD_FIELDS.map((f) => sendRecord(s)[f])));
        return;
      }
      const sends = store.log.logSends(filter);
      if (out.json) {
        // A system mail's key, where it has one: the fields of every other send stay as they are.
        out.jsonResult(sends.map((s) => (s.key ? { ...sendRecord(s), key: s.key } : sendRecord(s))));
        return;
      }
      if (sends.length === 0) {
        out.line('no sends match');
        return;
      }
      const { renderTable, } = await import('../ui/table.js');
      const { formatTime } = await import('../ui/output.js');
      const keyed = sends.some((s) => s.key);
      out.line(renderTable(['id', 'time', 'member', 'address', 'type', 'mailing', 'status', 'reason', ...(keyed ? ['key'] : [])],
        sends.map((s) => [s.id, formatTime(s.sentAt ?? s.createdAt), s.memberKey, s.email, s.type, s.mailingId,
          s.test ? `${s.status} (test)` : s.status, s.category ? `${s.category}: ${shorten(s.reason ?? '', 60)}` : '',
          ...(keyed ? [s.key ?? ''] : [])]),
        { tty: out.isTTY }));
      if (filter.limit && sends.length === filter.limit) out.note(`showing the newest ${filter.limit}; --limit 0 shows all`);
    }));
}

function shorten(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
