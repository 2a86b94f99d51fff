import type { Command } from 'commander';
import { ExitCode, MailerError } from '../errors.js';
import { collect, withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to check's action. */
interface CheckFlags {
  to: string[];
  smtp: string[];
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('test the mail server step by step: name lookup, connect, TLS, greeting, OAuth2 token, login; then the bounce mailbox; optionally send test mails')
    .addHelpText('after', examples(['mailer check --smtp smtp://verein@mail.example.org:587', 'mailer check --to me@example.org']))
    .option('--to <address>', 'also send a test mail here (repeatable)', collect, [])
    .option('--smtp <url>', 'the server to test (repeatable; default: the configured ones)', collect, [])
    .action((opts: CheckFlags, command: Command) => withContext(command, { smtp: opts.smtp }, async (ctx) => {
      const { checkServer } = await import('../mail/check.js');
      const { tokensFor } = await import('../mail/transports.js');
      const { out, settings } = ctx;
      if (settings.smtp.length === 0) {
        throw new MailerError('no SMTP server is configured: mails go to the outbox folder, there is nothing to test',
          { exitCode: ExitCode.serverUnusable, hint: 'give --smtp smtp://user@host:587, or set "smtp" in mailer.json' });
      }
      const from = settings.from ?? `mailer check <${opts.to[0] ?? 'check@mailer.invalid'}>`;
      const oauth2 = settings.oauth2 ? await tokensFor(settings) : undefined;
      const results = [];
      for (const url of settings.smtp) {
        const r = await checkServer(url, { password: settings.smtpPassword, to: opts.to, from, envelopeFrom: settings.bounceAddress, oauth2 });
        results.push(r);
        if (out.json) continue;
        out.line(out.bold(r.server));
        for (const s of r.steps) {
          out.line(`  ${s.ok ? 'ok    ' : 'FAILED'}  ${s.step}: ${s.detail}`);
          if (s.hint) out.line(`          ${s.ok ? 'note' : 'likely cause'}: ${s.hint}`);
        }
        out.line(r.ok ? '  → the server can be used' : '  → the server cannot be used as configured');
      }
      if (settings.bounceMailbox) {
        const { checkMailbox } = await import('../mail/imap.js');
        const r = await checkMailbox(settings.bounceMailbox, { password: settings.imapPassword, oauth2 });
        results.push(r);
        if (!out.json) {
          out.line(out.bold(`${r.server} (bounceMailbox)`));
          for (const s of r.steps) {
            out.line(`  ${s.ok ? 'ok    ' : 'FAILED'}  ${s.step}: ${s.detail}`);
            if (s.hint) out.line(`          likely cause: ${s.hint}`);
          }
          out.line(r.ok ? '  → the bounce mailbox can be read' : '  → the bounce mailbox cannot be read as configured');
        }
      }
      if (out.json) out.jsonResult(results);
      if (results.some((r) => !r.ok)) return ExitCode.serverUnusable;
    }));
}
