import { parentPort } from 'node:worker_threads';
import { packMessage } from '../store/message-codec.js';
import type { PackReply, PackRequest } from './packer.js';

/**
 * The send run's second thread: compresses each message for its row as the store's own
 * packMessage would (read back, or left as sent), while the main thread goes on with the next mails.
 */
const port = parentPort!;
const dictionaries = new Map<number, Buffer | null>();
port.on('message', (m: PackRequest) => {
  if (m.kind === 'dictionary') {
    dictionaries.set(m.mailing, m.bytes ? Buffer.from(m.bytes) : null);
    return;
  }
  const out = m.jobs.map(({ mailing, raw }) => {
    const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    return packMessage(bytes, dictionaries.get(mailing) ?? null);
  });
  port.postMessage({ batch: m.batch, out } satisfies PackReply);
});
