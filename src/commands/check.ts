import type { Command } from 'commander';
import { ExitCode, MailerError } from '../errors.js';
import { collect, withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to check's action. */
interface CheckFlags {
  to: string[];
  smtp: string[];
  /** true: --domain without a value (the From domain) */
  domain?: string | true;
  dkimSelector: string[];
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('test the mail server step by step: name lookup, connect, TLS, greeting, OAuth2 token, login; then the bounce mailbox; optionally send test mails. With --domain: the sender domain\'s DNS (MX, SPF, DMARC, DKIM, reverse DNS) against what the big mailbox providers require')
    .addHelpText('after', examples(['mailer check --smtp smtp://verein@mail.example.org:587 --to me@example.org', 'mailer check --domain verein.example --dkim-selector selector1']))
    .option('--to <address>', 'also send a test mail here (repeatable)', collect, [])
    .option('--smtp <url>', 'the server to test (repeatable; default: the configured ones)', collect, [])
    .option('--domain [domain]', 'check the sender domain\'s DNS instead of the server (default: the domain of "from"); exit 0 when the providers\' requirements are met, 1 when not, 3 when DNS cannot be reached')
    .option('--dkim-selector <selector>', 'with --domain: a DKIM selector to look at (repeatable; default: the common ones are tried)', collect, [])
    .action((opts: CheckFlags, command: Command) => withContext(command, { smtp: opts.smtp }, async (ctx) => {
      const { out, settings } = ctx;
      if (opts.domain !== undefined) {
        if (opts.to.length) throw new MailerError('--to sends test mails through the server, --domain checks DNS only', { hint: 'run them one after the other: mailer check --to <address>, then mailer check --domain' });
        const { checkSenderDomain } = await import('../triage/deliverability.js');
        const { deliverabilityWords } = await import('../domain/deliverability.js');
        const report = await checkSenderDomain(settings, { domain: opts.domain === true ? undefined : opts.domain, dkimSelectors: opts.dkimSelector });
        if (out.json) {
          out.jsonResult(report);
        } else {
          const words = deliverabilityWords();
          out.line(out.bold(words.heading(report.domain)));
          for (const f of report.findings) {
            out.line(`  ${f.ok ? 'ok    ' : 'FAILED'}  ${f.text}`);
            if (f.record !== null) out.line(`          ${f.record}`);
          }
          out.line();
          out.line(words.requirementsHeading);
          for (const r of report.requirements) out.line(`  ${(r.met ? words.met : words.notMet).padEnd(13)} ${words.requirement[r.name]}`);
        }
        if (report.requirements.some((r) => !r.met)) return ExitCode.someFailed;
        return;
      }
      if (opts.dkimSelector.length) throw new MailerError('--dkim-selector belongs to the domain check', { hint: 'add --domain: mailer check --domain --dkim-selector <selector>' });
      const { checkServer } = await import('../mail/check.js');
      const { tokensFor } = await import('../mail/transports.js');
      if (settings.smtp.length === 0) {
        throw new MailerError('no SMTP server is configured: mails go to the outbox folder, there is nothing to test',
          { exitCode: ExitCode.serverUnusable, hint: 'give --smtp smtp://user@host:587, or set "smtp" in mailer.json' });
      }
      const from = settings.from ?? `mailer check <${opts.to[0] ?? 'check@mailer.invalid'}>`;
      const oauth2 = settings.oauth2 ? await tokensFor(settings) : undefined;
      const results = [];
      for (const url of settings.smtp) {
        const r = await checkServer(url, { password: settings.smtpPassword, to: opts.to, from, envelopeFrom: settings.bounceAddress, oauth2, requireTls: settings.requireTls });
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
        const r = await checkMailbox(settings.bounceMailbox, { password: settings.imapPassword, oauth2, requireTls: settings.requireTls });
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
