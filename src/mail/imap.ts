import { ImapFlow } from 'imapflow';
import { parseImapUrl, type ImapTarget } from '../config/imap-url.js';
import { ExitCode, MailerError } from '../errors.js';
import { TokenError, type AccessTokens } from './oauth2.js';

/**
 * The bounce mailbox over IMAP (imapflow): read what arrived since the last fetch without
 * touching any flag (BODY.PEEK, RFC 3501 6.4.5), and move the bounces to their own folder.
 * Every message that leaves here says which step failed: connect, TLS, login, folder.
 */
export interface MailboxEntry {
  uid: number;
  size: number;
}

/** Messages larger than this are no bounce (a bounce quotes headers, not whole attachments): not read. */
export const MAX_BOUNCE_BYTES = 5_000_000;
const TIMEOUT = 20_000;

export class ImapMailbox {
  private constructor(private readonly client: ImapFlow, readonly target: ImapTarget, readonly uidValidity: string, private readonly mask: (t: string) => string) {}

  get description(): string {
    return this.target.display;
  }

  /**
   * Connects, logs in (a password, or XOAUTH2 with a token renewed once if the server refuses
   * it) and opens the folder; `readOnly` (EXAMINE) for a dry run, which then cannot change a thing.
   */
  static async open(url: string, opts: { password?: string; oauth2?: AccessTokens; readOnly: boolean; requireTls?: boolean }): Promise<ImapMailbox> {
    const target = parseImapUrl(url, opts.password);
    const mask = (t: string) => (opts.oauth2 ? opts.oauth2.mask(target.mask(t)) : target.mask(t));
    const fail = (step: string, detail: string, hint: string) => new MailerError(`the bounce mailbox ${target.display} cannot be used: ${step} failed (${mask(detail)})`, { exitCode: ExitCode.serverUnusable, hint });
    const user = opts.oauth2?.user ?? target.user;
    if (!user) throw fail('login', 'no user in the URL', 'write the user in bounceMailbox: imaps://user@imap.example.org/INBOX');
    if (!opts.oauth2 && !target.pass) throw fail('login', `user ${user}, no password`, 'set MAILER_IMAP_PASSWORD (or "oauth2" in mailer.json)');
    let client: ImapFlow | null = null;
    for (let renew = false; ; renew = true) {
      let accessToken: string | undefined;
      if (opts.oauth2) {
        try {
          accessToken = await opts.oauth2.token(renew);
        } catch (err) {
          if (err instanceof TokenError) throw new MailerError(`the bounce mailbox ${target.display} cannot be used: OAuth2 token step failed: ${err.message}`, { exitCode: ExitCode.serverUnusable, hint: err.hint });
          throw err;
        }
      }
      client = new ImapFlow({
        host: target.host, port: target.port, secure: target.secure,
        auth: accessToken ? { user, accessToken } : { user, pass: target.pass! },
        logger: false, disableAutoIdle: true,
        connectionTimeout: TIMEOUT, greetingTimeout: TIMEOUT, socketTimeout: TIMEOUT,
        tls: { servername: /^[\d.:]+$/.test(target.host) ? undefined : target.host },
        // imap:// upgrades when the server offers STARTTLS; with requireTls it must, or no
        // password is sent: the offer itself came in clear, and a man in the middle can strip it.
        ...(opts.requireTls && !target.secure ? { doSTARTTLS: true } : {}),
      } as ConstructorParameters<typeof ImapFlow>[0]);
      client.on('error', () => {});
      try {
        await client.connect();
        break;
      } catch (err) {
        const e = err as Error & { code?: string; authenticationFailed?: boolean; responseText?: string; response?: string };
        client.close();
        if (e.authenticationFailed) {
          // A refused access token may just have expired early: one new one, once.
          if (opts.oauth2 && !renew) continue;
          throw fail(opts.oauth2 ? 'login with XOAUTH2' : 'login', e.responseText ?? e.response ?? e.message,
            opts.oauth2 ? 'the server refused the access token: check oauth2.user and that the app may use IMAP (scope IMAP.AccessAsUser.All / https://mail.google.com/)' : 'wrong user name or password: check the user in bounceMailbox and MAILER_IMAP_PASSWORD');
        }
        // imapflow also marks a failed handshake and a PREAUTH greeting so: those are the TLS step's below.
        if (opts.requireTls && (e as { tlsFailed?: boolean }).tlsFailed && /does not support STARTTLS/i.test(e.message)) {
          throw fail('STARTTLS', e.message, 'requireTls is set in mailer.json and this server offers no STARTTLS: use imaps:// (port 993) if it has it, or ask the provider for TLS');
        }
        throw connectFailure(e, target, fail);
      }
    }
    let uidValidity: string;
    try {
      await client.mailboxOpen(target.folder, { readOnly: opts.readOnly });
      const box = client.mailbox;
      uidValidity = box ? String(box.uidValidity) : '0';
    } catch (err) {
      await client.logout().catch(() => client!.close());
      const e = err as Error & { responseText?: string };
      throw fail(`opening the folder ${target.folder}`, e.responseText ?? e.message, 'check the folder at the end of bounceMailbox (imaps://user@host/INBOX)');
    }
    return new ImapMailbox(client, target, uidValidity, mask);
  }

  /** The messages whose UID is above `after`, oldest first, with their sizes (nothing is read yet). */
  async newer(after: number): Promise<MailboxEntry[]> {
    const list = await this.reading('listing the new messages', () => this.client.fetchAll(`${after + 1}:*`, { uid: true, size: true }, { uid: true }));
    // "n:*" names the last message even when every UID is below n (RFC 3501 6.4.8).
    return list.filter((m) => m.uid > after).map((m) => ({ uid: m.uid, size: m.size ?? 0 })).sort((a, b) => a.uid - b.uid);
  }

  /** One message's bytes, read with BODY.PEEK[]: its \Seen flag stays as it was. */
  async read(uid: number): Promise<Buffer | null> {
    const m = await this.reading(`reading message ${uid}`, () => this.client.fetchOne(String(uid), { uid: true, source: true }, { uid: true }));
    return m && m.source ? m.source : null;
  }

  /**
   * A connection lost mid-fetch is the mailbox's trouble, not a bug: named, masked and marked
   * as a server that cannot be used, so `mailer run` warns and goes on sending.
   */
  private async reading<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as Error & { responseText?: string };
      throw new MailerError(`the bounce mailbox ${this.description}: ${step} failed (${this.mask(e.responseText ?? e.message)})`, {
        exitCode: ExitCode.serverUnusable, hint: 'nothing was moved; the next fetch reads from where this one stopped',
      });
    }
  }

  /** Moves messages to `folder`, made first if it is missing (MOVE, RFC 6851, else COPY and EXPUNGE). */
  async moveTo(uids: number[], folder: string): Promise<void> {
    if (uids.length === 0) return;
    try {
      const exists = (await this.client.list()).some((f) => f.path === folder);
      if (!exists) await this.client.mailboxCreate(folder);
      const moved = await this.client.messageMove(uids.join(','), folder, { uid: true });
      if (!moved) throw new Error('the server did not move them');
    } catch (err) {
      const e = err as Error & { responseText?: string };
      throw new MailerError(`the bounce mailbox ${this.description}: moving ${uids.length} bounce${uids.length > 1 ? 's' : ''} to ${folder} failed (${this.mask(e.responseText ?? e.message)})`, {
        exitCode: ExitCode.serverUnusable, hint: 'they are imported; the next fetch moves them (check that the account may create folders)',
      });
    }
  }

  async close(): Promise<void> {
    try {
      await this.client.logout();
    } catch {
      this.client.close();
    }
  }
}

function connectFailure(e: Error & { code?: string }, target: ImapTarget, fail: (step: string, detail: string, hint: string) => MailerError): MailerError {
  const text = `${e.code ?? ''} ${e.message}`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return fail('name lookup', `${target.host}: ${e.code}`, 'the host name does not exist: check its spelling in bounceMailbox');
  if (e.code === 'ECONNREFUSED') return fail('connect', `${target.host}:${target.port}: ECONNREFUSED`, `nothing listens on port ${target.port}: the server is down, or the port is wrong (993 for imaps://, 143 for imap://)`);
  if (/ALTNAME|does not match certificate|Hostname\/IP/i.test(text)) return fail('TLS', e.message, 'the certificate is not valid for this host name: use the host name on the provider\'s certificate');
  if (/SELF_SIGNED|self[- ]signed|UNABLE_TO_VERIFY|unable to verify|CERT_|certificate/i.test(text)) return fail('TLS', e.message, 'the certificate is not signed by a known authority; a private CA is trusted with NODE_EXTRA_CA_CERTS=<ca.pem>');
  if (target.secure && /wrong version number|EPROTO|packet length|ECONNRESET/i.test(text)) return fail('TLS', e.message, `port ${target.port} does not speak implicit TLS: use imap:// (STARTTLS, port 143) instead of imaps://`);
  if (/timeout|ETIMEDOUT/i.test(text)) return fail('connect', `${target.host}:${target.port}: no answer`, 'a firewall drops the connection, the host is wrong, or the port expects TLS (imaps://, 993)');
  return fail('connect', e.message, 'the server closed the connection during the greeting or TLS');
}

/**
 * `mailer check` for the bounce mailbox: connect, log in and open the folder read-only, as a
 * fetch would; one step, named by the error when it fails.
 */
export async function checkMailbox(url: string, opts: { password?: string; oauth2?: AccessTokens; requireTls?: boolean }): Promise<{ server: string; ok: boolean; steps: { step: string; ok: boolean; detail: string; hint?: string }[] }> {
  const target = parseImapUrl(url, opts.password);
  try {
    const box = await ImapMailbox.open(url, { ...opts, readOnly: true });
    await box.close();
    return { server: target.display, ok: true, steps: [{ step: 'connect, login and folder', ok: true, detail: `${target.folder} opened read-only as ${opts.oauth2?.user ?? target.user}${opts.oauth2 ? ' with XOAUTH2' : ''}` }] };
  } catch (err) {
    if (!(err instanceof MailerError)) throw err;
    return { server: target.display, ok: false, steps: [{ step: 'connect, login and folder', ok: false, detail: err.message.replace(/^the bounce mailbox \S+ cannot be used: /, ''), hint: err.hint }] };
  }
}
