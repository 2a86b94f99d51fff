import type { Classification } from '../domain/catalog.js';
import type { Transport } from '../domain/ports.js';

/**
 * The servers of a run. Sends are spread over the usable ones in turn; a server that fails
 * outright (refused, DNS, TLS, login) or gives `maxErrors` connection errors in a row is left
 * out for the rest of the run, and the run stops only when none is left.
 */
export class TransportPool {
  private readonly entries: { transport: Transport; errors: number; last: Classification | null; down: Classification | null }[];
  private cursor = 0;

  constructor(transports: Transport[], private readonly maxErrors: number) {
    this.entries = transports.map((transport) => ({ transport, errors: 0, last: null, down: null }));
  }

  /** The next usable server not yet tried for this send. */
  pick(tried: ReadonlySet<Transport>): Transport | undefined {
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[(this.cursor + i) % this.entries.length];
      if (!entry.down && !tried.has(entry.transport)) {
        this.cursor = (this.cursor + i + 1) % this.entries.length;
        return entry.transport;
      }
    }
    return undefined;
  }

  succeeded(transport: Transport): void {
    const entry = this.entry(transport);
    entry.errors = 0;
    entry.last = null;
  }

  /** Returns true if the server is now left out. */
  failed(transport: Transport, c: Classification): boolean {
    const entry = this.entry(transport);
    entry.errors++;
    entry.last = c;
    if (c.fatal || entry.errors >= this.maxErrors) entry.down ??= c;
    return entry.down !== null;
  }

  /**
   * At the end of a run that gave sends back: a server whose last word was a connection failure
   * is left out too, though it had fewer than `maxErrors` of them. A small mailing's few sends
   * (each tried once, on every server) end there as well as a large one's five in a row.
   * Returns true if none is usable then.
   */
  leaveOutFailing(): boolean {
    for (const e of this.entries) if (e.last) e.down ??= e.last;
    return !this.usable;
  }

  get usable(): boolean {
    return this.entries.some((e) => !e.down);
  }

  get downs(): { server: string; category: string; message: string }[] {
    return this.entries.filter((e) => e.down).map((e) => ({ server: e.transport.description, category: e.down!.category, message: e.down!.text }));
  }

  private entry(transport: Transport) {
    return this.entries.find((e) => e.transport === transport)!;
  }
}
