import type { Command } from 'commander';
import { badInput } from '../errors.js';
import { withContext } from './context.js';
import { examples } from './help.js';

/** What commander hands to serve's action. */
interface ServeFlags {
  port: string;
  host: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('HTTP endpoint for the open pixel and one-click unsubscribe (set publicUrl to its public address)')
    .addHelpText('after', examples(['mailer serve', 'mailer serve --host 0.0.0.0 --port 8080']))
    .option('--port <p>', 'port to listen on', '8025')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .action((opts: ServeFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw badInput(`--port "${opts.port}" is not a port number`);
      const { trackingServer, SERVE_LIMITS } = await import('../triage/tracking.js');
      const pages = { language: ctx.settings.language, organisation: ctx.settings.organisation };
      const server = trackingServer(ctx.store, ctx.now, (line) => ctx.out.warn(line), SERVE_LIMITS, pages);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => reject(badInput(`cannot listen on ${opts.host}:${port}: ${err.code ?? err.message}`, 'choose another --port')));
        server.listen(port, opts.host, () => resolve());
      });
      const address = server.address() as { port: number };
      ctx.out.note(`listening on http://${opts.host}:${address.port} (routes /o/<value>.gif, /u/<value>, /health)`);
      if (!ctx.settings.publicUrl) ctx.out.warn('publicUrl is not set: mails carry no pixel and no unsubscribe link until it is');
      // Serves until Ctrl-C or SIGTERM; the requests in hand are answered before the store closes.
      await new Promise<void>((resolve) => {
        const stop = () => server.close(() => resolve());
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }));
}
