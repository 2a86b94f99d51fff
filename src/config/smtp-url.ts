import { badInput } from '../errors.js';

export interface SmtpTarget {
  host: string;
  port: number;
  secure: boolean;
  auth?: { user: string; pass?: string };
  display: string;
  /** puts every password this target knows out of sight in a text from its server */
  mask: (text: string) => string;
}

/** `smtp://user@host:587` (STARTTLS when offered) or `smtps://user@host:465` (implicit TLS). */
export function parseSmtpUrl(url: string, password?: string): SmtpTarget {
  const parts = splitUserinfo(url);
  const notUrl = () => badInput(`"${redact(url)}" is not an SMTP URL`, 'write smtp://user@mail.example.org:587 or smtps://user@mail.example.org:465');
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url)?.[1].toLowerCase();
  if (!scheme) throw notUrl();
  if (scheme !== 'smtp:' && scheme !== 'smtps:') {
    throw badInput(`"${redact(url)}" is not an SMTP URL (it starts with ${scheme})`, 'write smtp://… (STARTTLS) or smtps://… (implicit TLS)');
  }
  // The host and port are read without the user and password: WHATWG URL ends the authority
  // at the first "/", "?" or "#", so a password holding one would turn into a host, a port or a path.
  let u: URL;
  try {
    u = new URL(`${scheme}//${parts.hostPart}`);
  } catch {
    throw notUrl();
  }
  if (!u.hostname) throw notUrl();
  const secure = scheme === 'smtps:';
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  const user = parts.user === null ? '' : decodeLeniently(parts.user);
  const urlPass = parts.pass ? decodeLeniently(parts.pass) : undefined;
  const pass = password ?? urlPass;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    secure,
    auth: user ? { user, pass } : undefined,
    display: `${scheme}//${user ? `${user}@` : ''}${u.host}`,
    mask: secretMask(user, [password, urlPass, parts.pass ?? undefined]),
  };
}

/** The URL as it may be shown: never with its password, whatever characters that holds. */
export function redact(url: string): string {
  const { start, pass, hostPart } = splitUserinfo(url);
  if (pass === null) return url;
  return `${url.slice(0, start)}:***@${hostPart}`;
}

/**
 * An SMTP URL has no path, query or fragment, so its user and password end at its last "@",
 * and the password begins after the user's first ":". `start` is where the password's ":" is.
 */
function splitUserinfo(url: string): { user: string | null; pass: string | null; start: number; hostPart: string } {
  const authority = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0].length ?? 0;
  const at = url.lastIndexOf('@');
  if (at < authority) return { user: null, pass: null, start: 0, hostPart: url.slice(authority) };
  const userinfo = url.slice(authority, at);
  const colon = userinfo.indexOf(':');
  return {
    user: colon < 0 ? userinfo : userinfo.slice(0, colon),
    pass: colon < 0 ? null : userinfo.slice(colon + 1),
    start: colon < 0 ? at : authority + colon,
    hostPart: url.slice(at + 1),
  };
}

/**
 * Percent-encoding is decoded where the text is valid percent-encoding; otherwise ("50%off")
 * the text is the password as it was typed, as nobody could have meant anything else.
 */
function decodeLeniently(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * A server may echo what it was sent ("535 Authentication failed for <password>"): each password
 * is put out of sight in its plain, percent-encoded and base64 forms, and in AUTH PLAIN's base64
 * of user and password, before a reply is stored or shown.
 */
export function secretMask(user: string, passwords: readonly (string | undefined)[]): (text: string) => string {
  const forms = new Set<string>();
  for (const pass of passwords) {
    if (!pass) continue;
    forms.add(pass);
    forms.add(encodeURIComponent(pass));
    forms.add(Buffer.from(pass).toString('base64'));
    forms.add(Buffer.from(`\0${user}\0${pass}`).toString('base64'));
  }
  // Longest first, so a form is never half-masked by a shorter one it contains.
  const list = [...forms].sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  return (text) => {
    for (const form of list) {
      if (text.includes(form)) text = text.split(form).join('***');
    }
    return text;
  };
}
