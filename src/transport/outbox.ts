import fs from 'node:fs/promises';
import path from 'node:path';
import type { Envelope, Transport } from '../core/ports.js';
import { DeliveryError } from '../core/ports.js';

/** The embedded default: each message becomes `<send id>.eml` in a folder, exactly as it would leave. */
export class OutboxTransport implements Transport {
  readonly kind = 'outbox' as const;
  readonly description: string;
  private ready: Promise<unknown> | null = null;

  constructor(private readonly dir: string) {
    this.description = `outbox ${dir}`;
  }

  async deliver(_envelope: Envelope, raw: Buffer, label: string): Promise<string> {
    this.ready ??= fs.mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${label}.eml`);
    try {
      await this.ready;
      await fs.writeFile(file, raw);
    } catch (err) {
      throw new DeliveryError({ code: (err as NodeJS.ErrnoException).code, message: `cannot write ${file}: ${(err as Error).message}` });
    }
    return `250 written to ${file}`;
  }

  async close(): Promise<void> {}
}
