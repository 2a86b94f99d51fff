import net from 'node:net';
import { Readable } from 'node:stream';
import { ExitCode, MailerError } from '../errors.js';
import { domainToASCII } from 'node:url';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { internals } from './nodemailer-internals.js';
import type { Envelope, OutgoingMessage, Transport } from '../domain/ports.js';
import { DeliveryError } from '../domain/ports.js';
import { parseSmtpUrl } from '../config/smtp-url.js';
import type { AccessTokens } from './oauth2.js';
// MAIL FROM, RCPT TO and DATA in one write where the server offers PIPELINING
import './pipelining.js';

export interface SmtpOptions {
  url: string;
  /** from $MAILER_SMTP_PASSWORD; wins over a password inside the URL */
  password?: string;
  maxConnections: number;
  /** how long a greeting and each answer may take; shorter only in tests */
  timeouts?: { greetingMs: number; socketMs: number };
  /** the requireTls setting: every connection must be encrypted (smtps://, or STARTTLS) */
  requireTls?: boolean;
  /** XOAUTH2 with these tokens instead of a password (the oauth2 setting) */
  oauth2?: AccessTokens;
}

const CONNECT_TIMEOUT = 15_000;
const TIMEOUTS = { greetingMs: 15_000, socketMs: 60_000 };

/**
 * nodemailer leaves Nagle's algorithm on, so the short final "." of every message waits for
 * the server's delayed ACK (~40 ms on Linux): 25 mails a second per connection at best. It
 * takes a socket we open with TCP_NODELAY instead (its `getSocket` option) and does TLS and
 * STARTTLS on it as usual.
 */
function openNoDelaySocket(options: { host?: string; port?: number }, callback: (err: Error | null, socket?: { connection: net.Socket }) => void): void {
  const socket = coalesceWrites(net.connect({ host: options.host, port: options.port!, noDelay: true }));
  const fail = (err: Error) => {
    socket.destroy();
    callback(err);
  };
  const timedOut = () => fail(Object.assign(new Error(`connection to ${options.host}:${options.port} timed out`), { code: 'ETIMEDOUT' }));
  socket.setTimeout(CONNECT_TIMEOUT, timedOut);
  socket.once('error', fail);
  socket.once('connect', () => {
    // From here on, errors and timeouts are nodemailer's. The listener goes too, not only the
    // timer: nodemailer's own socket timeout would fire it, and a hung login would be reported
    // as a connection that timed out.
    socket.off('error', fail);
    socket.off('timeout', timedOut);
    socket.setTimeout(0);
    callback(null, { connection: socket });
  });
}

/**
 * Writes made in one turn of the event loop leave in one system call. nodemailer writes a
 * message and its final "." separately: five writes a mail where four do (20,000 mails: 3 % of
 * the wall time, each write to a loopback socket costing ~10 µs of kernel time). TLS writes go
 * past socket.write, straight to the handle, and are not affected.
 */
export function coalesceWrites(socket: net.Socket): net.Socket {
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: unknown[]) {
    if (!this.writableCorked) {
      this.cork();
      process.nextTick(() => this.uncork());
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as net.Socket['write'];
  return socket;
}

export class SmtpTransport implements Transport {
  readonly kind = 'smtp' as const;
  readonly description: string;
  /** host:port, for the steps that time out */
  private readonly address: string;
  private readonly transporter: ReturnType<typeof nodemailer.createTransport>;
  /**
   * nodemailer's SMTP pool under the transporter: `send(mail, callback)`, its transport
   * contract; null where its inside is not the one known, and each mail goes through sendMail.
   */
  private readonly pool: { send(mail: unknown, callback: Reply): boolean } | null;
  /** every reply leaves this class through it, so no password reaches the log or the screen */
  private readonly mask: (text: string) => string;
  private readonly connection: { host: string; port: number; secure: boolean };
  private readonly requireTls: boolean;
  private readonly oauth2?: AccessTokens;
  private renewedAfterRefusal = false;
  readonly mailsPerConnection: number;

  constructor(options: SmtpOptions) {
    const { display, mask, ...connection } = parseSmtpUrl(options.url, options.password);
    const tokens = options.oauth2;
    this.oauth2 = tokens;
    this.description = display;
    this.mask = tokens ? (text) => tokens.mask(mask(text)) : mask;
    this.address = `${connection.host}:${connection.port}`;
    this.connection = connection;
    this.requireTls = !!options.requireTls && !connection.secure;
    this.transporter = nodemailer.createTransport({
      ...connection,
      ...(tokens ? { auth: xoauth2Auth(tokens) } : {}),
      // Each connection of the run insists on STARTTLS, not just the first: a server (or a
      // man in the middle) that stops offering it mid-run gets no mail in clear.
      ...(this.requireTls ? { requireTLS: true } : {}),
      pool: true,
      maxConnections: options.maxConnections,
      maxMessages: Infinity,
      connectionTimeout: CONNECT_TIMEOUT,
      greetingTimeout: (options.timeouts ?? TIMEOUTS).greetingMs,
      socketTimeout: (options.timeouts ?? TIMEOUTS).socketMs,
      getSocket: openNoDelaySocket,
    } as SMTPPool.Options);
    const pool = (this.transporter as unknown as { transporter?: unknown }).transporter;
    this.pool = internals.pool && pool instanceof SMTPPool ? pool as unknown as NonNullable<SmtpTransport['pool']> : null;
    // A connection takes the next mail from the pool's queue while its last one is answered
    // (pipelining.ts): with one being sent, one written ahead and one waiting per connection,
    // that queue does not run dry.
    this.mailsPerConnection = this.pool && internals.lookahead ? 3 : 1;
  }

  /**
   * Straight to the pool, past nodemailer's Mailer: the message is finished already, and the
   * Mailer's per-message work (plugins, a MIME tree for the raw bytes, a random boundary drawn
   * for it) was a tenth of a send's CPU. The object handed over is what nodemailer's pool reads
   * of a mail: its envelope, a Message-ID and header for the log, and the bytes. That shape is
   * nodemailer's inside, named and checked in nodemailer-internals.ts; the e2e tests send
   * through it against a real SMTP server. Without it, nodemailer's public sendMail takes the
   * same envelope and bytes.
   */
  /**
   * With requireTls, before anything is sent: a server on smtp:// must offer STARTTLS and
   * complete it, else exit 3 naming the server and the setting. (smtps:// is TLS from the start.)
   */
  async checkTls(): Promise<void> {
    if (!this.requireTls) return;
    const { host, port, secure } = this.connection;
    const conn = new SMTPConnection({ host, port, secure, requireTLS: true, connectionTimeout: CONNECT_TIMEOUT, greetingTimeout: TIMEOUTS.greetingMs, logger: false } as never);
    const failure = await new Promise<(Error & { code?: string; command?: string }) | null>((resolve) => {
      conn.once('error', (err: Error) => resolve(err));
      conn.connect(() => resolve(null));
    });
    if (failure) conn.close(); else conn.quit();
    if (!failure) return;
    const none = failure.command === 'STARTTLS' || /STARTTLS/.test(failure.message);
    throw new MailerError(`requireTls is set, and the mail server ${this.description} ${none ? 'offers no TLS (no STARTTLS)' : `could not be reached over TLS: ${this.mask(failure.message)}`}: nothing was sent`, {
      exitCode: ExitCode.serverUnusable,
      hint: none ? 'use a server that offers STARTTLS (usually port 587) or smtps:// on port 465; "requireTls": false in mailer.json sends without encryption'
        : '`mailer check` tests the server step by step',
    });
  }

  /**
   * With OAuth2, a login refused outright (535, where no 334 challenge let nodemailer renew the
   * token itself) gets one new token and one more try: the refusal came before MAIL FROM, so the
   * mail cannot have gone out. A second refusal is the server's last word.
   */
  async deliver(envelope: Envelope, raw: Buffer | OutgoingMessage): Promise<string> {
    try {
      return await this.deliverOnce(envelope, raw);
    } catch (err) {
      const e = err as DeliveryError;
      if (!this.oauth2 || this.renewedAfterRefusal || e.code !== 'EAUTH' || e.responseCode === undefined) throw err;
      this.renewedAfterRefusal = true;
      try {
        await this.oauth2.token(true);
      } catch {
        throw err;
      }
      return this.deliverOnce(envelope, raw);
    }
  }

  private deliverOnce(envelope: Envelope, raw: Buffer | OutgoingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const smtpEnvelope = { from: asciiDomain(envelope.from), to: envelope.to.map(asciiDomain) };
      const body = () => (Buffer.isBuffer(raw) ? raw : Readable.from(raw.chunks(), { objectMode: false }));
      const mail = {
        data: {},
        message: {
          getEnvelope: () => smtpEnvelope,
          messageId: () => '',
          getHeader: () => '',
          // SMTPConnection.send takes a Buffer as well as a stream, and writes a Buffer at once;
          // a message with files streams them in as it goes.
          createReadStream: () => body(),
        },
      };
      const reply: Reply = (err, info) => {
        if (!err) {
          resolve(this.mask(String(info?.response ?? '250 accepted')));
          return;
        }
        const e = err as NodeJS.ErrnoException & { responseCode?: number; response?: string; command?: string } & Interrupted;
        reject(new DeliveryError({
          code: e.code, command: e.command, responseCode: e.responseCode,
          response: e.response === undefined ? undefined : this.mask(e.response),
          message: this.mask(e.step ? this.whereItBroke(e) : e.message),
          afterMessage: e.step === AWAITING_REPLY || undefined,
        }));
      };
      if (!this.pool) {
        this.transporter.sendMail({ envelope: smtpEnvelope, raw: body() }, reply as never);
        return;
      }
      const queued = this.pool.send(mail, reply);
      if (!queued) reject(new DeliveryError({ code: 'ECONNECTION', message: 'the SMTP connection pool is closed' }));
    });
  }

  /** "login at mail.example.org:587 timed out": the step, not nodemailer's bare "Timeout". */
  private whereItBroke(e: NodeJS.ErrnoException & Interrupted): string {
    if (e.step === AWAITING_REPLY) {
      return e.code === 'ETIMEDOUT'
        ? `${this.address} did not confirm the message in time, after the whole of it was sent`
        : `the connection to ${this.address} broke after the whole message was sent, before the server confirmed it (${e.message})`;
    }
    if (e.code === 'ETIMEDOUT') return `${e.step} at ${this.address} timed out`;
    if (e.code === 'ECONNECTION') return `the connection to ${this.address} broke during ${e.step} (${e.message})`;
    // TLS and protocol errors say what went wrong in their own words
    return e.message;
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}

/**
 * nodemailer's XOAUTH2 with our tokens: it asks with renew=false for each login, and once with
 * renew=true when the server answers the token with 334 (RFC 7628's error challenge) or refuses
 * it; the expiry it is told makes it ask again before the token runs out. nodemailer writes the
 * token to no log of its own (its logger is off, and it logs the command as "/* secret *\/").
 */
export function xoauth2Auth(tokens: AccessTokens): { type: 'OAuth2'; user: string; provisionCallback: (user: string, renew: boolean, cb: (err: Error | null, token?: string, expires?: number) => void) => void } {
  return {
    type: 'OAuth2',
    user: tokens.user,
    provisionCallback: (_user, renew, cb) => {
      tokens.token(renew).then((token) => cb(null, token, tokens.expiresAt), (err: Error) => cb(err));
    },
  };
}

/**
 * The envelope's domain in ASCII (IDNA, as the To: header has it): a server without SMTPUTF8
 * refuses `info@bücher.de` in raw UTF-8 (Postfix: 553 5.6.7), and takes `info@xn--bcher-kva.de`.
 * A local part outside ASCII has no such form; it needs SMTPUTF8 (see below).
 */
export function asciiDomain(address: string): string {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1);
  if (at < 0 || /^[\x00-\x7f]*$/.test(domain)) return address;
  return `${address.slice(0, at)}@${domainToASCII(domain) || domain}`;
}

type Reply = (err: Error | null, info?: { response?: string }) => void;

/** What a broken connection tells about where it broke, set on nodemailer's error. */
interface Interrupted {
  step?: string;
}

/** The step after the message's final dot: from here on the server may have taken the mail. */
const AWAITING_REPLY = 'the reply to the message';

/** The parts of nodemailer's SMTPConnection read and wrapped here (nodemailer-internals.ts looks for them). */
interface Connection {
  _supportedExtensions: string[];
  /** the step the connection is at, set by the wrappers below */
  _mailerStep?: string;
  _sendCommand(command: string, ...rest: unknown[]): void;
  _createSendStream(callback: (err: Error | null, str?: string) => void): NodeJS.ReadableStream;
  _setEnvelope(envelope: { from: string; to: string[] }, callback: (err: Error | null) => void): void;
  _onError(err: Error | string, type: string, data: unknown, command: string): void;
  _onConnect(): void;
  _formatError(message: string, code: string, response: string | false, command: string): Error;
}

const STEPS: Record<string, string> = {
  EHLO: 'EHLO', HELO: 'EHLO', LHLO: 'EHLO', STARTTLS: 'STARTTLS', AUTH: 'login',
  // pipelined (RFC 2920): written together, answered together
  MAIL: 'the envelope (MAIL FROM, RCPT TO, DATA)', RCPT: 'the envelope (MAIL FROM, RCPT TO, DATA)', DATA: 'the envelope (MAIL FROM, RCPT TO, DATA)',
};

/**
 * nodemailer's errors for a dropped or silent connection ("Timeout", "Connection closed
 * unexpectedly") say neither which step hung nor whether the message had been sent. Both
 * matter: a hung login makes the server unusable, and a connection lost after the final dot
 * leaves the mail's fate unknown (it may have arrived; RFC 5321, 4.1.1.4: the reply to the dot
 * is what accepts it), so it must not be sent again as if nothing had happened.
 */
export function reportWhereItBroke(proto: Connection): void {
  if ((proto as { mailerSteps?: boolean }).mailerSteps) return;
  (proto as { mailerSteps?: boolean }).mailerSteps = true;
  const sendCommand = proto._sendCommand;
  proto._sendCommand = function (this: Connection, command: string, ...rest: unknown[]) {
    // AUTH LOGIN's user name and password lines keep the step at "login".
    const verb = /^[A-Z]+/.exec(command)?.[0];
    if (verb && STEPS[verb]) this._mailerStep = STEPS[verb];
    return sendCommand.call(this, command, ...rest);
  };
  const createSendStream = proto._createSendStream;
  proto._createSendStream = function (this: Connection, callback) {
    this._mailerStep = 'sending the message';
    const stream = createSendStream.call(this, (err, str) => {
      this._mailerStep = undefined;
      callback(err, str);
    });
    // The stream ends once its last bytes, the final dot, are written to the socket.
    stream.once('end', () => {
      if (this._mailerStep === 'sending the message') this._mailerStep = AWAITING_REPLY;
    });
    return stream;
  };
  const onConnect = proto._onConnect;
  proto._onConnect = function (this: Connection) {
    this._mailerStep = 'the greeting';
    return onConnect.call(this);
  };
  const onError = proto._onError;
  proto._onError = function (this: Connection, err, type, data, command) {
    // Not connected yet, or between two mails: nodemailer's words are all there is to say.
    if (this._mailerStep === undefined) return onError.call(this, err, type, data, command);
    const error = typeof err === 'string' ? new Error(err) : err;
    (error as Interrupted).step = this._mailerStep;
    return onError.call(this, error, type, data, command);
  };
  // No SMTPUTF8, and an address whose local part is not ASCII: refused before it is written, in
  // words, not as a 553 5.6.7 from the server or a mangled address.
  const setEnvelope = proto._setEnvelope;
  proto._setEnvelope = function (this: Connection, envelope, callback) {
    if (!this._supportedExtensions.includes('SMTPUTF8')) {
      const utf8 = [envelope.from, ...envelope.to].find((a) => /[^\x00-\x7f]/.test(a));
      if (utf8) {
        return callback(this._formatError(`<${utf8}> has letters outside ASCII before the @, and the server does not offer SMTPUTF8`, 'ESMTPUTF8', false, 'RCPT TO'));
      }
    }
    return setEnvelope.call(this, envelope, callback);
  };
}

// Another nodemailer's inside: its own words for a broken connection.
if (internals.steps) reportWhereItBroke(SMTPConnection.prototype as unknown as Connection);
