import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('registration-link tokens')
    .addHelpText('after', examples(['mailer token verify 3q2-7Xw9LkV0aJtRZp4mQg']))
    .command('verify')
    .description('is this link token valid? exit 0 valid, 1 revoked or unknown')
    .addHelpText('after', examples(['mailer token verify 3q2-7Xw9LkV0aJtRZp4mQg', 'mailer token verify 3q2-7Xw9LkV0aJtRZp4mQg --json']))
    .argument('<token>', 'the token from the link')
    .action((token: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { verifyToken } = await import('../triage/token.js');
      const r = verifyToken(ctx.store, token);
      if (ctx.out.json) ctx.out.jsonResult(r);
      else if (r.state === 'unknown') ctx.out.line('unknown: no mail carried this token');
      else if (r.state === 'test') ctx.out.line(`test: the token of a test send (${r.send}) for member ${r.member}; not valid for registration`);
      else ctx.out.line(`${r.state}: member ${r.member}${r.name ? ` (${r.name})` : ''}, sent to ${r.email} in send ${r.send}`);
      if (r.state !== 'valid') return ExitCode.someFailed;
    }));
}
