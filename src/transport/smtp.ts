import net from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { Envelope, Transport } from '../core/ports.js';
import { DeliveryError } from '../core/ports.js';
import { parseSmtpUrl } from '../core/smtp-url.js';
// MAIL FROM, RCPT TO and DATA in one write where the server offers PIPELINING
import './pipelining.js';

export interface SmtpOptions {
  url: string;
  /** from $MAILER_SMTP_PASSWORD; wins over a password inside the URL */
  password?: string;
  maxConnections: number;
}

const CONNECT_TIMEOUT = 15_000;

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
  socket.setTimeout(CONNECT_TIMEOUT, () => fail(Object.assign(new Error(`connection to ${options.host}:${options.port} timed out`), { code: 'ETIMEDOUT' })));
  socket.once('error', fail);
  socket.once('connect', () => {
    // From here on, errors and timeouts are nodemailer's.
    socket.off('error', fail);
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
  private readonly transporter: nodemailer.Transporter;
  /** nodemailer's SMTP pool under the transporter: `send(mail, callback)`, its transport contract */
  private readonly pool: { send(mail: unknown, callback: (err: Error | null, info?: { response?: string }) => void): boolean };
  /** every reply leaves this class through it, so no password reaches the log or the screen */
  private readonly mask: (text: string) => string;

  constructor(options: SmtpOptions) {
    const { display, mask, ...connection } = parseSmtpUrl(options.url, options.password);
    this.description = display;
    this.mask = mask;
    this.transporter = nodemailer.createTransport({
      ...connection,
      pool: true,
      maxConnections: options.maxConnections,
      maxMessages: Infinity,
      connectionTimeout: CONNECT_TIMEOUT,
      greetingTimeout: 15_000,
      socketTimeout: 60_000,
      getSocket: openNoDelaySocket,
    } as SMTPPool.Options);
    this.pool = (this.transporter as unknown as { transporter: SmtpTransport['pool'] }).transporter;
  }

  /**
   * Straight to the pool, past nodemailer's Mailer: the message is finished already, and the
   * Mailer's per-message work (plugins, a MIME tree for the raw bytes, a random boundary drawn
   * for it) was a tenth of a send's CPU. The object handed over is what nodemailer's pool reads
   * of a mail: its envelope, a Message-ID and header for the log, and the bytes. That shape is
   * nodemailer's inside, so package.json allows patch releases only (~7.0); the e2e tests send
   * through it against a real SMTP server.
   */
  deliver(envelope: Envelope, raw: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const mail = {
        data: {},
        message: {
          getEnvelope: () => ({ from: envelope.from, to: [...envelope.to] }),
          messageId: () => '',
          getHeader: () => '',
          // SMTPConnection.send takes a Buffer as well as a stream, and writes it at once.
          createReadStream: () => raw,
        },
      };
      const queued = this.pool.send(mail, (err, info) => {
        if (!err) {
          resolve(this.mask(String(info?.response ?? '250 accepted')));
          return;
        }
        const e = err as NodeJS.ErrnoException & { responseCode?: number; response?: string; command?: string };
        const response = e.response === undefined ? undefined : this.mask(e.response);
        reject(new DeliveryError({ code: e.code, command: e.command, responseCode: e.responseCode, response, message: this.mask(e.message) }));
      });
      if (!queued) reject(new DeliveryError({ code: 'ECONNECTION', message: 'the SMTP connection pool is closed' }));
    });
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}
