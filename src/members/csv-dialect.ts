/**
 * How a member file is written: encoding and delimiter, guessed from its first bytes the way
 * a person would read it. Pure functions, so the guesses are tested row by row.
 */
export type Encoding = 'utf-8' | 'windows-1252' | 'utf-16le' | 'utf-16be';
/** One character: detected among , ; and tab, or any other given with --delimiter. */
export type Delimiter = string;

const UTF8_BOM = [0xef, 0xbb, 0xbf];

export function hasUtf8Bom(sample: Uint8Array): boolean {
  return sample.length >= 3 && UTF8_BOM.every((b, i) => sample[i] === b);
}

/** The UTF-16 of a byte-order mark at the start (Excel's "Unicode text" has one), if any. */
export function utf16Bom(sample: Uint8Array): 'utf-16le' | 'utf-16be' | null {
  if (sample.length >= 2 && sample[0] === 0xff && sample[1] === 0xfe) return 'utf-16le';
  if (sample.length >= 2 && sample[0] === 0xfe && sample[1] === 0xff) return 'utf-16be';
  return null;
}

/**
 * UTF-16 without a byte-order mark: text of mostly Latin letters has a zero byte in every
 * second place (the high byte of each character), and hardly any in the others.
 */
function utf16WithoutBom(sample: Uint8Array): 'utf-16le' | 'utf-16be' | null {
  const pairs = Math.min(sample.length >> 1, 512);
  if (pairs < 4) return null;
  let evenZero = 0;
  let oddZero = 0;
  for (let i = 0; i < pairs; i++) {
    if (sample[2 * i] === 0) evenZero++;
    if (sample[2 * i + 1] === 0) oddZero++;
  }
  if (oddZero >= pairs * 0.7 && evenZero <= pairs * 0.05) return 'utf-16le';
  if (evenZero >= pairs * 0.7 && oddZero <= pairs * 0.05) return 'utf-16be';
  return null;
}

/**
 * UTF-16 by its byte-order mark (or its zero bytes), else UTF-8 if the sample decodes as
 * UTF-8 (a multi-byte sequence cut off at the sample's end is forgiven), else Windows-1252 —
 * what Excel writes as "CSV" on a German Windows.
 */
export function detectEncoding(sample: Uint8Array, complete: boolean): Encoding {
  const utf16 = utf16Bom(sample) ?? utf16WithoutBom(sample);
  if (utf16) return utf16;
  if (hasUtf8Bom(sample)) return 'utf-8';
  const end = complete ? sample.length : lastCharBoundary(sample);
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample.subarray(0, end));
    return 'utf-8';
  } catch {
    return 'windows-1252';
  }
}

/** Where the last complete UTF-8 character ends: a sequence cut off at the end is left out. */
export function lastCharBoundary(buf: Uint8Array): number {
  let i = buf.length - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 3 && (buf[i] & 0xc0) === 0x80) { i--; continuation++; }
  if (i < 0) return buf.length;
  const lead = buf[i];
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return need > continuation + 1 ? i : buf.length;
}

/**
 * Why the file is no CSV at all, from its first bytes: a spreadsheet saved as such and
 * renamed, or some other binary file. Null for text.
 */
export function notCsv(sample: Uint8Array): string | null {
  const starts = (...b: number[]) => b.every((x, i) => sample[i] === x);
  const head = Buffer.from(sample.buffer, sample.byteOffset, Math.min(sample.length, 4096)).toString('latin1');
  if (starts(0x50, 0x4b, 0x03, 0x04)) {
    // A ZIP archive: .xlsx (and .xlsm) hold xl/…, an OpenDocument file says its type first.
    if (head.includes('opendocument.spreadsheet')) return 'this is an OpenDocument spreadsheet (LibreOffice, .ods): save it as CSV (UTF-8)';
    if (head.includes('xl/') || head.includes('[Content_Types].xml')) return 'this is an Excel file (.xlsx): save it as CSV (UTF-8 or Windows)';
    return 'this is a ZIP archive, not a CSV file: unpack it, or export the member list as CSV';
  }
  if (starts(0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1)) return 'this is an Excel file (.xls): save it as CSV (UTF-8 or Windows)';
  if (starts(0x25, 0x50, 0x44, 0x46)) return 'this is a PDF file, not a CSV file: export the member list as CSV';
  if (utf16Bom(sample) || utf16WithoutBom(sample)) return null;
  // Text has no zero bytes (a stray one is stripped as a control character); binary has many.
  let zeros = 0;
  for (let i = sample.indexOf(0); i >= 0; i = sample.indexOf(0, i + 1)) zeros++;
  if (zeros > 16 && zeros > sample.length / 100) return `this is not a text file (${zeros} zero bytes in its first ${Math.ceil(sample.length / 1024)} KB): export the member list as CSV`;
  return null;
}

/**
 * UTF-8 that Windows-1252 text would hardly ever hold: an accented Latin letter (Ã¼ for ü),
 * a typographic dash or quote (â€“), the euro sign, an emoji. In Windows-1252 these bytes read
 * as such pairs and triples of odd characters; a C1 control (Â + 0x80–0x9F) is left out.
 * Found by their first byte (memchr, native), which is rare in Windows-1252 text but for Ä.
 */
const UTF8_LEADS = [0xc3, 0xc2, 0xc4, 0xc5, 0xe2, 0xf0];

function utf8TextStartsAt(b: Uint8Array, i: number): boolean {
  const lead = b[i];
  const next = b[i + 1];
  if (lead === 0xc2) return next >= 0xa0 && next <= 0xbf;
  if (lead <= 0xc5) return next >= 0x80 && next <= 0xbf;
  if (lead === 0xe2) return (next === 0x80 && b[i + 2] >= 0x80 && b[i + 2] <= 0xbf) || (next === 0x82 && b[i + 2] === 0xac);
  return next === 0x9f && b[i + 2] >= 0x80 && b[i + 2] <= 0xbf && b[i + 3] >= 0x80 && b[i + 3] <= 0xbf;
}

/** Where the first such UTF-8 character starts in bytes read as Windows-1252, or -1. */
export function utf8TextAt(bytes: Uint8Array): number {
  let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let first = -1;
  for (const lead of UTF8_LEADS) {
    for (let i = buf.indexOf(lead); i >= 0; i = buf.indexOf(lead, i + 1)) {
      if (utf8TextStartsAt(bytes, i)) {
        first = i;
        // the other leads are looked for before it only
        buf = buf.subarray(0, i);
        break;
      }
    }
  }
  return first;
}

/** Where the first byte that is not part of valid UTF-8 is, or -1 (a cut-off end counts). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    // overlong forms, surrogates and code points past U+10FFFF
    const second = bytes[i + 1];
    if ((lead === 0xe0 && second < 0xa0) || (lead === 0xed && second > 0x9f) || (lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return i;
    i += length;
  }
  return -1;
}

export function parseEncoding(name: string): Encoding | null {
  const n = name.trim().toLowerCase().replace(/_/g, '-');
  if (n === 'utf-8' || n === 'utf8') return 'utf-8';
  if (n === 'utf-16le' || n === 'utf16le') return 'utf-16le';
  if (n === 'utf-16be' || n === 'utf16be') return 'utf-16be';
  if (['windows-1252', 'cp1252', 'win1252', 'latin1', 'latin-1', 'iso-8859-1', 'ansi'].includes(n)) return 'windows-1252';
  return null;
}

/**
 * The delimiter that splits the header line into the most columns, counting only outside
 * quotes. Ties go to ';' then ',' (a German Excel export is the common case).
 */
export function detectDelimiter(text: string): Delimiter {
  const firstLine = headerLine(text);
  const counts: Record<Delimiter, number> = { ';': 0, ',': 0, '\t': 0 };
  let quoted = false;
  for (const ch of firstLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ';' || ch === ',' || ch === '\t')) counts[ch]++;
  }
  const order: Delimiter[] = [';', ',', '\t'];
  return order.reduce((best, d) => (counts[d] > counts[best] ? d : best), ';' as Delimiter);
}

/** The delimiter --delimiter names: any one character, "tab" or "\\t" spelled out; null if none. */
export function parseDelimiter(value: string): Delimiter | null {
  return delimiterProblem(value) === null ? (value === '\\t' || value.toLowerCase() === 'tab' ? '\t' : value) : null;
}

/** Why --delimiter's value cannot be the delimiter, or null if it can. */
export function delimiterProblem(value: string): string | null {
  if (value === '\\t' || value.toLowerCase() === 'tab') return null;
  if (value === '') return 'is empty';
  const chars = [...value].length;
  if (chars > 1) return `is ${chars} characters: the delimiter is one character`;
  if (value.length > 1) return 'is a character the CSV reader cannot split on (outside the Basic Multilingual Plane)';
  if (value === '"') return 'is the quote character';
  if (value === '\n' || value === '\r') return 'is a line break';
  return null;
}

/** The first line, quoted line breaks included. */
function headerLine(text: string): string {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) return text.slice(0, i);
  }
  return text;
}
