import fs from 'node:fs';
import { isAscii, isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { badInput, MailerError } from '../errors.js';
import { addressProblem, NEEDS_SMTPUTF8, normalizeAddress } from '../domain/address.js';
import { erasedHash } from '../domain/erasure.js';
import { firstInvalidUtf8, lastCharBoundary, utf8TextAt, type Delimiter, type Encoding } from './csv-dialect.js';
import { CsvLimitError, CsvScanner } from './csv-scan.js';

/**
 * A member file, parsed and checked row by row, without the database: what the import worker
 * runs. Rows come out in batches of flat arrays (ROW_WIDTH values each: key, email, name,
 * fields JSON, address problem), with the rejected and flagged rows counted beside them.
 *
 * Control characters (NUL, escape sequences, …) never get into a member: they are removed,
 * with a warning naming the line and the column. A free-text field keeps its tabs and line
 * breaks; in the name, the e-mail and the member id they become a space.
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
  /**
   * Members erased by `forget`: the database's secret (hex) and the keyed hashes of their keys
   * and addresses. A row that matches one is rejected (reason `forgotten`), or with `include`
   * imported and listed in `forgotten`. Absent when nobody was erased: no hash is computed.
   */
  forgotten?: { secret: string; hashes: string[]; include: boolean };
}

export const ROW_WIDTH = 5;

/** The import's erased members (ParseJob.forgotten), ready to look up. */
let erased: { secret: Buffer; hashes: Set<string>; include: boolean } | null = null;

export interface ParseCounts {
  read: number;
  withoutEmail: number;
  invalidEmail: number;
  rejected: { line: number; reason: string }[];
  /** the first members imported but flagged (no or invalid address), for the operator to fix */
  flagged: { line: number; member: string; reason: string }[];
  /** rows imported with something to say: control characters removed, an address for SMTPUTF8 */
  warned: number;
  /** the first of them */
  warnings: { line: number; reason: string }[];
  /** with --include-forgotten: the erased addresses that came back, with their hashes */
  forgotten: { email: string; hash: string }[];
}

export type WorkerMessage =
  | { kind: 'header'; fieldNames: string[] }
  /** `chars`: about the size of the rows, in characters */
  | { kind: 'rows'; rows: (string | null)[]; counts: ParseCounts; chars: number }
  | { kind: 'done'; counts: ParseCounts; encoding: Encoding }
  | { kind: 'error'; message: string; hint?: string; exitCode: number };

const EMAIL_HEADERS = ['email', 'e-mail', 'mail', 'emailadresse', 'e-mail-adresse', 'email address', 'e-mail address'];
export const FLAGGED_KEPT = 100;
const BATCH_ROWS = 2000;
/**
 * A batch is also posted once its values reach this many characters: 2000 rows of 2000
 * columns, or of a 900 KB field, would be hundreds of MB, four batches of them in flight.
 */
export const BATCH_CHARS = 1 << 20;
/** Small chunks keep the text and its rows young: 1 MiB ones cost 40 MB more peak RSS, no time. */
const CHUNK_BYTES = 64 * 1024;

function emptyCounts(): ParseCounts {
  return { read: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], flagged: [], warned: 0, warnings: [], forgotten: [] };
}

export function mergeCounts(into: ParseCounts, from: ParseCounts): void {
  into.read += from.read;
  into.withoutEmail += from.withoutEmail;
  into.invalidEmail += from.invalidEmail;
  into.rejected.push(...from.rejected);
  into.forgotten.push(...from.forgotten);
  into.flagged.push(...from.flagged.slice(0, Math.max(0, FLAGGED_KEPT - into.flagged.length)));
  into.warned += from.warned;
  into.warnings.push(...from.warnings.slice(0, Math.max(0, FLAGGED_KEPT - into.warnings.length)));
}

function warn(counts: ParseCounts, line: number, reason: string): void {
  counts.warned++;
  if (counts.warnings.length < FLAGGED_KEPT) counts.warnings.push({ line, reason });
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
  erased = job.forgotten ? { secret: Buffer.from(job.forgotten.secret, 'hex'), hashes: new Set(job.forgotten.hashes), include: job.forgotten.include } : null;
  let counts = emptyCounts();
  let rows: (string | null)[] = [];
  let batchChars = 0;
  let columns: Columns | null = null;
  const decoder = new FileDecoder(job, (before) => scanner.lineAfter(before));

  // A row with the wrong number of fields or broken quoting is reported (with its line) and
  // skipped; the import goes on.
  const scanner = new CsvScanner(job.delimiter, (record, line) => {
    if (!columns) {
      columns = resolveColumns(record, job, file, counts);
      sink.post({ kind: 'header', fieldNames: columns.fieldNames });
      return;
    }
    counts.read++;
    if (record.length !== columns.header.length) {
      counts.rejected.push({ line, reason: `${record.length} fields, but the header has ${columns.header.length}` });
      return;
    }
    batchChars += prepareRow(columns, record, line, rows, counts, decoder.thorough);
    // Bounded by characters as well as rows: what is in flight stays a few MB, however wide the rows.
    if (rows.length >= BATCH_ROWS * ROW_WIDTH || batchChars >= BATCH_CHARS) {
      sink.post({ kind: 'rows', rows, counts, chars: batchChars });
      rows = [];
      counts = emptyCounts();
      batchChars = 0;
    }
  }, (line, reason) => {
    if (!columns) throw badInput(`${file}:${line}: the header line is not readable CSV: ${reason}`, 'the first line must name the columns, e.g. id;name;email');
    counts.read++;
    counts.rejected.push({ line, reason });
  });

  try {
    // The scanner is fed one chunk at a time, and the next is read once the consumer has
    // caught up: memory stays bounded by a few chunks, whatever the file size.
    for await (const raw of fs.createReadStream(file, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) {
      scanner.write(decoder.decode(raw));
      await sink.drain();
    }
    const tail = decoder.end();
    if (tail) scanner.write(tail);
    scanner.end();
    if (!columns) throw badInput(`${file} has no header line`, 'the first line must name the columns, e.g. id;name;email');
    if (rows.length) sink.post({ kind: 'rows', rows, counts: emptyCounts(), chars: batchChars });
    sink.post({ kind: 'done', counts, encoding: decoder.encoding });
  } catch (err) {
    if (err instanceof MailerError) throw err;
    if (err instanceof CsvLimitError) {
      throw badInput(`${file}:${err.line}: ${err.message}; nothing was imported`, 'a member list has one member a line; check that this is the right file');
    }
    throw badInput(`${file}: cannot be read as CSV near line ${scanner.currentLine}: ${(err as Error).message}; nothing was imported`,
      'check the quoting around that line, or give --delimiter and --encoding');
  }
}

/** A place in the file, for a message: its line, and the word there as it would read. */
interface Place {
  line: number;
  word: string;
}

const MIXED_HINT = 'save it again as UTF-8, or give --encoding windows-1252 (or utf-8) to read all of it in one encoding';

/**
 * The file's bytes as text for the scanner. UTF-8 is checked (isUtf8, native) up to the last
 * whole character of each chunk, then decoded; Windows-1252 and UTF-16 are converted.
 *
 * Detection saw the first 64 KiB only. Unless the encoding was given, the first non-ASCII
 * character of the file decides: a valid UTF-8 sequence means UTF-8 (and a bad byte later is
 * an error), anything else means Windows-1252, and UTF-8 text in it later is an error too. A
 * file with both is refused, with the line of each; read in one of them it would be garbled.
 */
class FileDecoder {
  encoding: Encoding;
  /**
   * A chunk held DEL or a C1 control, which the per-field check (JSON.stringify escapes only
   * the C0 controls) does not see: from then on every field is checked.
   */
  thorough = false;
  private decided: boolean;
  private carry: Buffer = Buffer.alloc(0);
  private readonly utf16: { write(bytes: Buffer): string; end(): string | undefined } | null = null;
  /** the file's first UTF-8 character, and the first byte that is not UTF-8: for a mixed file */
  private firstUtf8: Place | null = null;
  private firstWindows: Place | null = null;
  private readonly delimiterByte: number;

  constructor(private readonly job: ParseJob, private readonly lineAfter: (before: string) => number) {
    this.encoding = job.encoding;
    this.decided = job.encodingGiven;
    this.delimiterByte = job.delimiter.charCodeAt(0);
    if (job.encoding === 'utf-16le' || job.encoding === 'utf-16be') {
      // iconv's decoder keeps a character cut by the chunk's end for the next one, and drops the BOM.
      this.utf16 = iconv.getDecoder(job.encoding === 'utf-16le' ? 'utf16le' : 'utf16be');
      this.thorough = true;
    }
  }

  decode(raw: Buffer): string {
    if (this.utf16) return this.utf16.write(raw);
    if (this.encoding === 'windows-1252') return this.windows(raw);
    const chunk = this.carry.length ? Buffer.concat([this.carry, raw]) : raw;
    this.carry = Buffer.alloc(0);
    if (!this.decided && !isAscii(chunk)) {
      this.decided = true;
      const at = chunk.findIndex((b) => b >= 0x80);
      if (!startsUtf8Char(chunk, at)) {
        this.encoding = 'windows-1252';
        this.firstWindows = this.place(chunk, at, 'windows-1252');
        return this.windows(chunk);
      }
      this.firstUtf8 = this.place(chunk, at, 'utf-8');
    }
    const end = lastCharBoundary(chunk);
    const whole = end === chunk.length ? chunk : chunk.subarray(0, end);
    if (!isUtf8(whole)) throw this.notUtf8(this.place(whole, Math.max(0, firstInvalidUtf8(whole)), 'windows-1252'));
    if (end < chunk.length) this.carry = Buffer.from(chunk.subarray(end));
    if (!this.thorough && (whole.indexOf(0x7f) >= 0 || hasC1(whole))) this.thorough = true;
    return whole.toString('utf8');
  }

  /** What is left at the end of the file. */
  end(): string {
    if (this.utf16) return this.utf16.end() ?? '';
    if (this.carry.length) throw this.notUtf8({ line: this.lineAfter(''), word: '' }, 'the file ends inside a UTF-8 character');
    return '';
  }

  /** A single-byte encoding: any chunk boundary is a character boundary. */
  private windows(chunk: Buffer): string {
    if (!this.job.encodingGiven) {
      if (!this.firstWindows) {
        // Detection read the first bytes as Windows-1252: because of this one.
        const at = firstInvalidUtf8(chunk.subarray(0, lastCharBoundary(chunk)));
        if (at >= 0) this.firstWindows = this.place(chunk, at, 'windows-1252');
      }
      const utf8At = utf8TextAt(chunk);
      if (utf8At >= 0) throw this.mixed(this.place(chunk, utf8At, 'utf-8'), this.firstWindows);
    }
    if (!this.thorough && chunk.indexOf(0x7f) >= 0) this.thorough = true;
    return iconv.decode(chunk, 'win1252');
  }

  private notUtf8(at: Place, what = `line ${at.line} is not valid UTF-8${at.word ? ` ("${at.word}" if read as Windows-1252)` : ''}`): MailerError {
    if (this.firstUtf8) return this.mixed(this.firstUtf8, at, what);
    return badInput(`${this.job.file}:${at.line}: ${what}; nothing was imported`,
      this.job.encodingGiven ? 'give --encoding windows-1252 if the file is Windows-1252' : MIXED_HINT);
  }

  private mixed(utf8: Place, windows: Place | null, notUtf8?: string): MailerError {
    const u = `line ${utf8.line} is UTF-8 ("${utf8.word}")`;
    const w = windows ? notUtf8 ?? `line ${windows.line} is Windows-1252 ("${windows.word}")` : 'other lines are Windows-1252';
    const both = windows && windows.line < utf8.line ? `${w}, ${u}` : `${u}, ${w}`;
    return badInput(`${this.job.file} mixes encodings: ${both}; nothing was imported`, MIXED_HINT);
  }

  /** The line of the byte at `at` of a chunk not written to the scanner yet, and its word. */
  private place(chunk: Buffer, at: number, encoding: 'utf-8' | 'windows-1252'): Place {
    // Latin-1 keeps every byte a character: the line breaks are where they are in the bytes.
    const line = this.lineAfter(chunk.subarray(0, at).toString('latin1'));
    const stop = (b: number) => b === 10 || b === 13 || b === 34 || b === this.delimiterByte;
    let from = at;
    while (from > 0 && at - from < 40 && !stop(chunk[from - 1])) from--;
    let to = at + 1;
    while (to < chunk.length && to - at < 40 && !stop(chunk[to])) to++;
    const bytes = chunk.subarray(from, to);
    const word = encoding === 'utf-8' ? bytes.toString('utf8') : iconv.decode(bytes, 'win1252');
    return { line, word: cleanText(word.trim(), true).text };
  }
}

/** Whether a well-formed multi-byte UTF-8 character starts at `at`. */
function startsUtf8Char(buf: Buffer, at: number): boolean {
  const lead = buf[at];
  const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  return length > 0 && at + length <= buf.length && isUtf8(buf.subarray(at, at + length));
}

/** A C1 control (U+0080–U+009F) in UTF-8: 0xC2, then 0x80–0x9F. */
function hasC1(buf: Buffer): boolean {
  for (let i = buf.indexOf(0xc2); i >= 0; i = buf.indexOf(0xc2, i + 1)) if (buf[i + 1] >= 0x80 && buf[i + 1] <= 0x9f) return true;
  return false;
}

// -- control characters ---------------------------------------------------------------------

/** CSI and OSC sequences (ESC [ … m, ESC ] … BEL), their 8-bit forms, and two-character escapes. */
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|[ -/]*[0-~]?)|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?/g;
/** Control characters a free-text field may not keep: all but tab and the line breaks. */
const FREE_TEXT_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/;
/** In the name, the e-mail and the member id, tab and line breaks too. */
const ANY_CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/**
 * Whether `s` holds a control character (C0, DEL, C1): a plain loop, on a name of a dozen
 * characters faster than a regular expression (a third less) or JSON.stringify (a sixth).
 */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c - 0x7f) >>> 0 <= 0x20) return true;
  }
  return false;
}

/** `value` without control characters, and what was done, for the warning. */
function cleanText(value: string, strict: boolean): { text: string; done: string[] } {
  const done = new Set<string>();
  let text = value.replace(ESCAPE_SEQUENCE, () => {
    done.add('escape sequence removed');
    return '';
  });
  if (strict) {
    text = text.replace(/[\t\n\r]+/g, (m) => {
      done.add(/[\n\r]/.test(m) ? 'line break made a space' : 'tab made a space');
      return ' ';
    });
  }
  text = text.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g, (ch) => {
    done.add(ch === '\0' ? 'NUL removed' : `control character U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} removed`);
    return '';
  });
  return { text, done: [...done] };
}

/** Cleans the record in place: what was done, for a warning, or null if it was clean. */
function cleanRecord(c: Columns, record: string[]): string | null {
  const notes: string[] = [];
  for (let i = 0; i < record.length; i++) {
    const strict = i === c.emailIndex || i === c.nameIndex || i === c.keyIndex;
    if (!(strict ? ANY_CONTROL : FREE_TEXT_CONTROL).test(record[i])) continue;
    const { text, done } = cleanText(record[i], strict);
    if (done.length === 0) continue;
    record[i] = text;
    notes.push(`"${c.header[i]}" (${done.join(', ')})`);
  }
  return notes.length ? `control characters in ${notes.join(', ')}` : null;
}

// -- columns and rows -----------------------------------------------------------------------

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

function resolveColumns(record: string[], options: ParseJob, file: string, counts: ParseCounts): Columns {
  const cleaned: string[] = [];
  const header = record.map((raw, i) => {
    const { text, done } = cleanText(raw.replace(/^\uFEFF/, ''), true);
    if (done.length) cleaned.push(`column ${i + 1} "${text.trim()}" (${done.join(', ')})`);
    return text.trim();
  });
  if (cleaned.length) warn(counts, 1, `control characters in the header: ${cleaned.join(', ')}`);
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

/**
 * The fields as JSON, written directly in column order (no object per row: the parse thread
 * is the import's bottleneck, and its garbage collector the largest part of it). Null when a
 * value's JSON is longer than the value in quotes: it holds a quote, a backslash or a control
 * character, and the record is looked at more closely.
 */
function fieldsJson(c: Columns, record: string[], strict: boolean): string | null {
  let fields = '{';
  for (let f = 0; f < c.fields.length; f++) {
    if (f > 0) fields += ',';
    const value = record[c.fields[f][0]];
    const json = JSON.stringify(value);
    if (strict && json.length !== value.length + 2) return null;
    fields += c.fieldKeysJson[f] + json;
  }
  return fields + '}';
}

/**
 * Checks one record; a member goes into `rows` (ROW_WIDTH values), a reject into the counts.
 * Returns the characters added to `rows`.
 */
function prepareRow(c: Columns, record: string[], line: number, rows: (string | null)[], result: ParseCounts, thorough: boolean): number {
  let fields = thorough ? null : fieldsJson(c, record, true);
  // The name is not among the fields: the same check, on its own.
  let checked = thorough || fields === null || (c.nameIndex >= 0 && hasControl(record[c.nameIndex]));
  if (checked) {
    const note = cleanRecord(c, record);
    if (note) warn(result, line, note);
    fields = fieldsJson(c, record, false);
  }
  let rawEmail = record[c.emailIndex].trim();
  let email = rawEmail === '' ? null : normalizeAddress(rawEmail);
  let problem = email === null ? null : addressProblem(email);
  if (problem && !checked && ANY_CONTROL.test(rawEmail)) {
    // An invalid address may be a control character away from a valid one.
    checked = true;
    const note = cleanRecord(c, record);
    if (note) warn(result, line, note);
    fields = fieldsJson(c, record, false);
    rawEmail = record[c.emailIndex].trim();
    email = rawEmail === '' ? null : normalizeAddress(rawEmail);
    problem = email === null ? null : addressProblem(email);
  }
  let key = record[c.keyIndex].trim();
  if (c.keyIsEmail) key = key.toLowerCase();
  if (key === '') {
    result.rejected.push({ line: line, reason: c.keyIsEmail ? 'no e-mail address, and the e-mail is the member id' : `no member id (column "${c.header[c.keyIndex]}" is empty)` });
    return 0;
  }
  let emailProblem: string | null = null;
  if (email === null) {
    emailProblem = 'no-address';
    result.withoutEmail++;
    if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line: line, member: key, reason: 'no e-mail address' });
  } else if (problem === NEEDS_SMTPUTF8) {
    // Valid, and imported as such: whether it can be sent to depends on the server, which the
    // send finds out (it fails the member with its reason when the server lacks SMTPUTF8).
    warn(result, line, `member ${key}: ${email} is imported, but ${NEEDS_SMTPUTF8}`);
  } else if (problem) {
    emailProblem = 'invalid-address';
    result.invalidEmail++;
    if (result.flagged.length < FLAGGED_KEPT) result.flagged.push({ line: line, member: key, reason: `invalid address ${email}: ${problem}` });
  }
  if (erased) {
    const keyHash = erasedHash(erased.secret, 'key', key);
    const emailHash = email === null ? null : erasedHash(erased.secret, 'address', email);
    if (erased.hashes.has(keyHash) || (emailHash !== null && erased.hashes.has(emailHash))) {
      if (!erased.include) {
        result.rejected.push({ line, reason: 'forgotten' });
        return 0;
      }
      if (email !== null && emailHash !== null && erased.hashes.has(emailHash)) result.forgotten.push({ email, hash: emailHash });
    }
  }
  const name = c.nameIndex >= 0 ? record[c.nameIndex].trim() || null : null;
  rows.push(key, email, name, fields, emailProblem);
  return fields!.length + key.length + (email?.length ?? 0) + (name?.length ?? 0);
}
