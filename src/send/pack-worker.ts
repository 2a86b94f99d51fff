import { parentPort } from 'node:worker_threads';
import { packMessage, unpackMessage } from '../store/message-codec.js';
import type { PackReply, PackRequest } from './packer.js';

/**
 * The send run's second thread: compresses each message for its row as the store's own
 * packMessage would, while the main thread goes on with the next mails. Every result is read
 * back before it is handed over: a row holds the only copy of a message.
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
    const dictionary = dictionaries.get(mailing) ?? null;
    const packed = packMessage(bytes, dictionary);
    return unpackMessage(packed, () => dictionary).equals(bytes) ? packed : null;
  });
  port.postMessage({ batch: m.batch, out } satisfies PackReply);
});
