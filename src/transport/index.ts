import { badInput } from '../errors.js';
import type { Transport } from '../core/ports.js';
import type { Settings } from '../core/settings.js';

/** SMTP when a server is configured, else the outbox folder (the embedded default). */
export async function openTransport(settings: Settings, concurrency: number): Promise<Transport> {
  if (settings.smtp.length === 0) {
    const { OutboxTransport } = await import('./outbox.js');
    return new OutboxTransport(settings.outbox);
  }
  if (settings.smtp.length > 1) {
    throw badInput('several SMTP servers are configured, but this version of mailer sends through one', 'keep one URL in --smtp / MAILER_SMTP_URL / "smtp"');
  }
  const { SmtpTransport } = await import('./smtp.js');
  return new SmtpTransport({ url: settings.smtp[0], password: settings.smtpPassword, maxConnections: concurrency });
}
