import type { Language } from '../config/settings.js';
import { ALL_TOPICS, type LinkedSend } from '../domain/types.js';

/**
 * The pages recipients see (`mailer serve`): the unsubscribe page, its confirmation, and the
 * page for a link that is not (or no longer) valid. They speak the member's language, name the
 * sender, and show values from the database and the member file only escaped: a member's name
 * is whatever the office imported, and the page is on the open internet.
 */

/** What the pages' answers carry besides the page itself. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  // The pages carry a send's link in their URL: never framed (clickjacking of the button),
  // never cached, never passed on as a referrer; they load nothing, so nothing is allowed.
  'Content-Security-Policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
};

export interface Page {
  status: number;
  language: Language;
  html: string;
}

/** The settings the pages need: the fallback language and the sender's name. */
export interface PageSettings {
  language: Language;
  organisation?: string;
}

/** The pages that answer a request rather than a member. */
export type PlainPage = 'unknown' | 'bad-request' | 'too-large' | 'not-allowed' | 'error';

interface Texts {
  plain: Record<PlainPage, [title: string, text: string]>;
  unsubscribeTitle: string;
  /** sender, then the member as "name <address>" (both escaped already) */
  youGet: (sender: string | null, member: string) => string;
  question: (topic: string) => string;
  thisTopic: (topic: string) => string;
  allTopics: string;
  /** what no opt-out stops */
  required: string;
  doneTitle: string;
  doneTopic: (email: string, sender: string | null, topic: string) => string;
  doneAll: (email: string, sender: string | null) => string;
}

const TEXTS: Record<Language, Texts> = {
  de: {
    plain: {
      'unknown': ['Link unbekannt', 'Dieser Link ist nicht (oder nicht mehr) gültig.'],
      'bad-request': ['Ungültige Anfrage', 'Bitte benutzen Sie den Link aus der Mail.'],
      'too-large': ['Anfrage zu groß', 'Bitte benutzen Sie den Link aus der Mail.'],
      'not-allowed': ['Nicht erlaubt', 'Bitte benutzen Sie den Link aus der Mail.'],
      'error': ['Entschuldigung', 'Etwas ist schiefgegangen; bitte versuchen Sie es später noch einmal.'],
    },
    unsubscribeTitle: 'Abmelden',
    youGet: (sender, member) => `${sender ? `${sender} schickt` : 'Sie erhalten'} Mails an ${member}.`,
    question: (topic) => `Möchten Sie keine Mails zum Thema „${topic}“ mehr erhalten?`,
    thisTopic: (topic) => `Vom Thema „${topic}“ abmelden`,
    allTopics: 'Von allen Themen abmelden',
    required: 'Mitteilungen, die wir Ihnen schicken müssen (etwa die Einladung zur Mitgliederversammlung), erhalten Sie weiterhin.',
    doneTitle: 'Abgemeldet',
    doneTopic: (email, sender, topic) => `${email} erhält ${sender ? `von ${sender} ` : ''}keine Mails zum Thema „${topic}“ mehr.`,
    doneAll: (email, sender) => `${email} erhält ${sender ? `von ${sender} ` : ''}keine Mails mehr, die man abbestellen kann.`,
  },
  en: {
    plain: {
      'unknown': ['Link unknown', 'This link is not (or no longer) valid.'],
      'bad-request': ['Bad request', 'Please use the link in the mail.'],
      'too-large': ['Too large', 'Please use the link in the mail.'],
      'not-allowed': ['Not allowed', 'Please use the link in the mail.'],
      'error': ['Sorry', 'Something went wrong; please try again later.'],
    },
    unsubscribeTitle: 'Unsubscribe',
    youGet: (sender, member) => `${sender ? `${sender} sends` : 'You get'} mails to ${member}.`,
    question: (topic) => `Would you rather get no more mails about “${topic}”?`,
    thisTopic: (topic) => `Unsubscribe from “${topic}”`,
    allTopics: 'Unsubscribe from all topics',
    required: 'Notices we must send you (such as the invitation to the general meeting) still reach you.',
    doneTitle: 'Unsubscribed',
    doneTopic: (email, sender, topic) => `${email} gets no more mails about “${topic}”${sender ? ` from ${sender}` : ''}.`,
    doneAll: (email, sender) => `${email} gets no more mails${sender ? ` from ${sender}` : ''} that one can unsubscribe from.`,
  },
};

/** The member's language (a field `language` or `sprache`: de, en, Deutsch, English, en-GB …), else the setting's. */
export function memberLanguage(fields: Record<string, unknown>, fallback: Language): Language {
  for (const [key, value] of Object.entries(fields)) {
    if (!/^(language|sprache)$/i.test(key) || typeof value !== 'string') continue;
    const v = value.trim().toLowerCase();
    if (/^(en|eng|english|englisch)([-_].*)?$/.test(v)) return 'en';
    if (/^(de|deu|ger|german|deutsch)([-_].*)?$/.test(v)) return 'de';
  }
  return fallback;
}

/** The sender a page names: the organisation setting, else the display name of the mail's From (else its address). */
export function senderName(from: string | null, organisation: string | undefined): string | null {
  if (organisation) return organisation;
  // A From with placeholders names each member's own sender: no one name to show.
  if (!from || from.includes('{{')) return null;
  const m = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<]*?))\s*<([^>]*)>\s*$/.exec(from);
  if (!m) return from.trim() || null;
  const name = (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).trim();
  return name || m[3].trim() || null;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page asking whether to unsubscribe; its buttons post the confirmation value and which scope. */
export function unsubscribePage(found: LinkedSend, confirm: string, settings: PageSettings): Page {
  const language = memberLanguage(found.memberFields, settings.language);
  const t = TEXTS[language];
  const sender = senderName(found.sender, settings.organisation);
  const email = found.email ?? '';
  const member = found.memberName ? `${escapeHtml(found.memberName)} &lt;${escapeHtml(email)}&gt;` : escapeHtml(email);
  const topic = escapeHtml(found.topic);
  const button = (scope: 'topic' | 'all', label: string) =>
    `<form method="post"><input type="hidden" name="confirm" value="${escapeHtml(confirm)}"><input type="hidden" name="scope" value="${scope}"><button type="submit">${label}</button></form>`;
  const body = [
    `<p>${t.youGet(sender === null ? null : escapeHtml(sender), member)}</p>`,
    `<p>${t.question(topic)}</p>`,
    button('topic', t.thisTopic(topic)),
    button('all', t.allTopics),
    `<p>${t.required}</p>`,
  ].join('\n');
  return { status: 200, language, html: html(language, t.unsubscribeTitle, body) };
}

/** The confirmation after an unsubscribe from one topic or, with ALL_TOPICS, from all. */
export function unsubscribedPage(found: LinkedSend, topic: string, settings: PageSettings): Page {
  const language = memberLanguage(found.memberFields, settings.language);
  const t = TEXTS[language];
  const senderText = senderName(found.sender, settings.organisation);
  const sender = senderText === null ? null : escapeHtml(senderText);
  const email = escapeHtml(found.email ?? '');
  const text = topic === ALL_TOPICS ? t.doneAll(email, sender) : t.doneTopic(email, sender, escapeHtml(topic));
  return { status: 200, language, html: html(language, t.doneTitle, `<p>${text}</p>\n<p>${t.required}</p>`) };
}

const PLAIN_STATUS: Record<PlainPage, number> = { 'unknown': 404, 'bad-request': 400, 'too-large': 413, 'not-allowed': 405, 'error': 500 };

/**
 * A page that knows no member: in the setting's language. The page of an unknown link is the
 * same bytes whatever the link was (never there, forged, of another purpose), so it tells nothing.
 */
export function plainPage(kind: PlainPage, settings: PageSettings): Page {
  const [title, text] = TEXTS[settings.language].plain[kind];
  return { status: PLAIN_STATUS[kind], language: settings.language, html: html(settings.language, title, `<p>${text}</p>`) };
}

function html(language: Language, title: string, body: string): string {
  return `<!doctype html><html lang="${language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<title>${title}</title></head><body><h1>${title}</h1>\n${body}\n</body></html>\n`;
}
