import fs from 'node:fs';
import { randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import { badInput, MailerError } from '../errors.js';
import type { Store } from '../store/store.js';
import { addressProblem, normalizeAddress } from './address.js';
import { detectDelimiter, detectEncoding, type Delimiter, type Encoding } from './csv-dialect.js';

export interface ImportOptions {
  key?: string;
  emailColumn?: string;
  nameColumn?: string;
  delimiter?: Delimiter;
  encoding?: Encoding;
  now: number;
}

export interface ImportResult {
  file: string;
  encoding: Encoding;
  delimiter: Delimiter;
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  withoutEmail: number;
  invalidEmail: number;
  rejected: { line: number; reason: string }[];
  /** the first members imported but flagged (no or invalid address), for the operator to fix */
  flagged: { line: number; member: string; reason: string }[];
}

const SAMPLE_BYTES = 64 * 1024;
const EMAIL_HEADERS = ['email', 'e-mail', 'mail', 'emailadresse', 'e-mail-adresse', 'email address', 'e-mail address'];
const FLAGGED_KEPT = 100;

/**
 * Streams a member file into the database: upsert by key, fields merged, address history kept.
 * The whole file is one transaction, so a file that stops being readable half-way changes
 * nothing and can simply be imported again.
 */
export async function importMembers(store: Store, file: string, options: ImportOptions): Promise<ImportResult> {
  const { sample, size } = readSample(file);
  if (size === 0) throw badInput(`${file} is empty`, 'export the member list again, with a header line');
  const encoding = options.encoding ?? detectEncoding(sample, size <= SAMPLE_BYTES);
  const sampleText = encoding === 'utf-8' ? new TextDecoder('utf-8').decode(sample) : iconv.decode(Buffer.from(sample), 'win1252');
  const delimiter = options.delimiter ?? detectDelimiter(sampleText.replace(/^\uFEFF/, ''));

  const result: ImportResult = {
    file, encoding, delimiter, read: 0, inserted: 0, updated: 0, unchanged: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], flagged: [],
  };
  const parser = parse({
    delimiter,
    bom: true,
    relax_column_count: true,
    relax_quotes: false,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_record: (record: string[], context: { lines: number }) => ({ record, line: context.lines }),
    on_skip: (err: { lines?: number; message: string } | undefined) => {
      if (err) result.rejected.push({ line: err.lines ?? 0, reason: plainCsvError(err.message) });
      return undefined;
    },
  } as unknown as import('csv-parse').Options);

  const decodeError: { error?: Error } = {};
  Readable.from(decodeStream(fs.createReadStream(file, { highWaterMark: 1 << 20 }), encoding, decodeError))
    .on('error', (err) => parser.destroy(err))
    .pipe(parser);

  const importId = randomInt(1, 2 ** 47);
  let columns: Columns | null = null;
  store.db.exec('BEGIN');
  try {
    for await (const { record, line } of parser as AsyncIterable<{ record: string[]; line: number }>) {
      if (!columns) {
        columns = resolveColumns(record, options, file);
        store.addFieldNames(columns.fieldNames);
        continue;
      }
      result.read++;
      importRow(store, columns, record, line, importId, options.now, result);
    }
    if (!columns) throw badInput(`${file} has no header line`, 'the first line must name the columns, e.g. id;name;email');
    store.db.exec('COMMIT');
  } catch (err) {
    if (store.db.inTransaction) store.db.exec('ROLLBACK');
    if (decodeError.error) {
      throw badInput(`${file}: ${decodeError.error.message} (near line ${parser.info.lines}); nothing was imported`,
        'the file mixes encodings; save it as UTF-8, or give --encoding windows-1252');
    }
    if (err instanceof MailerError) throw err;
    throw badInput(`${file}: cannot be read as CSV near line ${parser.info.lines}: ${plainCsvError((err as Error).message)}; nothing was imported`,
      'check the quoting around that line, or give --delimiter and --encoding');
  }
  return result;
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
}

function resolveColumns(record: string[], options: ImportOptions, file: string): Columns {
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
  };
}

function importRow(store: Store, c: Columns, record: string[], line: number, importId: number, now: number, result: ImportResult): void {
  if (record.length !== c.header.length) {
    result.rejected.push({ line, reason: `${record.length} fields, but the header has ${c.header.length}` });
    return;
  }
  const rawEmail = record[c.emailIndex].trim();
  const email = rawEmail === '' ? null : normalizeAddress(rawEmail);
  let key = record[c.keyIndex].trim();
  if (c.keyIsEmail) key = key.toLowerCase();
  if (key === '') {
    result.rejected.push({ line, reason: c.keyIsEmail ? 'no e-mail address, and the e-mail is the member id' : `no member id (column "${c.header[c.keyIndex]}" is empty)` });
    return;
  }
  let emailProblem: string | null = null;
  if (email === null) {
    emailProblem = 'no-address';
    result.withoutEmail++;
    if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line, member: key, reason: 'no e-mail address' });
  } else {
    const problem = addressProblem(email);
    if (problem) {
      emailProblem = 'invalid-address';
      result.invalidEmail++;
      if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line, member: key, reason: `invalid address ${email}: ${problem}` });
    }
  }
  const fields: Record<string, string> = {};
  for (const [i, name] of c.fields) fields[name] = record[i];
  const name = c.nameIndex >= 0 ? record[c.nameIndex].trim() || null : null;
  const outcome = store.upsertMember({ key, email, name, fields: JSON.stringify(fields), emailProblem, importId, now });
  result[outcome]++;
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

async function* decodeStream(source: AsyncIterable<Buffer>, encoding: Encoding, failure: { error?: Error }): AsyncGenerator<string> {
  if (encoding === 'windows-1252') {
    // A single-byte encoding: any chunk boundary is a character boundary.
    for await (const chunk of source) yield iconv.decode(chunk, 'win1252');
    return;
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of source) yield decoder.decode(chunk, { stream: true });
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch (err) {
    failure.error = new Error('not valid UTF-8');
    throw err;
  }
}

/** csv-parse's messages, shortened to what a person needs. */
function plainCsvError(message: string): string {
  return message
    .replace(/^Invalid Record Length:.*$/, 'wrong number of fields')
    .replace(/^Quote Not Closed:.*$/, 'a quote is opened but never closed')
    .replace(/^Invalid Opening Quote:.*$/, 'a quote in the middle of a field')
    .replace(/^Invalid Closing Quote:.*$/, 'text right after a closing quote (a quote inside a field must be doubled: "")')
    .replace(/\s*at line \d+/, '');
}
