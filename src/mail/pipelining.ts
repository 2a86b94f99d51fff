import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
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
  _socket: { write(data: string | Buffer): boolean };
  _sendCommand(command: string): void;
  _getDsnRcptToArgs(): string;
  _formatError(message: string, code: string, response: string | false, command: string): SmtpError;
  _setEnvelope(envelope: Partial<Envelope>, callback: Callback): void;
}

export function pipelineEnvelopes(proto: Connection): void {
  const sequential = proto._setEnvelope;
  if (typeof sequential !== 'function' || (sequential as { pipelined?: boolean }).pipelined) return;

  const pipelined = function (this: Connection, envelope: Partial<Envelope>, callback: Callback): void {
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

// Another nodemailer's inside: its own sequential steps, as without PIPELINING.
if (internals.pipelining) pipelineEnvelopes(SMTPConnection.prototype as unknown as Connection);
