import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { addTransportOptions, transportFlags, type TransportFlags } from './filter-options.js';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to retarget's action. */
interface RetargetFlags extends TransportFlags {
  to: string;
  reason: string;
}

export function registerRetarget(program: Command): void {
  addTransportOptions(
    program
      .command('retarget')
      .description("send a mail again to the member's new address; the old address and its links are revoked")
    .addHelpText('after', examples(['mailer retarget 4711 --to anna.neu@example.org', "mailer retarget 4711 --to anna.neu@example.org --reason 'typo in the old address'"]))
      .argument('<send-id>', 'the send that did not arrive (from mailer log or mailer why)')
      .requiredOption('--to <address>', 'the new address')
      .option('--reason <text>', 'why the old address is revoked', 'retargeted'),
  ).action((id: string, opts: RetargetFlags, command: Command) => withContext(command, transportFlags(opts), async (ctx) => {
    const { parseId } = await import('../config/filters.js');
    const { retarget } = await import('../send/retarget.js');
    const { openTransports } = await import('../mail/transports.js');
    const { out, store } = ctx;
    const r = await retarget(store, (n) => openTransports(ctx.settings, n), {
      sendId: parseId(id, 'send id'), to: opts.to, reason: opts.reason, settings: ctx.settings, now: ctx.now,
    });
    const s = r.replacement;
    const { changedAttachmentNotes } = await import('../send/queue.js');
    for (const note of changedAttachmentNotes(r.outcome)) out.warn(note);
    if (out.json) {
      out.jsonResult({ original: r.original.id, send: s.id, member: s.memberKey, email: s.email, status: s.status, category: s.category, reason: s.reason, revoked: r.revoked });
    } else {
      out.line(`send ${r.original.id} re-targeted: member ${s.memberKey} now has ${s.email}${r.revoked.length ? `; revoked ${r.revoked.join(', ')} and its links` : ''}`);
      out.line(`send ${s.id} to ${s.email}: ${s.status}${s.reason ? ` — ${s.reason}` : ''} (via ${r.transport})`);
    }
    if (r.outcome.stopped) {
      const { serverStopped } = await import('../send/queue.js');
      throw serverStopped(r.outcome.stopped, `The address was changed; send ${s.id} stays queued.`, `mailer send --resume ${s.mailingId}`);
    }
    if (s.status !== 'sent') return ExitCode.someFailed;
  }));
}
