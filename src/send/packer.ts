import { Worker } from 'node:worker_threads';

/**
 * A batch goes over as one buffer of its messages end to end, moved to the other thread, not
 * copied, and comes back so. (A Buffer of a few hundred bytes is a view of node's shared 8 KB
 * pool, and posting it copies the whole pool: 16 KB each way for a 445-byte message.)
 */
export type PackRequest =
  | { kind: 'dictionary'; mailing: number; bytes: Uint8Array | null }
  | { kind: 'pack'; batch: number; mailings: number[]; lengths: number[]; bytes: Uint8Array };
export interface PackReply { batch: number; lengths: number[]; bytes: Uint8Array }

/** The messages of a batch end to end in one buffer of their own, and their lengths. */
export function concatenated(parts: Uint8Array[]): { lengths: number[]; bytes: Uint8Array<ArrayBuffer> } {
  const lengths = parts.map((p) => p.length);
  const bytes = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { lengths, bytes };
}

/** The messages of a batch back as Buffers, each a view of the one buffer. */
export function split({ lengths, bytes }: { lengths: number[]; bytes: Uint8Array }): Buffer[] {
  let at = bytes.byteOffset;
  return lengths.map((n) => {
    const b = Buffer.from(bytes.buffer, at, n);
    at += n;
    return b;
  });
}

/**
 * Compresses the messages of a send run in a thread of its own (pack-worker.ts), so that the
 * main thread, which renders, composes, hands over and records every mail, does not pay for it:
 * deflating a message there cost the run about a fifth of its rate. The messages of one turn of
 * the event loop go over together. A message comes back as its row's bytes (packMessage's: as
 * sent where the compressed form did not read back), or null when the thread failed: the store
 * then compresses it itself.
 */
export class Packer {
  private worker: Worker | null = null;
  private broken = false;
  private batch = 0;
  private readonly waiting = new Map<number, ((packed: Buffer | null) => void)[]>();
  private pending: { mailing: number; raw: Uint8Array; resolve: (packed: Buffer | null) => void }[] = [];
  private readonly dictionaries: { mailing: number; bytes: Uint8Array | null }[] = [];

  /** The dictionary a mailing's messages are compressed against (null: none), before its first message. */
  dictionary(mailing: number, bytes: Buffer | null): void {
    if (this.worker) this.worker.postMessage({ kind: 'dictionary', mailing, bytes } satisfies PackRequest);
    else this.dictionaries.push({ mailing, bytes });
  }

  pack(mailing: number, raw: Buffer): Promise<Buffer | null> {
    if (this.broken) return Promise.resolve(null);
    return new Promise((resolve) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ mailing, raw, resolve });
    });
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = null;
    this.fail();
  }

  private flush(): void {
    const jobs = this.pending;
    this.pending = [];
    if (jobs.length === 0) return;
    const worker = this.start();
    if (!worker) {
      for (const j of jobs) j.resolve(null);
      return;
    }
    const batch = ++this.batch;
    this.waiting.set(batch, jobs.map((j) => j.resolve));
    const { lengths, bytes } = concatenated(jobs.map((j) => j.raw));
    worker.postMessage({ kind: 'pack', batch, mailings: jobs.map((j) => j.mailing), lengths, bytes } satisfies PackRequest, [bytes.buffer]);
  }

  /** Started at the first message: a run that sends nothing starts no thread. */
  private start(): Worker | null {
    if (this.worker || this.broken) return this.worker;
    try {
      const worker = new Worker(new URL('./pack-worker.js', import.meta.url));
      worker.unref();
      worker.on('message', (reply: PackReply) => {
        const resolvers = this.waiting.get(reply.batch) ?? [];
        this.waiting.delete(reply.batch);
        const packed = split(reply);
        resolvers.forEach((resolve, i) => resolve(packed[i] ?? null));
      });
      worker.on('error', () => this.fail());
      worker.on('exit', () => this.fail());
      for (const d of this.dictionaries.splice(0)) worker.postMessage({ kind: 'dictionary', ...d } satisfies PackRequest);
      this.worker = worker;
      return worker;
    } catch {
      this.fail();
      return null;
    }
  }

  /** Whatever was in the thread's hands is compressed by the store instead. */
  private fail(): void {
    this.broken = true;
    for (const resolvers of this.waiting.values()) for (const resolve of resolvers) resolve(null);
    this.waiting.clear();
  }
}
