/**
 * Run as a child process: a nodemailer whose inside is not the one mailer knows. Before any
 * mailer module is loaded, one private member of each feature is wrapped with another arity
 * (as a release that reshapes it would leave it); nodemailer itself still works. Then mails go
 * through mailer's SmtpTransport to the SMTP server on the port given, and what happened is
 * printed as JSON.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';

/** for each mail the pool was given: whether nodemailer's Mailer made it (sendMail), not mailer */
const viaSendMail: boolean[] = [];

function reshape(proto: Record<string, unknown>, name: string, seen?: (args: unknown[]) => void): void {
  const original = proto[name] as (...args: unknown[]) => unknown;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    seen?.(args);
    return original.apply(this, args);
  };
}
reshape(SMTPConnection.prototype as never, '_setEnvelope');
reshape(SMTPPool.prototype as never, 'send', ([mail]) => viaSendMail.push((mail as { data: { raw?: unknown } }).data.raw !== undefined));
reshape(MimeNode.prototype as never, '_normalizeHeaderKey');

const { internals } = await import('../../src/mail/nodemailer-internals.js');
const { SmtpTransport } = await import('../../src/mail/smtp.js');
const { compose, MEMO } = await import('../../src/mail/compose.js');
const { DeliveryError } = await import('../../src/domain/ports.js');

const port = Number(process.argv[2]);
const transport = new SmtpTransport({ url: `smtp://127.0.0.1:${port}`, maxConnections: 2 });
const raw = compose({
  message: { subject: 'Grüße', from: null, replyTo: null, extraHeaders: [], text: 'Hallo Jörg,\nbis bald.\n', html: '<p>Hallo <b>Jörg</b></p>' },
  from: 'Verein Grün <info@verein.example>', replyTo: null,
  to: { name: 'Jörg', address: 'joerg@bücher.example' },
  messageId: '<1.abc@verein.example>', sendId: 1, test: false,
});
const out: Record<string, unknown> = {
  internals,
  pipelined: Boolean((SMTPConnection.prototype as unknown as { _setEnvelope: { pipelined?: boolean } })._setEnvelope.pipelined),
  raw: raw.toString('base64'),
  viaSendMail,
  headerMemo: [MimeNode.prototype, MimeNode.prototype].some((p, i) => MEMO in (p as unknown as Record<string, object>)[i ? 'encodeHeaderValue' : '_normalizeHeaderKey']),
};
try {
  out.response = await transport.deliver({ from: 'bounces+1@verein.example', to: ['joerg@bücher.example'] }, raw);
  try {
    await transport.deliver({ from: 'bounces+2@verein.example', to: ['gone@verein.example'] }, raw);
    out.refusal = 'accepted';
  } catch (err) {
    const e = err as { code?: string; command?: string; responseCode?: number; response?: string };
    out.refusal = { deliveryError: err instanceof DeliveryError, code: e.code, command: e.command, responseCode: e.responseCode, response: e.response };
  }
} catch (err) {
  out.error = String(err);
} finally {
  await transport.close();
}
process.stdout.write(JSON.stringify(out));
