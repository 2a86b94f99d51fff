import { badInput } from '../errors.js';

/** `smtp://user@host:587` (STARTTLS when offered) or `smtps://user@host:465` (implicit TLS). */
export function parseSmtpUrl(url: string, password?: string): { host: string; port: number; secure: boolean; auth?: { user: string; pass?: string }; display: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badInput(`"${redact(url)}" is not an SMTP URL`, 'write smtp://user@mail.example.org:587 or smtps://user@mail.example.org:465');
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') {
    throw badInput(`"${redact(url)}" is not an SMTP URL (it starts with ${u.protocol})`, 'write smtp://… (STARTTLS) or smtps://… (implicit TLS)');
  }
  const secure = u.protocol === 'smtps:';
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  const user = decodeURIComponent(u.username);
  const pass = password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    secure,
    auth: user ? { user, pass } : undefined,
    display: `${u.protocol}//${user ? `${user}@` : ''}${u.host}`,
  };
}

/** The URL as it may be shown: never with its password. */
export function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}
