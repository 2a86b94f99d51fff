import type { Command } from 'commander';
import { badInput } from '../errors.js';
import { withContext, type Context } from './context.js';
import { examples } from './help.js';

/** What commander hands to serve's action. */
interface ServeFlags {
  port: string;
  host: string;
  api?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('HTTP endpoint for the open pixel and one-click unsubscribe (set publicUrl to its public address)')
    .addHelpText('after', examples(['mailer serve --host 0.0.0.0 --port 8080', 'mailer serve --api']))
    .option('--port <p>', 'port to listen on', '8025')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--api', 'also take system mails: POST /api/send, GET /api/send/<id> (keys: mailer api-key create)')
    .action((opts: ServeFlags, command: Command) => withContext(command, {}, async (ctx) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw badInput(`--port "${opts.port}" is not a port number`);
      const { trackingServer, SERVE_LIMITS } = await import('../triage/tracking.js');
      const { logRequests, gracefulStop } = await import('../http/access-log.js');
      const log = (line: string) => ctx.out.warn(line);
      const api = opts.api ? await systemMailApi(ctx, log) : undefined;
      const pages = { language: ctx.settings.language, organisation: ctx.settings.organisation };
      const server = trackingServer(ctx.store, ctx.now, log, SERVE_LIMITS, pages, api?.handle);
      logRequests(server, (line) => ctx.out.logLine(line), ctx.now);
      const stop = gracefulStop(server, SERVE_LIMITS.requestTimeoutMs + 5_000);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => reject(badInput(`cannot listen on ${opts.host}:${port}: ${err.code ?? err.message}`, 'choose another --port')));
        server.listen(port, opts.host, () => resolve());
      });
      const address = server.address() as { port: number };
      ctx.out.note(`listening on http://${opts.host}:${address.port} (routes /o/<value>.gif, /u/<value>, /health${api ? ', POST /api/send, GET /api/send/<id>' : ''})`);
      if (!ctx.settings.publicUrl) ctx.out.warn('publicUrl is not set: mails carry no pixel and no unsubscribe link until it is');
      // Serves until Ctrl-C or SIGTERM (a service manager's stop): then no new connection is
      // taken, the requests in hand are answered, and the store closes; exit 0.
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      ctx.out.note(`${signal}: stopping, answering the requests in hand`);
      await stop();
      await api?.close();
    }));
}

/** The /api/ routes of `serve --api`, sending through the configured transports. */
async function systemMailApi(ctx: Context, log: (line: string) => void) {
  const { apiHandler } = await import('../send/api.js');
  const { openTransports } = await import('../mail/transports.js');
  if (ctx.store.apiKeys.list().length === 0) ctx.out.warn('no API key yet: every request gets 401 until one is made with `mailer api-key create <name>`');
  const api = apiHandler({ store: ctx.store, settings: ctx.settings, now: ctx.now, openTransports: (n) => openTransports(ctx.settings, n), log });
  return { handle: api.handle.bind(api), close: () => api.close() };
}
