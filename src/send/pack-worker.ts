import { parentPort } from 'node:worker_threads';
import { packMessage } from '../store/message-codec.js';
import { concatenated, split, type PackReply, type PackRequest } from './packer.js';

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
  const packed = split(m).map((raw, i) => packMessage(raw, dictionaries.get(m.mailings[i]) ?? null));
  const { lengths, bytes } = concatenated(packed);
  port.postMessage({ batch: m.batch, lengths, bytes } satisfies PackReply, [bytes.buffer]);
});
