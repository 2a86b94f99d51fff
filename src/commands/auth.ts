import type { Command } from 'commander';
import { ExitCode, MailerError } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';

export function registerAuth(program: Command): void {
  const auth = program
    .command('auth')
    .description('OAuth2 sign-in for XOAUTH2 (Microsoft 365, Google Workspace): the refresh token SMTP and the bounce mailbox use')
    .addHelpText('after', examples(['mailer auth login', 'mailer auth login --json']));
  auth
    .command('login')
    .description('sign in with the device code of RFC 8628 (oauth2.deviceUrl) and keep the refresh token in a file only you can read, beside the database')
    .addHelpText('after', examples(['mailer auth login', 'mailer auth login --db /srv/verein/mailer.db']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { out, settings } = ctx;
      if (!settings.oauth2) {
        throw new MailerError('no "oauth2" setting: there is nothing to sign in to', {
          hint: 'add "oauth2": {"tokenUrl", "clientId", "user", "deviceUrl", "scope"} to mailer.json (the README shows Microsoft 365 and Google)',
        });
      }
      const { deviceLogin, writeTokenFile, TokenError } = await import('../mail/oauth2.js');
      let refreshToken: string;
      try {
        refreshToken = await deviceLogin(settings.oauth2, (p) => {
          out.prompt(`To sign in as ${settings.oauth2!.user}, open ${p.verificationUri} and enter the code ${p.userCode}`);
          if (p.verificationUriComplete) out.prompt(`  (or open ${p.verificationUriComplete})`);
          out.prompt(`Waiting for the sign-in (the code is valid for ${Math.round(p.expiresInS / 60)} min) …`);
        });
      } catch (err) {
        if (err instanceof TokenError) throw new MailerError(`auth login: ${err.message}`, { exitCode: err.problem === 'unreachable' ? ExitCode.serverUnusable : ExitCode.someFailed, hint: err.hint });
        throw err;
      }
      writeTokenFile(settings.oauth2.tokenFile, refreshToken);
      if (out.json) out.jsonResult({ user: settings.oauth2.user, tokenFile: settings.oauth2.tokenFile });
      else {
        out.line(`signed in as ${settings.oauth2.user}: the refresh token is in ${settings.oauth2.tokenFile} (readable by you only)`);
        if (!settings.oauth2.refreshTokenFromFile && settings.oauth2.refreshToken) out.line('note: MAILER_OAUTH2_REFRESH_TOKEN is set and wins over the file; unset it to use the new token');
      }
    }));
}
