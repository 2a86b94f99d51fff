/**
 * How a member file is written: encoding and delimiter, guessed from its first bytes the way
 * a person would read it. Pure functions, so the guesses are tested row by row.
 */
export type Encoding = 'utf-8' | 'windows-1252';
export type Delimiter = ',' | ';' | '\t';

const UTF8_BOM = [0xef, 0xbb, 0xbf];

export function hasUtf8Bom(sample: Uint8Array): boolean {
  return sample.length >= 3 && UTF8_BOM.every((b, i) => sample[i] === b);
}

/**
 * UTF-8 if the sample decodes as UTF-8 (a multi-byte sequence cut off at the sample's end is
 * forgiven), else Windows-1252 — what Excel writes as "CSV" on a German Windows.
 */
export function detectEncoding(sample: Uint8Array, complete: boolean): Encoding {
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

export function parseEncoding(name: string): Encoding | null {
  const n = name.trim().toLowerCase().replace(/_/g, '-');
  if (n === 'utf-8' || n === 'utf8') return 'utf-8';
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

export function parseDelimiter(value: string): Delimiter | null {
  const v = value === '\\t' || value.toLowerCase() === 'tab' ? '\t' : value;
  return v === ',' || v === ';' || v === '\t' ? v : null;
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
