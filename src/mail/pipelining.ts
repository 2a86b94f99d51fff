import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import PoolResource from 'nodemailer/lib/smtp-pool/pool-resource.js';
import { internals } from './nodemailer-internals.js';

/**
 * Command pipelining (RFC 2920) for the envelope. nodemailer waits for the server's answer to
 * MAIL FROM before it sends RCPT TO, and for that before DATA: three round trips and three
 * writes a mail before the message itself. A server that offers PIPELINING takes MAIL FROM,
 * every RCPT TO and DATA in one write and answers them in order, so a mail costs two round
 * trips instead of four. On loopback that is a third of the send's system calls; across the
 * internet, half the wait per mail and connection.
 *
 * Only the envelope's sending and reading changes. What the caller sees is what nodemailer
 * gives: the same error (code, command, response) for a refused sender, a refused recipient
 * and a refused DATA, the same accepted/rejected lists. A server without PIPELINING, and the
 * DSN and REQUIRETLS variants, which mailer does not use, keep nodemailer's own steps.
 */

interface SmtpError extends Error {
  response?: string;
  recipient?: string;
  rejected?: string[];
  rejectedErrors?: SmtpError[];
}

interface Envelope {
  from: string;
  to: string[];
  rcptQueue: string[];
  accepted: string[];
  rejected: string[];
  rejectedErrors: SmtpError[];
  dsn?: unknown;
  requireTLSExtensionEnabled?: unknown;
}

type Callback = (err: SmtpError | null, info?: Record<string, unknown>) => void;

/** The parts of nodemailer's SMTPConnection this reads and writes (nodemailer-internals.ts looks for them). */
interface Connection {
  _supportedExtensions: string[];
  _responseActions: ((str: string) => void)[];
  _envelope: Envelope;
  _ehloLines?: string[];
  _socket: { write(data: string | Buffer): boolean; cork?(): void; uncork?(): void };
  _sendCommand(command: string): void;
  _getDsnRcptToArgs(): string;
  _formatError(message: string, code: string, response: string | false, command: string): SmtpError;
  _setEnvelope(envelope: Partial<Envelope>, callback: Callback): void;
  _createSendStream(callback: (err: Error | null, str?: string) => void): NodeJS.ReadableStream;
  reset(callback: (err: Error | null, ok?: boolean) => void): void;
  _responseQueue: string[];
  _destroyed: boolean;
  _processResponse(): unknown;
  _onClose(): void;
  /** the step smtp.ts reports a broken connection at */
  _mailerStep?: string;
  /** the next mail's envelope, written behind this mail's final dot (set by the pool's resource) */
  _mailerAhead?: () => void;
  /** that envelope, written and not yet taken up by the send of its mail */
  _mailerPresent?: Present | null;
}

export function pipelineEnvelopes(proto: Connection): void {
  const sequential = proto._setEnvelope;
  if (typeof sequential !== 'function' || (sequential as { pipelined?: boolean }).pipelined) return;

  const pipelined = function (this: Connection, envelope: Partial<Envelope>, callback: Callback): void {
    const present = this._mailerPresent;
    if (present) {
      takeUp(this, present, envelope, callback);
      return;
    }
    if (!this._supportedExtensions.includes('PIPELINING') || envelope?.dsn || envelope?.requireTLSExtensionEnabled) {
      sequential.call(this, envelope, callback);
      return;
    }
    // nodemailer checks the envelope and writes MAIL FROM with its arguments (SMTPUTF8,
    // 8BITMIME, SIZE), queueing the reading of its answer. A refused envelope answers the
    // callback at once and writes nothing.
    // nodemailer 8 and later pipeline on their own, but answer a 421 to RCPT TO as a closed
    // connection, not as the refusal it is; its own steps are asked for MAIL FROM alone, with
    // PIPELINING out of its sight for that one call.
    const actions = this._responseActions;
    const queued = actions.length;
    const extensions = this._supportedExtensions;
    this._supportedExtensions = extensions.filter((e) => e !== 'PIPELINING');
    try {
      sequential.call(this, envelope, callback);
    } finally {
      this._supportedExtensions = extensions;
    }
    if (actions.length !== queued + 1) return;
    actions.pop();

    const env = this._envelope;
    const recipients = env.rcptQueue.splice(0);
    // A refusal is known at the reply to MAIL FROM, or at the last RCPT TO's when none was
    // accepted. A server that refuses with 421 hangs up at once, and the reply to DATA never
    // comes: that refusal is answered at once, and must not wait and turn into a closed
    // connection. Any other is answered once the replies still due are read (and dropped):
    // nodemailer's pool (8 and later) answers a refusal with RSET on the same connection, and
    // an RSET written into a data phase the server opened all the same would be taken as the
    // message's text.
    let refused: SmtpError | null = null;
    const refuse = (err: SmtpError) => {
      refused = err;
      if (/^421/.test(err.response ?? '')) callback(err);
    };
    const answerRefusal = (err: SmtpError) => {
      if (!/^421/.test(err.response ?? '')) callback(err);
    };
    actions.push((str) => {
      if (str.charAt(0) !== '2') refuse(this._formatError('Mail command failed', 'EENVELOPE', str, 'MAIL FROM'));
    });
    recipients.forEach((recipient, i) => {
      actions.push((str) => {
        if (refused) return;
        if (str.charAt(0) === '2') {
          env.accepted.push(recipient);
        } else {
          const err = this._formatError('Recipient command failed', 'EENVELOPE', str, 'RCPT TO');
          err.recipient = recipient;
          env.rejected.push(recipient);
          env.rejectedErrors.push(err);
        }
        if (i === recipients.length - 1 && env.accepted.length === 0) refuse(allRejected(this, env, str));
      });
    });
    actions.push((str) => {
      const err = refused;
      if (err) {
        // A server that opens the data phase all the same (RFC 2920, 3.1, says it must refuse
        // DATA then) gets an empty message, ending it; the refusal is answered at its reply.
        if (str.charAt(0) === '3') {
          actions.push(() => answerRefusal(err));
          this._socket.write('.\r\n');
        } else {
          answerRefusal(err);
        }
        return;
      }
      // 354, or 250 from a server that says so (nodemailer accepts both: eleith/emailjs#24)
      if (!/^[23]/.test(str)) {
        callback(this._formatError('Data command failed', 'EENVELOPE', str, 'DATA'));
        return;
      }
      const info: Record<string, unknown> = { accepted: env.accepted, rejected: env.rejected };
      if (this._ehloLines?.length) info.ehlo = this._ehloLines;
      if (env.rejectedErrors.length) info.rejectedErrors = env.rejectedErrors;
      callback(null, info);
    });
    // Written in the same turn as MAIL FROM: the socket sends them in one segment (coalesceWrites).
    for (const recipient of recipients) this._sendCommand(`RCPT TO:<${recipient}>${this._getDsnRcptToArgs()}`);
    this._sendCommand('DATA');
  };
  (pipelined as { pipelined?: boolean }).pipelined = true;
  proto._setEnvelope = pipelined;
}

function allRejected(connection: Connection, env: Envelope, reply: string): SmtpError {
  const err = connection._formatError("Can't send mail - all recipients were rejected", 'EENVELOPE', reply, 'RCPT TO');
  err.rejected = env.rejected;
  err.rejectedErrors = env.rejectedErrors;
  return err;
}

/**
 * An envelope written behind the last message, before its mail's send takes it up: what the
 * server answered to it, or the send waiting for that answer.
 */
interface Present {
  envelope: Partial<Envelope>;
  outcome: { err: SmtpError | null; info?: Record<string, unknown> } | null;
  waiting: Callback | null;
  /** the step smtp.ts set while it was written, for a connection that breaks while it waits */
  step: string | undefined;
}

/** The send of the mail whose envelope went out ahead: the answers are there, or will be. */
function takeUp(connection: Connection, present: Present, envelope: Partial<Envelope>, callback: Callback): void {
  connection._mailerPresent = null;
  if (present.envelope !== envelope) {
    // The pool hands a connection the mail it wrote the envelope of (pipelineAcrossMails), so
    // this cannot happen; if it did, the message would go to that envelope's recipient.
    callback(connection._formatError('The envelope written ahead belongs to another mail', 'ECONNECTION', false, 'API'));
    return;
  }
  if (present.outcome) {
    callback(present.outcome.err, present.outcome.info);
    return;
  }
  connection._mailerStep = present.step;
  present.waiting = callback;
}

/** The parts of nodemailer's pool and its connections the look-ahead reads and moves (nodemailer-internals.ts looks for them). */
interface QueueEntry {
  mail: { data: Record<string, unknown>; message: { getEnvelope(): Partial<Envelope> } };
}
interface Pool {
  _queue: QueueEntry[];
  _connections: Resource[];
  _closed: boolean;
  options: { maxMessages?: number; rateLimit?: unknown; lmtp?: unknown };
  _processMessages(): void;
}
interface Resource {
  pool: Pool;
  connection?: Connection;
  available: boolean;
  messages: number;
  _closed: boolean;
  /** the queued mail whose envelope this connection wrote ahead: its next mail */
  mailerNext?: QueueEntry | null;
  send(mail: unknown, callback: unknown): void;
  close(): void;
}

/**
 * Pipelining across mails (RFC 2920, 3.1: a message's text may open a group of commands).
 * Right behind a message's final dot, the connection writes the next queued mail's MAIL FROM,
 * RCPT TO and DATA; the server answers the message and that envelope in one go, and the next
 * message follows at once. A mail then costs one round trip instead of two, which is what
 * bounds a connection once the server is a few milliseconds away.
 *
 * The mail taken ahead leaves the pool's queue and is this connection's next one: the pool
 * hands it over as soon as the connection is free again. A refusal of the message before it
 * ends its own transaction, so the RSET nodemailer's pool sends after one is left out (it
 * would land in the next transaction, or in its message). A connection that closes before the
 * mail taken ahead was sent puts it back at the head of the queue, for the next connection:
 * its message was never written, so it has not gone out.
 */
export function pipelineAcrossMails(connectionProto: Connection, resourceProto: Resource, poolProto: Pool): void {
  if ((resourceProto as { mailerAhead?: boolean }).mailerAhead) return;
  (resourceProto as { mailerAhead?: boolean }).mailerAhead = true;

  const createSendStream = connectionProto._createSendStream;
  connectionProto._createSendStream = function (this: Connection, callback) {
    const stream = createSendStream.call(this, callback) as NodeJS.ReadableStream & { _flush?: (done: () => void) => void };
    const ahead = this._mailerAhead;
    if (!ahead) return stream;
    // The final dot and the envelope behind it leave in one write. Sent apart, a server that
    // reads the dot alone answers it at once, and its answers to the envelope then wait for our
    // ACK of that answer (Nagle's algorithm on its side, delayed ACK on ours: 40 ms a mail).
    // The socket is corked from the dot (DataStream writes it in _flush) to the envelope; should
    // the dot be held up behind a full socket, it is let go in the same turn all the same.
    const socket = this._socket;
    let corked = false;
    const uncork = () => {
      if (corked) socket.uncork!();
      corked = false;
    };
    const flush = stream._flush;
    if (typeof flush === 'function' && typeof socket.cork === 'function' && typeof socket.uncork === 'function') {
      stream._flush = function (this: unknown, done: () => void) {
        socket.cork!();
        corked = true;
        setImmediate(uncork);
        return flush.call(this, done);
      };
    }
    // The stream ends once its last bytes, the final dot, are written to the socket.
    stream.once('end', () => {
      ahead();
      uncork();
    });
    return stream;
  };
  // nodemailer handles one reply a turn, and a connection that closes is reported as lost
  // before the replies read with its last data are handled. Behind the reply to a message, the
  // server's 421 to the envelope written ahead (which ends the session) would be lost that way:
  // the replies already read are handled first.
  const onClose = connectionProto._onClose;
  connectionProto._onClose = function (this: Connection) {
    while (this._responseQueue.length && !this._destroyed) {
      const waiting = this._responseQueue.length;
      this._processResponse();
      // a reply not read whole stays where it is
      if (this._responseQueue.length === waiting) break;
    }
    return onClose.call(this);
  };
  const reset = connectionProto.reset;
  connectionProto.reset = function (this: Connection, callback) {
    if (this._mailerPresent) {
      setImmediate(() => callback(null, true));
      return;
    }
    reset.call(this, callback);
  };

  const send = resourceProto.send;
  resourceProto.send = function (this: Resource, mail, callback) {
    // The connection is made by the send of the first mail, which calls send again once it is.
    const connection = this.connection;
    if (connection && !connection._mailerAhead) connection._mailerAhead = () => writeAhead(this);
    return send.call(this, mail, callback);
  };
  const close = resourceProto.close;
  resourceProto.close = function (this: Resource) {
    const next = this.mailerNext;
    this.mailerNext = null;
    if (this.connection) this.connection._mailerPresent = null;
    if (next) this.pool._queue.unshift(next);
    return close.call(this);
  };

  const processMessages = poolProto._processMessages;
  poolProto._processMessages = function (this: Pool) {
    const ready = this._closed ? undefined : this._connections.find((c) => c.available && c.mailerNext);
    if (ready) {
      // The pool gives the head of its queue to the first free connection: this one, with the
      // mail it wrote the envelope of.
      this._queue.unshift(ready.mailerNext!);
      ready.mailerNext = null;
      this._connections.splice(this._connections.indexOf(ready), 1);
      this._connections.unshift(ready);
    }
    return processMessages.call(this);
  };
}

function writeAhead(resource: Resource): void {
  const { pool, connection } = resource;
  if (!connection || resource._closed || pool._closed || resource.mailerNext || connection._mailerPresent) return;
  const { options } = pool;
  if (options.rateLimit || options.lmtp || resource.messages + 2 > (options.maxMessages ?? Infinity)) return;
  if (!connection._supportedExtensions.includes('PIPELINING')) return;
  const entry = pool._queue[0];
  const data = entry?.mail.data;
  if (!entry || data.dsn || data.requireTLSExtensionEnabled || data.signal) return;

  const envelope = entry.mail.message.getEnvelope();
  const present: Present = { envelope, outcome: null, waiting: null, step: undefined };
  const actions = connection._responseActions.length;
  // Written while the message before still waits for its answer: that is the step a broken
  // connection broke at.
  const step = connection._mailerStep;
  connection._setEnvelope(envelope, (err, info) => {
    present.outcome = { err, info };
    const waiting = present.waiting;
    present.waiting = null;
    waiting?.(err, info);
  });
  present.step = connection._mailerStep;
  connection._mailerStep = step;
  // Refused before a byte was written (an address nodemailer or the server's extensions do not
  // allow): the mail stays in the queue and is refused in its own turn. So it does when the
  // connection closed meanwhile (a socket found destroyed closes it at the first write).
  if (resource._closed || connection._responseActions.length === actions) return;
  pool._queue.shift();
  resource.mailerNext = entry;
  connection._mailerPresent = present;
}

// Another nodemailer's inside: its own sequential steps, as without PIPELINING.
if (internals.pipelining) pipelineEnvelopes(SMTPConnection.prototype as unknown as Connection);
// Another pool's inside: two round trips a mail.
if (internals.lookahead) {
  pipelineAcrossMails(SMTPConnection.prototype as unknown as Connection, PoolResource.prototype as unknown as Resource, SMTPPool.prototype as unknown as Pool);
}
