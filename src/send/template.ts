import fs from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { badInput } from '../errors.js';
import { topicName } from '../config/topic.js';
import { parseRetention } from '../config/when.js';
import type { Member, RenderedMessage } from '../domain/types.js';

/**
 * A template is a message file: header lines, a blank line, the text body. Rendered with
 * Mustache per member — text and headers unescaped, the HTML sibling escaped — and checked so
 * that no member's data can add a header (a line break in a rendered header is refused).
 */
export interface Template extends RenderedMessage {
  path: string;
  type: string;
  /** what an unsubscribe from this mail stops (Topic:, else the type) */
  topic: string;
  /** Required: yes — members cannot opt out of it: no unsubscribe header or link, opt-outs ignored */
  required: boolean;
  /** Track: yes|no, when the template says; a required mail carries a pixel only with yes */
  track: boolean | null;
  footer: string | null;
  /** the file as read, kept with the mailing so a resume renders the same mail */
  source: string;
  /** placeholders whose value is printed: an empty value skips the member */
  variables: Set<string>;
  /** every name the template asks for, sections included */
  names: Set<string>;
  /**
   * The same outside every section, placeholders by their whole dotted name (`order.number`):
   * what a system mail's data must fill, since inside `{{#order.items}}` a name is the item's.
   */
  outer: { variables: Set<string>; names: Set<string> };
  /**
   * Each part with its Mustache tokens, parsed once when the template is read: rendering then
   * walks the tokens, so a template of megabytes is neither parsed nor copied per member.
   */
  parts: {
    subject: Part;
    from: Part | null;
    replyTo: Part | null;
    extraHeaders: Part[];
    attachments: Part[];
    text: Part;
    html: Part | null;
    footer: Part | null;
  };
}

/** A piece of the template as written, and its tokens. */
export interface Part {
  source: string;
  tokens: string[][];
}


export type RenderResult =
  | { ok: true; message: RenderedMessage }
  | { ok: false; category: 'empty-field' | 'header-injection'; reason: string };

/** Names every template can use, whatever the member file had. */
export const BUILT_IN_FIELDS = ['id', 'email', 'name', 'token', 'unsubscribe_url'] as const;

/** Instructions to mailer, not headers: they never reach the sent mail (a path would tell recipients about the office's folders). */
const CONTROL_HEADERS = new Set(['subject', 'from', 'reply-to', 'type', 'topic', 'required', 'track', 'attachment', 'retention']);
/** Headers mailer sets itself: a template may not override the recipient or the ids. */
const RESERVED_HEADERS = new Set(['to', 'cc', 'bcc', 'message-id', 'x-mailer-send-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding']);

export function loadTemplate(file: string, footer: string | null): Template {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw badInput(`cannot read template ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      'give the path of a message file: header lines (Subject:, From:, Type:), a blank line, then the text');
  }
  const htmlFile = path.join(path.dirname(file), `${path.basename(file, path.extname(file))}.html`);
  const html = htmlFile !== file && fs.existsSync(htmlFile) ? fs.readFileSync(htmlFile, 'utf8') : null;
  return parseTemplate(source, { path: file, html, htmlPath: htmlFile, footer });
}

export function parseTemplate(source: string, opts: { path: string; html: string | null; htmlPath?: string; footer: string | null }): Template {
  const text = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const split = text.indexOf('\n\n');
  if (split < 0) {
    throw badInput(`${opts.path}: no blank line between the header lines and the text`,
      'start the file with lines like "Subject: …", then an empty line, then the text');
  }
  const headerBlock = text.slice(0, split);
  const body = text.slice(split + 2);
  const headers: [string, string][] = [];
  headerBlock.split('\n').forEach((line, index) => {
    if (/^[ \t]/.test(line) && headers.length) {
      headers[headers.length - 1][1] += ' ' + line.trim();
      return;
    }
    const m = /^([A-Za-z0-9-]+):[ \t]*(.*)$/.exec(line);
    if (!m) {
      throw badInput(`${opts.path}:${index + 1}: "${line}" is not a header line`,
        'header lines look like "Subject: …"; put a blank line before the text');
    }
    headers.push([m[1], m[2].trim()]);
  });
  const get = (name: string) => headers.find(([k]) => k.toLowerCase() === name)?.[1] ?? null;
  const subject = get('subject');
  if (!subject) throw badInput(`${opts.path}: no Subject: line`, 'add a line "Subject: …" at the top of the template');
  const reserved = headers.find(([k]) => RESERVED_HEADERS.has(k.toLowerCase()));
  if (reserved) {
    throw badInput(`${opts.path}: the header ${reserved[0]}: cannot be set in a template`,
      'mailer sets the recipient, Message-ID and MIME headers itself; remove that line');
  }
  const extraHeaders = headers.filter(([k]) => !CONTROL_HEADERS.has(k.toLowerCase()));
  const names = { variables: new Set<string>(), names: new Set<string>(), outer: { variables: new Set<string>(), names: new Set<string>() } };
  const part = (source: string, where: string): Part => ({ source, tokens: parseMustache(source, names, where) });
  const optional = (source: string | null, where: string) => (source === null ? null : part(source, where));
  const parts: Template['parts'] = {
    subject: part(subject, opts.path),
    from: optional(get('from'), opts.path),
    replyTo: optional(get('reply-to'), opts.path),
    extraHeaders: extraHeaders.map(([, v]) => part(v, opts.path)),
    attachments: headers.filter(([k]) => k.toLowerCase() === 'attachment').map(([, v]) => part(v, opts.path)),
    text: part(body, opts.path),
    html: optional(opts.html, opts.htmlPath ?? `${opts.path} (its HTML part)`),
    footer: optional(opts.footer, `the footer of ${opts.path}`),
  };
  const type = get('type') || path.basename(opts.path, path.extname(opts.path));
  // Read again from the stored template by prune; checked here, before anything is sent.
  const retention = get('retention');
  if (retention !== null && parseRetention(retention) === null) {
    throw badInput(`${opts.path}: "Retention: ${retention}" is not a period`, 'write e.g. "Retention: 30d" (h, d, w or y), or remove the line to keep the messages as the settings say');
  }
  return {
    path: opts.path,
    type,
    topic: topicName(get('topic') ?? type, opts.path),
    required: yesNo(get('required'), 'Required', opts.path) ?? false,
    track: yesNo(get('track'), 'Track', opts.path),
    subject,
    from: get('from'),
    replyTo: get('reply-to'),
    extraHeaders,
    text: body,
    html: opts.html,
    footer: opts.footer,
    source,
    ...names,
    parts,
  };
}

function yesNo(value: string | null, header: string, file: string): boolean | null {
  if (value === null) return null;
  if (/^(yes|ja|true)$/i.test(value)) return true;
  if (/^(no|nein|false)$/i.test(value)) return false;
  throw badInput(`${file}: "${header}: ${value}" is neither yes nor no`, `write "${header}: yes" or leave the line out`);
}

/**
 * One writer for parsing and rendering, without Mustache's template cache: the cache keys each
 * template by its whole text, so every render of a large template would copy and hash it, and
 * the cache would keep every template of the process alive.
 */
const writer = new Mustache.Writer();
(writer as unknown as { templateCache: unknown }).templateCache = undefined;

function parseMustache(source: string, found: Pick<Template, 'variables' | 'names' | 'outer'>, file: string): string[][] {
  let tokens: string[][];
  try {
    tokens = writer.parse(source) as unknown as string[][];
  } catch (err) {
    throw badInput(`${file}: ${(err as Error).message}`, 'every {{#section}} needs its {{/section}}; placeholders are written {{name}}');
  }
  const walk = (list: unknown[], outside: boolean) => {
    for (const token of list as [string, string, number, number, unknown[]?][]) {
      const [kind, value] = token;
      if (kind === 'name' || kind === '&' || kind === '{') {
        const name = value.split('.')[0];
        if (name !== '') { found.variables.add(name); found.names.add(name); }
        if (name !== '' && outside) { found.outer.variables.add(value); found.outer.names.add(name); }
      } else if (kind === '#' || kind === '^') {
        found.names.add(value.split('.')[0]);
        if (outside) found.outer.names.add(value.split('.')[0]);
        if (token[4]) walk(token[4], false);
      } else if (kind === '>') {
        // Mustache renders a partial it is not given as nothing: refused, not sent without it.
        throw badInput(`${file}: the placeholder {{> ${value}}} includes another template (a partial), which mailer does not do`,
          'write that text into the template itself; placeholders are written {{name}}');
      }
    }
  };
  walk(tokens, true);
  return tokens;
}

/**
 * A system mail's check: a placeholder outside the sections must be the member's field, the
 * data's, or a built-in; inside a section a name may be the item's, and is left to the render.
 */
export function checkDataPlaceholders(template: Template, known: Iterable<string>): void {
  const names = new Set<string>([...BUILT_IN_FIELDS, ...known]);
  const unknown = [...template.outer.names].filter((n) => n !== '.' && !names.has(n));
  if (unknown.length) {
    throw badInput(`${template.path}: the placeholder ${unknown.map((n) => `{{${n}}}`).join(', ')} is neither in the data nor a field of the recipient`,
      'add it to the JSON data, or fix the spelling in the template');
  }
}

/** Fails before anything is sent if a placeholder names no field any member has. */
export function checkPlaceholders(template: Template, knownFields: Iterable<string>): void {
  const known = new Set<string>([...BUILT_IN_FIELDS, ...knownFields]);
  const unknown = [...template.names].filter((n) => n !== '.' && !known.has(n));
  if (unknown.length) {
    const list = unknown.map((n) => `{{${n}}}`).join(', ');
    throw badInput(`${template.path}: the placeholder ${list} is not a member field`,
      `fields are the columns of the imported file plus ${BUILT_IN_FIELDS.join(', ')}; fix the spelling or import a file with that column`);
  }
}

export function memberView(member: Member, email: string | null, token: string, unsubscribeUrl = ''): Record<string, string> {
  return { ...member.fields, id: member.key, email: email ?? '', name: member.name ?? '', token, unsubscribe_url: unsubscribeUrl };
}

/**
 * A system mail's view: its data under its own names beside the member's fields, the data
 * winning over fields, name and id; the address and the token are always mailer's own.
 */
export function dataView(member: Record<string, string>, data: Record<string, unknown>): Record<string, unknown> {
  return { ...member, ...data, email: member.email, token: member.token };
}

/** A value at a dotted path of a view, as Mustache looks it up from the top. */
function lookup(view: Record<string, unknown>, name: string): unknown {
  let value: unknown = view;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const unescaped = { escape: (value: unknown) => String(value) };

function renderPart(part: Part, context: Mustache.Context, config?: typeof unescaped): string {
  return writer.renderTokens(part.tokens, context, undefined, part.source, config);
}

/** `data`: a system mail, whose placeholders outside sections are checked by their whole path. */
export function render(template: Template, view: Record<string, unknown>, opts: { allowEmpty: boolean; data?: boolean }): RenderResult {
  if (!opts.allowEmpty) {
    for (const name of opts.data ? template.outer.variables : template.variables) {
      const value = opts.data ? lookup(view, name) : view[name];
      if (value === undefined || value === null || String(value).trim() === '') {
        return { ok: false, category: 'empty-field', reason: `the field "${name}" is empty for this member (the template uses {{${name}}}); fill it or send with --allow-empty` };
      }
    }
  }
  const { parts } = template;
  const context = new Mustache.Context(view);
  const header = (name: string, part: Part): string | RenderResult => {
    const value = renderPart(part, context, unescaped);
    if (/[\r\n]/.test(value)) {
      return { ok: false, category: 'header-injection', reason: `the rendered ${name}: header would contain a line break (from a member field); refused so that no header can be added` };
    }
    return value.trim();
  };
  const subject = header('Subject', parts.subject);
  if (typeof subject !== 'string') return subject;
  const from = parts.from === null ? null : header('From', parts.from);
  if (from !== null && typeof from !== 'string') return from;
  const replyTo = parts.replyTo === null ? null : header('Reply-To', parts.replyTo);
  if (replyTo !== null && typeof replyTo !== 'string') return replyTo;
  const extraHeaders: [string, string][] = [];
  for (let i = 0; i < parts.extraHeaders.length; i++) {
    const name = template.extraHeaders[i][0];
    const value = header(name, parts.extraHeaders[i]);
    if (typeof value !== 'string') return value;
    extraHeaders.push([name, value]);
  }
  let text = renderPart(parts.text, context, unescaped);
  if (parts.footer) {
    text = `${text.replace(/\n*$/, '')}\n\n-- \n${renderPart(parts.footer, context, unescaped)}`;
  }
  const attachments: string[] = [];
  for (const attachment of parts.attachments) {
    const value = header('Attachment', attachment);
    if (typeof value !== 'string') return value;
    attachments.push(value);
  }
  const html = parts.html === null ? null : renderPart(parts.html, context);
  return { ok: true, message: { subject, from, replyTo, extraHeaders, text, html, ...(attachments.length ? { attachments } : {}) } };
}
