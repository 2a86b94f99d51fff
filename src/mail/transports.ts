import type { Transport } from '../domain/ports.js';
import type { Settings } from '../config/settings.js';
import { ExitCode, MailerError } from '../errors.js';
import type { AccessTokens } from './oauth2.js';

/** One token source per process and settings: SMTP and the bounce mailbox share its tokens. */
let shared: { settings: Settings; tokens: AccessTokens } | null = null;

export async function tokensFor(settings: Settings): Promise<AccessTokens> {
  if (shared?.settings === settings) return shared.tokens;
  const { AccessTokens } = await import('./oauth2.js');
  shared = { settings, tokens: new AccessTokens(settings.oauth2!) };
  return shared.tokens;
}

/**
 * The token step before any login: a revoked refresh token or an endpoint out of reach stops the
 * run at once (exit 3) with the step named, before a mailing is taken up.
 */
export async function readyTokens(settings: Settings): Promise<AccessTokens> {
  const tokens = await tokensFor(settings);
  const { TokenError } = await import('./oauth2.js');
  try {
    await tokens.token();
  } catch (err) {
    if (err instanceof TokenError) throw new MailerError(`OAuth2 token step failed: ${err.message}; nothing was sent, unsent mails stay queued`, { exitCode: ExitCode.serverUnusable, hint: err.hint });
    throw err;
  }
  return tokens;
}

/** One SMTP transport per configured server, else the outbox folder (the embedded default). */
export async function openTransports(settings: Settings, concurrency: number): Promise<Transport[]> {
  if (settings.smtp.length === 0) {
    const { OutboxTransport } = await import('./outbox.js');
    return [new OutboxTransport(settings.outbox)];
  }
  const { SmtpTransport } = await import('./smtp.js');
  const oauth2 = settings.oauth2 ? await readyTokens(settings) : undefined;
  // Each server gets the full connection count: when one is left out the others carry the load.
  const transports = settings.smtp.map((url) => new SmtpTransport({ url, password: settings.smtpPassword, maxConnections: concurrency, requireTls: settings.requireTls, oauth2 }));
  try {
    for (const t of transports) await t.checkTls();
  } catch (err) {
    await Promise.all(transports.map((t) => t.close()));
    throw err;
  }
  return transports;
}
