import addressparser from 'nodemailer/lib/addressparser/index.js';

/** A stored message as a person reads it: header values decoded, the text part, the HTML part's size. */
export interface MessageView {
  headers: [string, string][];
  text: string | null;
  htmlBytes: number | null;
}

/**
 * Reads a message mailer composed itself (nodemailer's shapes: one text/plain part, or a
 * multipart/alternative of text/plain and text/html; UTF-8; 7bit, quoted-printable or base64),
 * without a general MIME parser: loading mailparser took `show` 2.5 times as long as `log`.
 * Anything else (another charset, nested parts, an attachment, punycode) returns null, and the
 * caller hands it to mailparser, whose reading this one matches (test/unit/message-view).
 */
export function readOwnMessage(raw: Buffer): MessageView | null {
  const part = splitPart(raw.toString('latin1'));
  if (!part) return null;
  const headers: [string, string][] = [];
  const seen = new Set<string>();
  for (const line of part.lines) {
    const name = line.slice(0, line.indexOf(':'));
    const key = name.trim().toLowerCase();
    const value = headerText(key, line.slice(line.indexOf(':') + 1));
    // A repeated header is a list in mailparser's reading: not one of mailer's messages.
    if (value === null || seen.has(key)) return null;
    seen.add(key);
    headers.push([name, value]);
  }
  const type = contentType(part.lines);
  if (!type) return null;
  if (type.value === 'text/plain') {
    const text = partText(part);
    return text === null ? null : { headers, text: text || null, htmlBytes: null };
  }
  if (type.value === 'text/html') {
    // nodemailer leaves the text part out when the text is empty; mailparser reads its text as ''.
    const html = partText(part);
    return html === null ? null : { headers, text: html ? '' : null, htmlBytes: html ? Buffer.byteLength(html) : null };
  }
  if (type.value !== 'multipart/alternative' || !type.boundary) return null;
  const children = splitMultipart(part.body, type.boundary);
  if (!children) return null;
  let text: string | null = null;
  let html: string | null = null;
  for (const child of children) {
    const childType = contentType(child.lines);
    const content = partText(child);
    if (content === null || !childType) return null;
    if (childType.value === 'text/plain' && text === null) text = content;
    else if (childType.value === 'text/html' && html === null) html = content;
    else return null;
  }
  if (text === null) return null;
  // An empty part counts as none, as in mailparser's reading.
  return { headers, text: text || null, htmlBytes: html ? Buffer.byteLength(html) : null };
}

interface Part {
  /** unfolded header lines, as latin1 text of the bytes */
  lines: string[];
  body: string;
}

function splitPart(source: string): Part | null {
  const end = source.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines: string[] = [];
  for (const line of source.slice(0, end).split('\r\n')) {
    if (/^[ \t]/.test(line) && lines.length) lines[lines.length - 1] += `\r\n${line}`;
    else if (line.includes(':')) lines.push(line);
    else return null;
  }
  return { lines, body: source.slice(end + 4) };
}

function splitMultipart(body: string, boundary: string): Part[] | null {
  const delimiter = `--${boundary}`;
  const chunks = `\r\n${body}`.split(`\r\n${delimiter}`);
  const last = chunks.pop();
  if (chunks.length < 2 || last === undefined || !last.startsWith('--')) return null;
  const parts: Part[] = [];
  for (const chunk of chunks.slice(1)) {
    const part = splitPart(chunk.replace(/^[ \t]*\r\n/, ''));
    if (!part) return null;
    parts.push(part);
  }
  return parts;
}

/** The value of a header, unfolded and trimmed (what mailparser's headers carry). */
function unfold(value: string): string {
  return value.replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim();
}

function header(lines: string[], name: string): string | null {
  const line = lines.find((l) => l.slice(0, l.indexOf(':')).trim().toLowerCase() === name);
  return line === undefined ? null : unfold(line.slice(line.indexOf(':') + 1));
}

function contentType(lines: string[]): { value: string; boundary: string | null } | null {
  const value = header(lines, 'content-type') ?? 'text/plain';
  const [type, ...params] = value.split(';').map((p) => p.trim());
  let boundary: string | null = null;
  for (const param of params) {
    const m = /^([\w-]+)=("?)([^"]*)\2$/.exec(param);
    if (!m) return null;
    const key = m[1].toLowerCase();
    if (key === 'charset' && !['utf-8', 'us-ascii'].includes(m[3].toLowerCase())) return null;
    else if (key === 'boundary') boundary = m[3];
    else if (key !== 'charset') return null;
  }
  return { value: type.toLowerCase(), boundary };
}

function partText(part: Part): string | null {
  const encoding = (header(part.lines, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  let bytes: Buffer;
  if (encoding === '7bit' || encoding === '8bit') bytes = Buffer.from(part.body, 'latin1');
  else if (encoding === 'base64') bytes = Buffer.from(part.body.replace(/\s+/g, ''), 'base64');
  else if (encoding === 'quoted-printable') bytes = quotedPrintable(part.body);
  else return null;
  const disposition = header(part.lines, 'content-disposition');
  if (disposition !== null && disposition.toLowerCase() !== 'inline') return null;
  return bytes.toString('utf8').replace(/\r?\n/g, '\n');
}

function quotedPrintable(body: string): Buffer {
  const text = body.replace(/[ \t]+(?=\r?\n)/g, '').replace(/=\r?\n/g, '');
  return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
}

const ADDRESS_HEADERS = new Set(['from', 'to', 'cc', 'bcc', 'sender', 'reply-to', 'delivered-to', 'return-path', 'disposition-notification-to']);
const PRIORITY_HEADERS = new Set(['priority', 'x-priority', 'x-msmail-priority', 'importance', 'references']);

/**
 * A header's value for a person, as mailparser gives it: the subject's encoded words decoded,
 * addresses as "Name" <address>, the date in UTC, other values as they are. A List-* header
 * keeps its value (mailparser files those under "list", which left show's line empty).
 */
function headerText(key: string, rawValue: string): string | null {
  const value = Buffer.from(unfold(rawValue), 'latin1').toString('utf8');
  if (key === 'date') {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date.toUTCString();
  }
  if (ADDRESS_HEADERS.has(key)) return addressesText(value);
  if (PRIORITY_HEADERS.has(key)) return null;
  if (key === 'subject') return decodeWords(value);
  if (key === 'message-id' || key === 'in-reply-to') {
    const id = decodeWords(value);
    return id === null || id === '' ? id : `${id.startsWith('<') ? '' : '<'}${id}${id.endsWith('>') ? '' : '>'}`;
  }
  if (key === 'content-type' || key === 'content-disposition') return value.split(';')[0].trim();
  return value;
}

function addressesText(value: string): string | null {
  const parts: string[] = [];
  for (const a of addressparser(value) as { name?: string; address?: string; group?: unknown }[]) {
    if (a.group || !a.address || /=\?|@xn--/i.test(a.address)) return null;
    const name = decodeWords((a.name ?? '').trim());
    if (name === null) return null;
    parts.push(name ? `"${name.replace(/["\\]/g, '\\$&')}" <${a.address}>` : a.address);
  }
  return parts.join(', ');
}

const ENCODED_WORD = /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g;

/** RFC 2047 encoded words in UTF-8 (the only charset nodemailer writes); null for another one. */
function decodeWords(value: string): string | null {
  let foreign = false;
  const joined = value.replace(/(=\?[^?]+\?[QqBb]\?[^?]*\?=)\s+(?==\?[^?]+\?[QqBb]\?[^?]*\?=)/g, '$1');
  // Adjacent words are decoded as one run of bytes: a character may be split across two.
  const decoded = joined.replace(/(?:=\?[^?]+\?[QqBb]\?[^?]*\?=)+/g, (run) => {
    const bytes: Buffer[] = [];
    for (const [, charset, encoding, text] of run.matchAll(ENCODED_WORD)) {
      if (!/^utf-?8$/i.test(charset)) foreign = true;
      bytes.push(encoding.toUpperCase() === 'B' ? Buffer.from(text, 'base64')
        : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1'));
    }
    return Buffer.concat(bytes).toString('utf8');
  });
  return foreign ? null : decoded;
}
