import fs from 'node:fs/promises';
import path from 'node:path';
import type { Envelope, OutgoingMessage, Transport } from '../domain/ports.js';
import { DeliveryError } from '../domain/ports.js';

/** The embedded default: each message becomes `<send id>.eml` in a folder, exactly as it would leave. */
export class OutboxTransport implements Transport {
  readonly kind = 'outbox' as const;
  readonly description: string;
  private ready: Promise<unknown> | null = null;

  constructor(private readonly dir: string) {
    this.description = `outbox ${dir}`;
  }

  async deliver(_envelope: Envelope, message: Buffer | OutgoingMessage, label: string): Promise<string> {
    // A message with files reads them anew for each write
    const raw = () => (Buffer.isBuffer(message) ? message : message.chunks());
    // Each message holds an address and personal links: readable by their owner only. A folder
    // that exists already is the user's and keeps its mode; the files in it are still 0600.
    this.ready ??= fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      // A file in the folder's place: no write can succeed, so it stops the run like a folder
      // that cannot be made, instead of deferring every mail.
      if (err.code === 'EEXIST') throw Object.assign(new Error(`${this.dir} is a file, not a folder`), { code: 'ENOTDIR' });
      throw err;
    });
    const file = path.join(this.dir, `${label}.eml`);
    try {
      await this.ready;
      await fs.writeFile(file, raw(), { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
        // A file left by another database keeps its own mode when written over: made anew.
        await fs.rm(file);
        await fs.writeFile(file, raw(), { mode: 0o600, flag: 'wx' });
      });
    } catch (err) {
      throw new DeliveryError({ code: (err as NodeJS.ErrnoException).code, message: `cannot write ${file}: ${(err as Error).message}` });
    }
    return `250 written to ${file}`;
  }

  async close(): Promise<void> {}
}
