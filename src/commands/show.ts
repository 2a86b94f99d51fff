import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to show's action. */
interface ShowFlags {
  raw?: boolean;
}

export function registerShow(program: Command): void {
  program
    .command('show')
    .description('one mail: the message as it left, then its history')
    .addHelpText('after', examples(['mailer show 4711', 'mailer show 4711 --raw > mail.eml']))
    .argument('<send-id>', 'the send id (from mailer log)')
    .option('--raw', 'print the exact RFC 822 message (save with > mail.eml)')
    .action((id: string, opts: ShowFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const { parseId } = await import('../config/filters.js');
      const { sendDetail, storedMessage } = await import('../triage/inspect.js');
      const { sendRecord } = await import('../ui/send-record.js');
      const { formatTime, isoTime } = await import('../ui/output.js');
      const { out, store } = ctx;
      const sendId = parseId(id, 'send id');
      if (opts.raw) {
        const stored = await storedMessage(store, sendId);
        if (stored.ok) {
          out.write(stored.raw);
          return;
        }
        // Never a message that was not the one sent: the changed file is named instead.
        for (const c of stored.changed) out.warn(`send ${sendId}: the attachment ${c.name} (${c.path}) cannot be put back: ${c.why}; the exact message cannot be rebuilt`);
        const { ExitCode } = await import('../errors.js');
        return ExitCode.someFailed;
      }
      const d = await sendDetail(store, sendId);
      const s = d.send;
      if (out.json) {
        out.jsonResult({
          ...sendRecord(s),
          token: s.token,
          retargetOf: s.retargetOf,
          maybeDuplicate: s.maybeDuplicate,
          retargetedTo: s.retargetedTo,
          ...(s.data ? { key: s.key ?? null, data: JSON.parse(s.data) } : {}),
          headers: Object.fromEntries(d.headers),
          text: d.text,
          contentRemovedAt: isoTime(d.contentRemovedAt),
          memberErased: d.erased ? { at: isoTime(d.erased.at), reason: d.erased.reason } : null,
          attachments: d.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
          bounces: d.bounces.map((b) => ({ at: isoTime(b.at), action: b.action, status: b.statusCode, diagnostic: b.diagnostic, category: b.category, permanent: b.permanent, matchedBy: b.matchedBy, source: b.source })),
          events: d.events.map((e) => ({ kind: e.kind, at: isoTime(e.at), times: e.times, lastAt: isoTime(e.lastAt) })),
          attempts: d.attempts.map((a) => ({
            at: isoTime(a.at), email: a.email, server: a.server, outcome: a.outcome, responseCode: a.responseCode,
            enhancedCode: a.enhancedCode, response: a.response, category: a.category, permanent: a.permanent, explanation: a.explanation,
          })),
        });
        return;
      }
      out.line(out.bold(`send ${s.id}`) + ` · mailing ${s.mailingId} · type ${s.type} · ${s.status}${s.test ? ' (test send)' : ''}${s.category ? ` · ${s.category}` : ''}`);
      if (d.erased) out.line(`member erased on ${formatTime(d.erased.at).slice(0, 10)} (${d.erased.reason}) · attempts ${s.attempts}`);
      else out.line(`member ${s.memberKey}${s.memberName ? ` (${s.memberName})` : ''} · to ${s.email ?? '(no address)'} · attempts ${s.attempts}`);
      if (s.maybeDuplicate) {
        // Marked when a try's outcome is unknown: a run killed with it in hand, or a connection
        // that broke after the whole message was sent. Said before and after it is sent again.
        const why = 'a try may have reached the server (a run was killed with it in hand, or the connection broke after the whole message was sent)';
        const again = s.status === 'queued' || s.status === 'deferred' ? '; sent again, it may arrive twice' : '';
        out.line(s.status === 'sent' || s.status === 'bounced'
          ? `⚠ this mail may have gone out twice: ${why}, and it was sent again`
          : `⚠ outcome unknown: ${why}, so it may have arrived${again}`);
      }
      if (s.data) out.line(`system mail${s.key ? ` · key ${s.key}` : ''} · data ${s.data}`);
      if (s.retargetOf) out.line(`re-target of send ${s.retargetOf} (mailer show ${s.retargetOf})`);
      if (s.retargetedTo) out.line(`re-targeted: sent again as send ${s.retargetedTo} (mailer show ${s.retargetedTo}); this mail's link is revoked`);
      out.line();
      if (d.raw) {
        out.line(out.bold('— the message as it left —'));
        for (const [name, value] of d.headers) {
          if (!/^(content-|mime-version)/i.test(name)) out.line(`${name}: ${value}`);
        }
        out.line();
        out.line((d.text ?? '').replace(/\s+$/, ''));
        for (const a of d.attachments) out.line(`[attachment ${a.name}, ${a.size} bytes, SHA-256 ${a.sha256}]`);
        if (d.htmlBytes !== null) out.line(`\n[HTML alternative, ${d.htmlBytes} bytes — mailer show ${s.id} --raw > mail.eml opens it in a mail program]`);
      } else if (d.contentRemovedAt !== null) {
        out.line(`no message stored: its content was removed on ${formatTime(d.contentRemovedAt)} (retention; mailer prune)`);
      } else if (d.erased) {
        out.line(`no message stored: the member was erased on ${formatTime(d.erased.at)}`);
      } else {
        out.line(`no message stored: ${s.status === 'skipped' ? `skipped — ${s.reason}` : s.status === 'queued' ? 'not sent yet' : s.reason ?? s.status}`);
      }
      out.line();
      out.line(out.bold('— history —'));
      out.line(`${formatTime(s.createdAt)}  queued`);
      for (const a of d.attempts) {
        out.line(`${formatTime(a.at)}  ${a.outcome.padEnd(11)} ${a.response ?? ''}${a.server ? `  (via ${a.server})` : ''}`);
        if (a.explanation && a.outcome !== 'sent') out.line(`${' '.repeat(21)}${a.category}${a.permanent ? ', permanent' : a.permanent === false ? ', temporary' : ''}: ${a.explanation}`);
      }
      if (s.status === 'skipped') out.line(`${formatTime(s.updatedAt)}  skipped     ${s.reason ?? ''}`);
      for (const b of d.bounces) {
        out.line(`${formatTime(b.at)}  bounce      ${b.action}${b.statusCode ? ` ${b.statusCode}` : ''}: ${b.diagnostic ?? ''} (${b.permanent ? 'permanent' : 'temporary'}; matched by ${b.matchedBy}; ${b.source})`);
      }
      for (const e of d.events) {
        const again = e.times > 1 ? ` (${e.times} times, last ${formatTime(e.lastAt)})` : '';
        out.line(`${formatTime(e.at)}  ${e.kind === 'open' ? 'opened' : 'unsubscribed'}${again}`);
      }
    }));
}
