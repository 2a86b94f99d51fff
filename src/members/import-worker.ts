import { parentPort, workerData } from 'node:worker_threads';
import { MailerError } from '../errors.js';
import { parseMemberFile, type ParseJob, type WorkerMessage } from './csv-rows.js';

/**
 * The import's second thread: parses and checks the member file and posts batches to the main
 * thread, which acknowledges each once written. Reading pauses while more than IN_FLIGHT
 * batches wait, so parsing and writing overlap, and memory stays bounded.
 */
const IN_FLIGHT = 4;
const port = parentPort!;
let unacked = 0;
let waiting: (() => void) | null = null;
port.on('message', () => {
  unacked--;
  if (waiting && unacked <= IN_FLIGHT) {
    waiting();
    waiting = null;
  }
});

const sink = {
  post(message: WorkerMessage): void {
    port.postMessage(message);
    unacked++;
  },
  drain(): Promise<void> {
    if (unacked <= IN_FLIGHT) return Promise.resolve();
    return new Promise((resolve) => {
      waiting = resolve;
    });
  },
};

parseMemberFile(workerData as ParseJob, sink).catch((err: unknown) => {
  const e = err instanceof MailerError ? err : new MailerError((err as Error).message);
  port.postMessage({ kind: 'error', message: e.message, hint: e.hint, exitCode: e.exitCode } satisfies WorkerMessage);
});
