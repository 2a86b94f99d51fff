import { badInput } from '../errors.js';
import { secretMask } from './smtp-url.js';

export interface ImapTarget {
  host: string;
  port: number;
  /** imaps:// is TLS from the start; imap:// upgrades with STARTTLS when the server offers it */
  secure: boolean;
  user: string;
  pass?: string;
  /** the folder the bounces land in (default INBOX) */
  folder: string;
  /** the URL as it may be shown: without a password */
  display: string;
  mask: (text: string) => string;
}

/** `imaps://user@imap.example.org/INBOX` (993, TLS) or `imap://user@host:143/Bounces` (STARTTLS when offered). */
export function parseImapUrl(url: string, password?: string): ImapTarget {
  const hint = 'write imaps://user@imap.example.org/INBOX (the password in MAILER_IMAP_PASSWORD)';
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url)?.[1].toLowerCase();
  if (scheme !== 'imap:' && scheme !== 'imaps:') throw badInput(`bounceMailbox "${redactImap(url)}" is not an IMAP URL`, hint);
  const rest = url.slice(scheme.length + 2);
  // The folder starts at the first "/" after the host; the user and password end at the last "@" before it.
  const slash = rest.indexOf('/', rest.lastIndexOf('@') + 1);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  let u: URL;
  try {
    u = new URL(`${scheme}//${authority.slice(at + 1)}`);
  } catch {
    throw badInput(`bounceMailbox "${redactImap(url)}" is not an IMAP URL`, hint);
  }
  if (!u.hostname) throw badInput(`bounceMailbox "${redactImap(url)}" has no host`, hint);
  const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const urlPass = colon < 0 ? undefined : decode(userinfo.slice(colon + 1));
  const folder = slash < 0 ? 'INBOX' : decode(rest.slice(slash + 1).replace(/\/+$/, '')) || 'INBOX';
  const secure = scheme === 'imaps:';
  const port = u.port ? Number(u.port) : secure ? 993 : 143;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''), port, secure, user, pass: password ?? urlPass, folder,
    display: `${scheme}//${user ? `${user}@` : ''}${u.host}/${folder}`,
    mask: secretMask(user, [password, urlPass]),
  };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The URL without its password, for messages about it. */
export function redactImap(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*):[^@]*@/i, '$1:***@');
}
