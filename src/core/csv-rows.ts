import fs from 'node:fs';
import { isAscii, isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { badInput, MailerError } from '../errors.js';
import { addressProblem, normalizeAddress } from './address.js';
import { lastCharBoundary, type Delimiter, type Encoding } from './csv-dialect.js';
import { CsvScanner } from './csv-scan.js';

/**
 * A member file, parsed and checked row by row, without the database: what the import worker
 * runs. Rows come out in batches of flat arrays (ROW_WIDTH values each: key, email, name,
 * fields JSON, address problem), with the rejected and flagged rows counted beside them.
 */
export interface ParseJob {
  file: string;
  encoding: Encoding;
  /** --encoding was given: no second guess */
  encodingGiven: boolean;
  delimiter: Delimiter;
  key?: string;
  emailColumn?: string;
  nameColumn?: string;
}

export const ROW_WIDTH = 5;

export interface ParseCounts {
  read: number;
  withoutEmail: number;
  invalidEmail: number;
  rejected: { line: number; reason: string }[];
  flagged: { line: number; member: string; reason: string }[];
}

export type WorkerMessage =
  | { kind: 'header'; fieldNames: string[] }
  | { kind: 'rows'; rows: (string | null)[]; counts: ParseCounts }
  | { kind: 'done'; counts: ParseCounts; encoding: Encoding }
  | { kind: 'error'; message: string; hint?: string; exitCode: number };

const EMAIL_HEADERS = ['email', 'e-mail', 'mail', 'emailadresse', 'e-mail-adresse', 'email address', 'e-mail address'];
export const FLAGGED_KEPT = 100;
const BATCH_ROWS = 2000;
/** Small chunks keep the text and its rows young: 1 MiB ones cost 40 MB more peak RSS, no time. */
const CHUNK_BYTES = 64 * 1024;

function emptyCounts(): ParseCounts {
  return { read: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], flagged: [] };
}

export function mergeCounts(into: ParseCounts, from: ParseCounts): void {
  into.read += from.read;
  into.withoutEmail += from.withoutEmail;
  into.invalidEmail += from.invalidEmail;
  into.rejected.push(...from.rejected);
  into.flagged.push(...from.flagged.slice(0, Math.max(0, FLAGGED_KEPT - into.flagged.length)));
}

/**
 * Where the batches go: `post` hands one over at once (a batch kept waiting here would outlive
 * the young generation and cost the parse thread's garbage collector), `drain` resolves when the
 * consumer has caught up, so a slow consumer slows the reading down and memory stays bounded.
 */
export interface BatchSink {
  post(message: WorkerMessage): void;
  drain(): Promise<void>;
}

/** Parses the file and hands the header, the batches of rows and the end to `sink`. */
export async function parseMemberFile(job: ParseJob, sink: BatchSink): Promise<void> {
  const { file } = job;
  let counts = emptyCounts();
  let rows: (string | null)[] = [];
  let columns: Columns | null = null;

  // A row with the wrong number of fields or broken quoting is reported (with its line) and
  // skipped; the import goes on.
  const scanner = new CsvScanner(job.delimiter, (record, line) => {
    if (!columns) {
      columns = resolveColumns(record, job, file);
      sink.post({ kind: 'header', fieldNames: columns.fieldNames });
      return;
    }
    counts.read++;
    if (record.length !== columns.header.length) {
      counts.rejected.push({ line, reason: `${record.length} fields, but the header has ${columns.header.length}` });
      return;
    }
    prepareRow(columns, record, line, rows, counts);
    if (rows.length >= BATCH_ROWS * ROW_WIDTH) {
      sink.post({ kind: 'rows', rows, counts });
      rows = [];
      counts = emptyCounts();
    }
  }, (line, reason) => {
    if (!columns) throw badInput(`${file}:${line}: the header line is not readable CSV: ${reason}`, 'the first line must name the columns, e.g. id;name;email');
    counts.read++;
    counts.rejected.push({ line, reason });
  });

  const decodeError: { error?: Error; encoding: Encoding } = { encoding: job.encoding };
  try {
    // The scanner is fed one chunk at a time, and the next is read once the consumer has
    // caught up: memory stays bounded by a few chunks, whatever the file size.
    for await (const text of textChunks(fs.createReadStream(file, { highWaterMark: CHUNK_BYTES }), job.encodingGiven, decodeError)) {
      scanner.write(text);
      await sink.drain();
    }
    scanner.end();
    if (!columns) throw badInput(`${file} has no header line`, 'the first line must name the columns, e.g. id;name;email');
    if (rows.length) sink.post({ kind: 'rows', rows, counts: emptyCounts() });
    sink.post({ kind: 'done', counts, encoding: decodeError.encoding });
  } catch (err) {
    if (decodeError.error) {
      throw badInput(`${file}: ${decodeError.error.message} (near line ${scanner.currentLine}); nothing was imported`,
        'the file mixes encodings; save it as UTF-8, or give --encoding windows-1252');
    }
    if (err instanceof MailerError) throw err;
    throw badInput(`${file}: cannot be read as CSV near line ${scanner.currentLine}: ${(err as Error).message}; nothing was imported`,
      'check the quoting around that line, or give --delimiter and --encoding');
  }
}

interface Columns {
  header: string[];
  keyIndex: number;
  keyIsEmail: boolean;
  emailIndex: number;
  nameIndex: number;
  /** [column index, field name] for every column kept as a member field */
  fields: [number, string][];
  fieldNames: string[];
  /** `"name":` of each field, serialised once */
  fieldKeysJson: string[];
}

function resolveColumns(record: string[], options: ParseJob, file: string): Columns {
  const header = record.map((h) => h.replace(/^\uFEFF/, '').trim());
  const seen = new Set<string>();
  for (const h of header) {
    if (h === '') throw badInput(`${file}:1: a column has no name`, 'give every column a name in the header line');
    if (seen.has(h.toLowerCase())) throw badInput(`${file}:1: the column "${h}" appears twice`, 'rename one of them');
    seen.add(h.toLowerCase());
  }
  const find = (name: string) => header.findIndex((h) => h.toLowerCase() === name.toLowerCase());
  const need = (name: string, flag: string) => {
    const i = find(name);
    if (i < 0) throw badInput(`${file}:1: no column "${name}" (${flag}); the columns are: ${header.join(', ')}`, `name one of them with ${flag}`);
    return i;
  };
  const emailIndex = options.emailColumn
    ? need(options.emailColumn, '--email-column')
    : EMAIL_HEADERS.map(find).find((i) => i >= 0) ?? -1;
  if (emailIndex < 0) {
    throw badInput(`${file}:1: no e-mail column; the columns are: ${header.join(', ')}`, 'name it with --email-column <column>');
  }
  const nameIndex = options.nameColumn ? need(options.nameColumn, '--name-column') : find('name');
  const keyIndex = options.key ? need(options.key, '--key') : find('id') >= 0 ? find('id') : emailIndex;
  const fields = header
    .map((h, i) => [i, h] as [number, string])
    .filter(([i]) => i !== emailIndex && i !== nameIndex);
  return {
    header, keyIndex, keyIsEmail: keyIndex === emailIndex, emailIndex, nameIndex, fields,
    fieldNames: fields.map(([, h]) => h),
    fieldKeysJson: fields.map(([, h]) => `${JSON.stringify(h)}:`),
  };
}

/** Checks one record; a member goes into `rows` (ROW_WIDTH values), a reject into the counts. */
function prepareRow(c: Columns, record: string[], line: number, rows: (string | null)[], result: ParseCounts): void {
  const rawEmail = record[c.emailIndex].trim();
  const email = rawEmail === '' ? null : normalizeAddress(rawEmail);
  let key = record[c.keyIndex].trim();
  if (c.keyIsEmail) key = key.toLowerCase();
  if (key === '') {
    result.rejected.push({ line: line, reason: c.keyIsEmail ? 'no e-mail address, and the e-mail is the member id' : `no member id (column "${c.header[c.keyIndex]}" is empty)` });
    return;
  }
  let emailProblem: string | null = null;
  if (email === null) {
    emailProblem = 'no-address';
    result.withoutEmail++;
    if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line: line, member: key, reason: 'no e-mail address' });
  } else {
    const problem = addressProblem(email);
    if (problem) {
      emailProblem = 'invalid-address';
      result.invalidEmail++;
      if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line: line, member: key, reason: `invalid address ${email}: ${problem}` });
    }
  }
  // The fields as JSON, written directly in column order (no object per row: the parse thread
  // is the import's bottleneck, and its garbage collector the largest part of it).
  let fields = '{';
  for (let f = 0; f < c.fields.length; f++) {
    if (f > 0) fields += ',';
    fields += c.fieldKeysJson[f] + JSON.stringify(record[c.fields[f][0]]);
  }
  fields += '}';
  const name = c.nameIndex >= 0 ? record[c.nameIndex].trim() || null : null;
  rows.push(key, email, name, fields, emailProblem);
}

/**
 * The file as text for the scanner. UTF-8 is checked (isUtf8, native) up to the last whole
 * character of each chunk, then decoded; Windows-1252 is converted.
 */
async function* textChunks(source: AsyncIterable<Buffer>, forced: boolean, state: { error?: Error; encoding: Encoding }): AsyncGenerator<string> {
  let carry: Buffer = Buffer.alloc(0);
  // Detection saw the first 64 KiB only. Unless the encoding was given, the first non-ASCII
  // character of the file decides: a valid UTF-8 sequence means UTF-8 (and a bad byte later is
  // an error), anything else means Windows-1252 with its first umlaut further down.
  let decided = forced;
  for await (const raw of source) {
    if (state.encoding === 'windows-1252') {
      // A single-byte encoding: any chunk boundary is a character boundary.
      yield iconv.decode(carry.length ? Buffer.concat([carry, raw]) : raw, 'win1252');
      carry = Buffer.alloc(0);
      continue;
    }
    const chunk = carry.length ? Buffer.concat([carry, raw]) : raw;
    if (!decided && !isAscii(chunk)) {
      decided = true;
      if (!startsUtf8Char(chunk, chunk.findIndex((b) => b >= 0x80))) {
        state.encoding = 'windows-1252';
        yield iconv.decode(chunk, 'win1252');
        carry = Buffer.alloc(0);
        continue;
      }
    }
    const end = lastCharBoundary(chunk);
    const whole = chunk.subarray(0, end);
    if (!isUtf8(whole)) {
      state.error = new Error('not valid UTF-8');
      throw state.error;
    }
    carry = Buffer.from(chunk.subarray(end));
    yield whole.toString('utf8');
  }
  if (carry.length) {
    state.error = new Error('not valid UTF-8 (the file ends inside a character)');
    throw state.error;
  }
}

/** Whether a well-formed multi-byte UTF-8 character starts at `at`. */
function startsUtf8Char(buf: Buffer, at: number): boolean {
  const lead = buf[at];
  const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  return length > 0 && at + length <= buf.length && isUtf8(buf.subarray(at, at + length));
}
