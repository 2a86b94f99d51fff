import fs from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { badInput } from '../errors.js';
import type { Member } from './types.js';

/**
 * A template is a message file: header lines, a blank line, the text body. Rendered with
 * Mustache per member — text and headers unescaped, the HTML sibling escaped — and checked so
 * that no member's data can add a header (a line break in a rendered header is refused).
 */
export interface Template {
  path: string;
  type: string;
  subject: string;
  from: string | null;
  replyTo: string | null;
  /** any other header lines of the file, passed through (rendered) */
  extraHeaders: [string, string][];
  text: string;
  html: string | null;
  footer: string | null;
  /** the file as read, kept with the mailing so a resume renders the same mail */
  source: string;
  /** placeholders whose value is printed: an empty value skips the member */
  variables: Set<string>;
  /** every name the template asks for, sections included */
  names: Set<string>;
}

export interface RenderedMessage {
  subject: string;
  from: string | null;
  replyTo: string | null;
  extraHeaders: [string, string][];
  text: string;
  html: string | null;
}

export type RenderResult =
  | { ok: true; message: RenderedMessage }
  | { ok: false; category: 'empty-field' | 'header-injection'; reason: string };

/** Names every template can use, whatever the member file had. */
export const BUILT_IN_FIELDS = ['id', 'email', 'name', 'token'] as const;

const CONTROL_HEADERS = new Set(['subject', 'from', 'reply-to', 'type']);
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
  return parseTemplate(source, { path: file, html, footer });
}

export function parseTemplate(source: string, opts: { path: string; html: string | null; footer: string | null }): Template {
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
  const template: Template = {
    path: opts.path,
    type: get('type') || path.basename(opts.path, path.extname(opts.path)),
    subject,
    from: get('from'),
    replyTo: get('reply-to'),
    extraHeaders,
    text: body,
    html: opts.html,
    footer: opts.footer,
    source,
    variables: new Set(),
    names: new Set(),
  };
  const parts = [subject, template.from, template.replyTo, ...extraHeaders.map(([, v]) => v), body, opts.html, opts.footer];
  for (const part of parts) {
    if (part) collectNames(part, template, opts.path);
  }
  return template;
}

function collectNames(source: string, template: Template, file: string): void {
  let tokens: unknown[];
  try {
    tokens = Mustache.parse(source);
  } catch (err) {
    throw badInput(`${file}: ${(err as Error).message}`, 'every {{#section}} needs its {{/section}}; placeholders are written {{name}}');
  }
  const walk = (list: unknown[]) => {
    for (const token of list as [string, string, number, number, unknown[]?][]) {
      const [kind, value] = token;
      if (kind === 'name' || kind === '&' || kind === '{') {
        const name = value.split('.')[0];
        if (name !== '') { template.variables.add(name); template.names.add(name); }
      } else if (kind === '#' || kind === '^') {
        template.names.add(value.split('.')[0]);
        if (token[4]) walk(token[4]);
      }
    }
  };
  walk(tokens);
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

export function memberView(member: Member, email: string | null, token: string): Record<string, string> {
  return { ...member.fields, id: member.key, email: email ?? '', name: member.name ?? '', token };
}

const unescaped = { escape: (value: unknown) => String(value) };

export function render(template: Template, view: Record<string, string>, opts: { allowEmpty: boolean }): RenderResult {
  if (!opts.allowEmpty) {
    for (const name of template.variables) {
      const value = view[name];
      if (value === undefined || value === null || String(value).trim() === '') {
        return { ok: false, category: 'empty-field', reason: `the field "${name}" is empty for this member (the template uses {{${name}}}); fill it or send with --allow-empty` };
      }
    }
  }
  const header = (name: string, source: string): string | RenderResult => {
    const value = Mustache.render(source, view, {}, unescaped);
    if (/[\r\n]/.test(value)) {
      return { ok: false, category: 'header-injection', reason: `the rendered ${name}: header would contain a line break (from a member field); refused so that no header can be added` };
    }
    return value.trim();
  };
  const subject = header('Subject', template.subject);
  if (typeof subject !== 'string') return subject;
  const from = template.from === null ? null : header('From', template.from);
  if (from !== null && typeof from !== 'string') return from;
  const replyTo = template.replyTo === null ? null : header('Reply-To', template.replyTo);
  if (replyTo !== null && typeof replyTo !== 'string') return replyTo;
  const extraHeaders: [string, string][] = [];
  for (const [name, source] of template.extraHeaders) {
    const value = header(name, source);
    if (typeof value !== 'string') return value;
    extraHeaders.push([name, value]);
  }
  let text = Mustache.render(template.text, view, {}, unescaped);
  if (template.footer) {
    text = `${text.replace(/\n*$/, '')}\n\n-- \n${Mustache.render(template.footer, view, {}, unescaped)}`;
  }
  const html = template.html === null ? null : Mustache.render(template.html, view);
  return { ok: true, message: { subject, from, replyTo, extraHeaders, text, html } };
}
