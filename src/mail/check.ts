import dns from 'node:dns/promises';
import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { parseSmtpUrl, type SmtpTarget } from '../config/smtp-url.js';
import type { DeliveryError } from '../domain/ports.js';
import { addressOf, composeNotice } from './compose.js';
import { offeredExtensions, offeredLogins } from './nodemailer-internals.js';
import { SmtpTransport } from './smtp.js';
import { TokenError, xoauth2String, type AccessTokens } from './oauth2.js';

/**
 * `mailer check`: the server tested the way a technician would, one step at a time, each with
 * the likely cause in plain words: an office whose mails stop arriving must be able to test the
 * connection itself and be told what is wrong.
 */
export interface CheckStep {
  step: string;
  ok: boolean;
  detail: string;
  /** the likely cause and what to do, when it failed (or a warning when it passed) */
  hint?: string;
}

export interface ServerCheck {
  server: string;
  ok: boolean;
  steps: CheckStep[];
}

const TIMEOUT = 10_000;

interface CheckOptions {
  password?: string; to: string[]; from: string; envelopeFrom?: string; oauth2?: AccessTokens;
  /** the requireTls setting: an unencrypted connection fails the TLS step, before any login */
  requireTls?: boolean;
}

export async function checkServer(url: string, opts: CheckOptions): Promise<ServerCheck> {
  const target = parseSmtpUrl(url, opts.password);
  const result = await runSteps(url, target, opts);
  // Each detail quotes the server or nodemailer, and a server may echo the password it was sent.
  for (const step of result.steps) step.detail = opts.oauth2 ? opts.oauth2.mask(target.mask(step.detail)) : target.mask(step.detail);
  return result;
}

async function runSteps(url: string, target: SmtpTarget, opts: CheckOptions): Promise<ServerCheck> {
  const result: ServerCheck = { server: target.display, ok: false, steps: [] };
  const add = (step: CheckStep) => { result.steps.push(step); return step.ok; };

  // 1. name lookup
  let ip: string;
  try {
    ip = net.isIP(target.host) ? target.host : (await dns.lookup(target.host)).address;
    add({ step: 'name lookup', ok: true, detail: `${target.host} → ${ip}` });
  } catch (err) {
    add({ step: 'name lookup', ok: false, detail: `${target.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, hint: 'the host name does not exist: check its spelling in the SMTP URL' });
    return result;
  }

  // 2. TCP connect
  const tcp = await new Promise<string | null>((resolve) => {
    const socket = net.connect({ host: ip, port: target.port });
    const done = (error: string | null) => { socket.destroy(); resolve(error); };
    socket.setTimeout(TIMEOUT, () => done('ETIMEDOUT'));
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
  if (tcp) {
    add({
      step: 'TCP connect', ok: false, detail: `${ip}:${target.port}: ${tcp}`,
      hint: tcp === 'ECONNREFUSED' ? `nothing listens on port ${target.port}: the server is down, or the port is wrong (587 for STARTTLS, 465 for implicit TLS, 25 for a local relay)`
        : tcp === 'ETIMEDOUT' ? 'no answer: a firewall drops the connection, or the host is wrong' : 'the network refused the connection',
    });
    return result;
  }
  add({ step: 'TCP connect', ok: true, detail: `${ip}:${target.port}` });

  // 3. TLS / STARTTLS, greeting and EHLO
  const connection = new SMTPConnection({
    host: target.host, port: target.port, secure: target.secure,
    connectionTimeout: TIMEOUT, greetingTimeout: TIMEOUT, socketTimeout: TIMEOUT,
    tls: { servername: net.isIP(target.host) ? undefined : target.host },
  });
  connection.on('error', () => {});
  try {
    // A failed TLS handshake or greeting comes as an 'error' event, never to connect's callback.
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.once('end', () => reject(new Error('the server closed the connection')));
      connection.connect(() => resolve());
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { command?: string };
    add({ step: target.secure ? 'TLS and greeting' : 'greeting and STARTTLS', ok: false, detail: e.message, hint: tlsHint(e, target) });
    connection.close();
    return result;
  }
  const extensions = offeredExtensions(connection);
  const tlsState = target.secure ? 'implicit TLS' : connection.secure ? 'STARTTLS' : 'no encryption';
  if (opts.requireTls && !target.secure && !connection.secure) {
    add({ step: 'TLS', ok: false, detail: 'no encryption: the server offers no STARTTLS', hint: 'requireTls is set in mailer.json, so send refuses this server: use one that offers STARTTLS (usually port 587) or smtps:// on port 465' });
    connection.close();
    return result;
  }
  add({
    step: 'TLS', ok: true, detail: tlsState,
    hint: connection.secure ? undefined : 'STARTTLS is not offered: mail and password travel unencrypted; ask the provider, or use smtps:// on port 465',
  });
  add({ step: 'greeting and EHLO', ok: true, detail: extensions.length ? extensions.join(' ') : 'no extensions' });

  // 4. login
  const offersAuth = offeredLogins(connection).length > 0;
  if (opts.oauth2) {
    const tokens = opts.oauth2;
    try {
      await tokens.token();
      add({ step: 'OAuth2 token', ok: true, detail: `fetched from ${tokens.endpoint} for ${tokens.user}` });
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      add({ step: 'OAuth2 token', ok: false, detail: `${err.problem}: ${err.message}`, hint: err.hint });
      connection.close();
      return result;
    }
    const logins = offeredLogins(connection);
    if (logins.length && !logins.includes('XOAUTH2')) {
      add({ step: 'login with XOAUTH2', ok: false, detail: `the server offers ${logins.join(' ')}, not XOAUTH2`, hint: 'OAuth2 needs a server that offers AUTH XOAUTH2 (smtp.office365.com:587, smtp.gmail.com:587); check the SMTP URL' });
      connection.close();
      return result;
    }
    try {
      // nodemailer's XOAUTH2 exchange, with our tokens: renewed once when the server refuses one.
      const oauth2 = {
        getToken: (renew: boolean, cb: (err: Error | null, token?: string) => void) => { tokens.token(renew).then((t) => cb(null, t), (e: Error) => cb(e)); },
        buildXOAuth2Token: (token: string) => xoauth2String(tokens.user, token),
      };
      await new Promise<void>((resolve, reject) => connection.login({ user: tokens.user, oauth2 } as never, (err) => (err ? reject(err) : resolve())));
      add({ step: 'login with XOAUTH2', ok: true, detail: `as ${tokens.user}` });
    } catch (err) {
      const e = err as Error & { response?: string };
      add({ step: 'login with XOAUTH2', ok: false, detail: e.response ?? e.message, hint: err instanceof TokenError ? err.hint : 'the server refused the access token: check oauth2.user (the mailbox the token is for) and that the app may use SMTP (Microsoft 365: SMTP AUTH enabled for the mailbox, scope SMTP.Send)' });
      connection.close();
      return result;
    }
  } else if (target.auth?.user) {
    if (!target.auth.pass) {
      add({ step: 'login', ok: false, detail: `user ${target.auth.user}, no password`, hint: 'set MAILER_SMTP_PASSWORD' });
      connection.close();
      return result;
    }
    try {
      await new Promise<void>((resolve, reject) => connection.login({ user: target.auth!.user, pass: target.auth!.pass! }, (err) => (err ? reject(err) : resolve())));
      add({ step: 'login', ok: true, detail: `as ${target.auth.user}` });
    } catch (err) {
      const e = err as Error & { response?: string; code?: string };
      add({
        step: 'login', ok: false, detail: e.response ?? e.message,
        hint: !offersAuth ? 'the server offers no login on this connection (some only after STARTTLS): check the port and TLS mode' : 'wrong user name or password: check the user in the SMTP URL and MAILER_SMTP_PASSWORD',
      });
      connection.close();
      return result;
    }
  } else {
    add({ step: 'login', ok: true, detail: 'none configured', hint: offersAuth ? 'the server offers AUTH: if it refuses to relay your mail, put the user in the URL (smtp://user@host) and the password in MAILER_SMTP_PASSWORD' : undefined });
  }

  connection.quit();

  // 5. test mails, through the transport `send` uses: its pool, pipelining, envelope in ASCII
  // and error words, so a mail that passes here passes there.
  let allSent = true;
  if (opts.to.length) {
    const transport = new SmtpTransport({ url, password: opts.password, maxConnections: 1, timeouts: { greetingMs: TIMEOUT, socketMs: TIMEOUT }, oauth2: opts.oauth2 });
    try {
      for (const to of opts.to) {
        const raw = await composeNotice({
          from: opts.from, to, subject: 'mailer check: test mail',
          text: `This is a test mail from mailer check, sent through ${target.display}.\nIf you read this, the server delivers to ${to}.\n`,
        });
        try {
          const response = await transport.deliver({ from: opts.envelopeFrom ?? addressOf(opts.from, 'the sender'), to: [to] }, raw);
          add({ step: `test mail to ${to}`, ok: true, detail: response });
        } catch (err) {
          allSent = false;
          const e = err as DeliveryError;
          add({ step: `test mail to ${to}`, ok: false, detail: e.response ?? e.message, hint: 'the server refused this recipient or sender; `mailer errors list` explains the code' });
        }
      }
    } finally {
      await transport.close();
    }
  }
  result.ok = allSent;
  return result;
}

function tlsHint(e: NodeJS.ErrnoException & { command?: string }, target: { port: number; secure: boolean }): string {
  const text = `${e.code ?? ''} ${e.message}`;
  if (/ALTNAME|does not match certificate|Hostname\/IP/i.test(text)) return 'the certificate is not valid for this host name: use the host name the provider gives (the one on its certificate)';
  if (/SELF_SIGNED|self[- ]signed|UNABLE_TO_VERIFY|unable to verify/i.test(text)) return 'the certificate is not signed by a known authority (self-signed or missing chain)';
  if (/CERT_HAS_EXPIRED|expired/i.test(text)) return 'the server\'s certificate has expired: tell the provider';
  if (target.secure && /wrong version number|EPROTO|packet length|ECONNRESET/i.test(text)) {
    return `port ${target.port} does not speak implicit TLS: use smtp:// (STARTTLS, usually port 587) instead of smtps://`;
  }
  if (!target.secure && /timeout|ETIMEDOUT|Greeting never received/i.test(text)) {
    return target.port === 465 ? 'no greeting on port 465: it expects implicit TLS, use smtps://host:465' : 'the server accepted the connection but never greeted: wrong port, or a TLS-only port (use smtps://)';
  }
  return 'the server closed the connection during greeting or STARTTLS';
}
