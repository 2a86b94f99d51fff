/**
 * The CSV reader of the import: RFC 4180 (quoted fields, doubled quotes, line breaks inside
 * quotes), fed decoded text chunk by chunk, one callback per record with the line it starts on.
 *
 * It replaced csv-parse for the import, whose per-character state machine was the import's
 * limit: 2.8 s of the parse thread for 1M rows, against about 0.7 s here. Most member lines
 * have no quote at all, and such a line is cut with indexOf and split; only a line with a
 * quote goes through the character-by-character path.
 *
 * Bad records are reported, not fatal: the reader skips to the end of the line the problem
 * is on (an unclosed quote: to the end of the record's first line) and goes on, so one stray
 * quote does not swallow the rest of the file.
 */
export type RecordHandler = (fields: string[], line: number) => void;
export type RecordErrorHandler = (line: number, reason: string) => void;

/** A quoted record longer than this is taken for an unclosed quote: memory stays bounded. */
export const MAX_RECORD_CHARS = 1 << 20;

const QUOTE = 34;
const CR = 13;
const LF = 10;
const INCOMPLETE = -1;

export const CSV_PROBLEMS = {
  unclosed: 'a quote is opened but never closed',
  tooLong: `a quote is not closed within ${MAX_RECORD_CHARS / (1 << 20)} MB (a quote never closed, or a field longer than that limit)`,
  opening: 'a quote in the middle of a field (a field with quotes must start and end with one)',
  closing: 'text right after a closing quote (a quote inside a field must be doubled: "")',
} as const;

/** A record longer than MAX_RECORD_CHARS without a line break: the read stops. */
export class CsvLimitError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

export class CsvScanner {
  /** text of a record not complete yet, from its first character */
  private rest = '';
  /**
   * Chunks that go on with `rest`, kept apart while they cannot end it: a record longer than
   * a chunk (a field of 900 KB) is joined and scanned once at its end, not once a chunk.
   */
  private pieces: string[] = [];
  /** how much of `rest` and `pieces` is known to hold no quote and no line break, or 0 */
  private plain = 0;
  /** `rest` and `pieces` end inside a quoted field, with no quote after its opening one */
  private inQuotes = false;
  /** set by quotedRecord: the text ended inside a quoted field */
  private openQuote = false;
  private piecesLength = 0;
  /** the line `rest` starts on */
  private line = 1;
  private bomChecked = false;
  /** the line break: '\n' (a '\r' before it is dropped) or, in old Mac files, '\r' */
  private lineBreak: '\n' | '\r' | null = null;
  private readonly delimiter: string;
  private readonly delimiterCode: number;

  constructor(delimiter: string, private readonly onRecord: RecordHandler, private readonly onError: RecordErrorHandler) {
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') throw new Error(`unusable CSV delimiter ${JSON.stringify(delimiter)}`);
    this.delimiter = delimiter;
    this.delimiterCode = delimiter.charCodeAt(0);
  }

  /** The line the reader has reached: where a record not complete yet starts. */
  get currentLine(): number {
    return this.line;
  }

  /**
   * The line `more` would end on if it came next: the line of a character in the text not
   * written yet, counted the way records are (line breaks inside quotes included).
   */
  lineAfter(more: string): number {
    const text = this.pending() + more;
    const lineBreak = this.lineBreak ?? (text.indexOf('\r') >= 0 && text.indexOf('\n') < 0 ? '\r' : '\n');
    return this.line + countOf(text, lineBreak, 0, text.length);
  }

  write(chunk: string): void {
    // A record that goes on past this chunk too is only kept; the chunk that may end it is
    // scanned after the part known to hold no line break or quote.
    if (this.plain > 0 ? chunk.indexOf(this.lineBreak!) < 0 && chunk.indexOf('"') < 0 : this.inQuotes && chunk.indexOf('"') < 0) {
      if (this.rest.length + this.piecesLength + chunk.length <= MAX_RECORD_CHARS) {
        this.pieces.push(chunk);
        this.piecesLength += chunk.length;
        if (this.plain > 0) this.plain += chunk.length;
        return;
      }
    }
    const rest = this.pending();
    this.scan(rest.length ? rest + chunk : chunk, false, this.plain);
  }

  end(): void {
    this.scan(this.pending(), true, this.plain);
  }

  /** `rest` with the pieces kept behind it. */
  private pending(): string {
    if (this.pieces.length) {
      this.rest += this.pieces.join('');
      this.pieces = [];
      this.piecesLength = 0;
    }
    return this.rest;
  }

  /** `skip`: the start of `text` holds no quote and no line break. */
  private scan(text: string, final: boolean, skip: number): void {
    this.plain = 0;
    this.inQuotes = false;
    let pos = 0;
    if (!this.bomChecked && text.length) {
      this.bomChecked = true;
      if (text.charCodeAt(0) === 0xfeff) pos = 1;
    }
    if (!this.lineBreak && !this.detectLineBreak(text, final)) {
      if (final) this.finalRecord(text, pos);
      else this.keep(text, pos);
      return;
    }
    const lineBreak = this.lineBreak ?? '\n';
    const stripCr = lineBreak === '\n';
    let quoteAt = -1;
    while (pos < text.length) {
      let lineEnd = text.indexOf(lineBreak, pos < skip ? skip : pos);
      if (quoteAt < pos) {
        quoteAt = text.indexOf('"', pos < skip ? skip : pos);
        if (quoteAt < 0) quoteAt = text.length;
      }
      if (lineEnd < 0) {
        if (!final) {
          if (quoteAt >= text.length) this.plain = text.length - pos;
          break;
        }
        lineEnd = text.length;
      }
      if (quoteAt >= lineEnd) {
        // the common line: no quote, so the delimiters are the field boundaries
        let end = lineEnd;
        if (stripCr && end > pos && text.charCodeAt(end - 1) === CR) end--;
        if (end > pos) this.onRecord(text.slice(pos, end).split(this.delimiter), this.line);
        this.line++;
        pos = lineEnd + 1;
        continue;
      }
      this.openQuote = false;
      const next = this.quotedRecord(text, pos, final);
      if (next === INCOMPLETE) {
        this.inQuotes = this.openQuote;
        break;
      }
      pos = next;
    }
    this.keep(text, pos);
  }

  private keep(text: string, pos: number): void {
    this.rest = pos >= text.length ? '' : text.slice(pos);
    if (this.rest.length > MAX_RECORD_CHARS && this.rest.indexOf(this.lineBreak ?? '\n') < 0) {
      throw new CsvLimitError(this.line, `line ${this.line} is longer than ${MAX_RECORD_CHARS / (1 << 20)} MB without a line break; this does not look like a member list`);
    }
  }

  /** The first line break decides: '\r\n' or '\n' (the usual), or a lone '\r' (old Mac files). */
  private detectLineBreak(text: string, final: boolean): boolean {
    const lf = text.indexOf('\n');
    const cr = text.indexOf('\r');
    if (cr >= 0 && (lf < 0 || cr < lf)) {
      if (cr + 1 >= text.length && !final) return false;
      this.lineBreak = text.charCodeAt(cr + 1) === LF ? '\n' : '\r';
      return true;
    }
    if (lf >= 0) {
      this.lineBreak = '\n';
      return true;
    }
    return false;
  }

  /** The whole text is one record without a line break. */
  private finalRecord(text: string, pos: number): void {
    this.lineBreak = '\n';
    this.scan(text.slice(pos), true, 0);
    this.rest = '';
  }

  /**
   * A record with a quote somewhere, read character by character from `start`. Returns where
   * the next record starts, or INCOMPLETE when the record goes on past the end of the text.
   */
  private quotedRecord(text: string, start: number, final: boolean): number {
    const lineBreak = this.lineBreak!;
    const breakCode = lineBreak.charCodeAt(0);
    const d = this.delimiterCode;
    const fields: string[] = [];
    let i = start;
    for (;;) {
      let value: string;
      if (text.charCodeAt(i) === QUOTE) {
        value = '';
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q < 0) this.openQuote = true;
          if (q < 0 || (q + 1 >= text.length && !final)) return this.unfinished(text, start, final);
          value += text.slice(from, q);
          if (text.charCodeAt(q + 1) === QUOTE) {
            value += '"';
            from = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
      } else {
        let end = i;
        while (end < text.length) {
          const c = text.charCodeAt(end);
          if (c === d || c === breakCode) break;
          if (c === QUOTE) return this.badRecord(text, start, end, CSV_PROBLEMS.opening);
          end++;
        }
        if (end >= text.length && !final) return this.unfinished(text, start, final);
        // a '\r' before the '\n' belongs to the line break, not to the last field
        value = text.slice(i, breakCode === LF && end > i && text.charCodeAt(end - 1) === CR && text.charCodeAt(end) !== d ? end - 1 : end);
        i = end;
      }
      if (i >= text.length) {
        if (!final) return this.unfinished(text, start, final);
        fields.push(value);
        return this.recordDone(text, start, text.length, fields);
      }
      let c = text.charCodeAt(i);
      if (c === CR && breakCode === LF) {
        if (i + 1 >= text.length && !final) return this.unfinished(text, start, final);
        if (text.charCodeAt(i + 1) === LF || i + 1 >= text.length) c = text.charCodeAt(++i) || LF;
      }
      if (c === d) {
        fields.push(value);
        i++;
        continue;
      }
      if (c === breakCode) {
        fields.push(value);
        return this.recordDone(text, start, i, fields);
      }
      return this.badRecord(text, start, i, CSV_PROBLEMS.closing);
    }
  }

  private recordDone(text: string, start: number, breakAt: number, fields: string[]): number {
    this.onRecord(fields, this.line);
    this.line += countOf(text, this.lineBreak!, start, breakAt) + 1;
    return breakAt + 1;
  }

  /**
   * Reported at the record's first line; reading goes on after the line the problem is on. A
   * problem lines below the start is taken for a stray quote on the first line (far likelier
   * than a real multi-line field gone wrong), so only that line is lost.
   */
  private badRecord(text: string, start: number, at: number, reason: string): number {
    if (countOf(text, this.lineBreak!, start, at) > 0) return this.unfinished(text, start, true);
    this.onError(this.line, reason);
    let lineEnd = text.indexOf(this.lineBreak!, at);
    if (lineEnd < 0) lineEnd = text.length;
    this.line += countOf(text, this.lineBreak!, start, lineEnd) + 1;
    return lineEnd + 1;
  }

  /**
   * The record runs past the text: wait for more, unless this is the end of the file or the
   * record is too long to be real; then its quote was never closed, and reading goes on after
   * its first line.
   */
  private unfinished(text: string, start: number, final: boolean): number {
    if (!final && text.length - start <= MAX_RECORD_CHARS) return INCOMPLETE;
    this.onError(this.line, final ? CSV_PROBLEMS.unclosed : CSV_PROBLEMS.tooLong);
    const firstLineEnd = text.indexOf(this.lineBreak!, start);
    this.line++;
    return firstLineEnd < 0 ? text.length : firstLineEnd + 1;
  }
}

function countOf(text: string, char: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf(char, from); i >= 0 && i < to; i = text.indexOf(char, i + 1)) n++;
  return n;
}
