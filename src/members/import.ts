import fs from 'node:fs';
import { randomInt } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import iconv from 'iconv-lite';
import { badInput, MailerError, type ExitCode } from '../errors.js';
import type { Store } from '../store/store.js';
import { detectDelimiter, detectEncoding, notCsv, utf16Bom, type Delimiter, type Encoding } from './csv-dialect.js';
import { mergeCounts, ROW_WIDTH, type ParseCounts, type ParseJob, type WorkerMessage } from './csv-rows.js';

export interface ImportOptions {
  key?: string;
  emailColumn?: string;
  nameColumn?: string;
  delimiter?: Delimiter;
  encoding?: Encoding;
  /** members erased by forget are imported again (else their rows are rejected as forgotten) */
  includeForgotten?: boolean;
  now: number;
}

/** What the parse found (rows read, rejected, flagged, warned), and what the store made of it. */
export interface ImportResult extends ParseCounts {
  file: string;
  encoding: Encoding;
  delimiter: Delimiter;
  inserted: number;
  updated: number;
  unchanged: number;
}

const SAMPLE_BYTES = 64 * 1024;
/**
 * The writer sends 100 rows a statement; rows of a 900 KB field would make that 90 MB, kept
 * twice (here and in SQLite). Past this many characters held back, they are written.
 */
const UNWRITTEN_CHARS = 8 << 20;

/**
 * Streams a member file into the database: upsert by key, fields merged, address history kept.
 * The whole file is one transaction, so a file that stops being readable half-way changes
 * nothing and can simply be imported again.
 */
export async function importMembers(store: Store, file: string, options: ImportOptions): Promise<ImportResult> {
  const { sample, size } = readSample(file);
  if (size === 0) throw badInput(`${file} is empty`, 'export the member list again, with a header line');
  const binary = notCsv(sample);
  if (binary) throw badInput(`${file}: ${binary}; nothing was imported`, 'open it in the program it comes from and save or export it as CSV');
  // A UTF-16 byte-order mark is taken at its word, whatever --encoding says.
  const encoding = utf16Bom(sample) ?? options.encoding ?? detectEncoding(sample, size <= SAMPLE_BYTES);
  const sampleText = encoding === 'utf-8' ? new TextDecoder('utf-8').decode(sample)
    : iconv.decode(Buffer.from(sample), encoding === 'windows-1252' ? 'win1252' : encoding === 'utf-16le' ? 'utf16le' : 'utf16be');
  const delimiter = options.delimiter ?? detectDelimiter(sampleText.replace(/^\uFEFF/, ''));

  const result: ImportResult = {
    file, encoding, delimiter, read: 0, inserted: 0, updated: 0, unchanged: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], flagged: [],
    warned: 0, warnings: [], forgotten: [],
  };
  // Only when someone was erased: then each row's key and address are hashed in the parse thread.
  const forgotten = store.erasure.anyForgotten()
    ? { secret: store.erasure.secret().toString('hex'), hashes: store.erasure.allHashes(), include: !!options.includeForgotten }
    : undefined;
  const importId = randomInt(1, 2 ** 47);
  let writer: ReturnType<Store['members']['memberWriter']> | null = null;
  let load: { membersBefore: number } | null = null;
  let accepted = 0;
  let unwritten = 0;
  // The file is parsed and checked in a worker thread while this one writes to the database:
  // the two halves take about the same time, and a 2-core machine runs them side by side.
  const worker = new Worker(new URL('./import-worker.js', import.meta.url), {
    // Bounds the parse thread's heap. With batches handed over at once and 64 KiB chunks, little
    // survives a scavenge: 1M rows took 2.3 s at 104 MB peak RSS with a young generation of
    // 8 MB, about the same time at 110 MB with 16 MB, and 2.4 s at 156 MB with 32 MB.
    resourceLimits: { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 8 },
    workerData: { file, encoding, encodingGiven: options.encoding !== undefined, delimiter, key: options.key, emailColumn: options.emailColumn, nameColumn: options.nameColumn, forgotten } satisfies ParseJob,
  });
  try {
    // Inside the try: should the database be busy, the parse thread must still be ended, or
    // it keeps the process alive.
    store.members.beginImport();
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        try {
          if (message.kind === 'header') {
            store.members.addFieldNames(message.fieldNames);
            load = store.members.beginMemberLoad();
            writer = store.members.memberWriter(importId, options.now);
          } else if (message.kind === 'rows') {
            const rows = message.rows;
            for (let i = 0; i < rows.length; i += ROW_WIDTH) writer!.add(rows[i]!, rows[i + 1], rows[i + 2], rows[i + 3]!, rows[i + 4]);
            unwritten += message.chars;
            if (unwritten > UNWRITTEN_CHARS) {
              // finish() writes the rows held back, and the writer goes on from there.
              writer!.finish();
              unwritten = 0;
            }
            accepted += rows.length / ROW_WIDTH;
            mergeCounts(result, message.counts);
          } else if (message.kind === 'done') {
            mergeCounts(result, message.counts);
            result.encoding = message.encoding;
            resolve();
          } else {
            reject(new MailerError(message.message, { exitCode: message.exitCode as ExitCode, hint: message.hint }));
            return;
          }
          worker.postMessage('ack');
        } catch (err) {
          reject(err);
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`the import worker stopped (exit ${code})`)));
    });
    if (!writer || !load) throw badInput(`${file} has no header line`, 'the first line must name the columns, e.g. id;name;email');
    // Rows written are inserts or real changes; the member count tells the inserts apart.
    const written = (writer as ReturnType<Store['members']['memberWriter']>).finish();
    store.members.completeMemberLoad();
    result.inserted = store.members.memberCount() - (load as { membersBefore: number }).membersBefore;
    result.updated = written - result.inserted;
    result.unchanged = accepted - written;
    // An erased address imported again: what was kept under its hash holds for it again.
    for (const f of result.forgotten) store.erasure.restoreSuppressions(f.email, f.hash);
    store.members.commitImport();
  } finally {
    try {
      store.members.endImport();
    } finally {
      // Whatever endImport met: a parse thread left running keeps the process alive.
      await worker.terminate();
    }
  }
  return result;
}

function readSample(file: string): { sample: Uint8Array; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
      'give the path of a CSV file exported from your member list');
  }
  try {
    const size = fs.fstatSync(fd).size;
    const sample = Buffer.alloc(Math.min(size, SAMPLE_BYTES));
    fs.readSync(fd, sample, 0, sample.length, 0);
    return { sample, size };
  } catch (err) {
    throw badInput(`cannot read ${file}: ${(err as Error).message}`, 'give the path of a CSV file, not a folder');
  } finally {
    fs.closeSync(fd);
  }
}
