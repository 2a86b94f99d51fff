import type { Transport } from '../domain/ports.js';
import type { Settings } from '../config/settings.js';

/** One SMTP transport per configured server, else the outbox folder (the embedded default). */
export async function openTransports(settings: Settings, concurrency: number): Promise<Transport[]> {
  if (settings.smtp.length === 0) {
    const { OutboxTransport } = await import('./outbox.js');
    return [new OutboxTransport(settings.outbox)];
  }
  const { SmtpTransport } = await import('./smtp.js');
  // Each server gets the full connection count: when one is left out the others carry the load.
  const transports = settings.smtp.map((url) => new SmtpTransport({ url, password: settings.smtpPassword, maxConnections: concurrency, requireTls: settings.requireTls }));
  try {
    for (const t of transports) await t.checkTls();
  } catch (err) {
    await Promise.all(transports.map((t) => t.close()));
    throw err;
  }
  return transports;
}
