import type { Command } from 'commander';
import { withContext } from './context.js';
import { examples } from './help.js';

export function registerApiKey(program: Command): void {
  const apiKey = program.command('api-key').description('keys for `mailer serve --api` (only their hash is stored)')
    .addHelpText('after', examples(['mailer api-key create shop', 'mailer api-key revoke shop']));
  apiKey
    .command('create')
    .argument('<name>', 'who uses the key: the shop, the registration page')
    .description('make a key and print it once: it cannot be shown again')
    .addHelpText('after', examples(['mailer api-key create shop', 'mailer api-key create shop --json']))
    .action((name: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { createApiKey } = await import('../send/api.js');
      const key = createApiKey(ctx.store, name, ctx.now());
      if (ctx.out.json) {
        ctx.out.jsonResult({ name, key });
        return;
      }
      ctx.out.line(key);
      ctx.out.note(`key "${name}" made; it is shown only now. Send it as "Authorization: Bearer <key>" to mailer serve --api`);
    }));
  apiKey
    .command('list')
    .description('the keys by name (never the keys themselves)')
    .addHelpText('after', examples(['mailer api-key list']))
    .action((_opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { formatTime, isoTime } = await import('../ui/output.js');
      const keys = ctx.store.apiKeys.list();
      if (ctx.out.json) {
        ctx.out.jsonResult(keys.map((k) => ({ name: k.name, createdAt: isoTime(k.createdAt) })));
        return;
      }
      if (keys.length === 0) ctx.out.line('no API keys; make one with `mailer api-key create <name>`');
      for (const k of keys) ctx.out.line(`${k.name}  since ${formatTime(k.createdAt)}`);
    }));
  apiKey
    .command('revoke')
    .argument('<name>', 'the key name (from api-key list)')
    .description('the key stops working at once')
    .addHelpText('after', examples(['mailer api-key revoke shop']))
    .action((name: string, _opts: unknown, command: Command) => withContext(command, {}, async (ctx) => {
      const { revokeApiKey } = await import('../send/api.js');
      revokeApiKey(ctx.store, name);
      if (ctx.out.json) ctx.out.jsonResult({ name, revoked: true });
      else ctx.out.line(`key "${name}" revoked`);
    }));
}
