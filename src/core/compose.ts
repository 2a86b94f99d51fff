import { secureRandom } from './token.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { badInput } from '../errors.js';
import type { RenderedMessage } from './template.js';

export interface ComposeInput {
  message: RenderedMessage;
  /** the resolved From (template, else settings) */
  from: string;
  replyTo: string | null;
  to: { name: string | null; address: string };
  messageId: string;
  sendId: number;
  test: boolean;
  /** open pixel and one-click unsubscribe (RFC 8058) under this public URL, for this token */
  tracking?: { baseUrl: string; token: string };
}

/** The finished RFC 822 message, as it will be stored and handed to the server. */
export function compose(input: ComposeInput): Promise<Buffer> {
  const { message } = input;
  const headers: Record<string, string> = { 'X-Mailer-Send-Id': String(input.sendId) };
  for (const [name, value] of message.extraHeaders) headers[name] = value;
  let html = message.html ?? undefined;
  if (input.tracking) {
    const { baseUrl, token } = input.tracking;
    headers['List-Unsubscribe'] = `<${baseUrl}/u/${token}>`;
    headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
    if (html !== undefined) html = withPixel(html, `${baseUrl}/o/${token}.gif`);
  }
  const composer = new MailComposer({
    from: input.from,
    replyTo: input.replyTo ?? undefined,
    // A display name never carries a line break into the To: header.
    to: input.to.name ? { name: input.to.name.replace(/[\r\n]+/g, ' '), address: input.to.address } : input.to.address,
    subject: input.test ? `[TEST] ${message.subject}` : message.subject,
    messageId: input.messageId,
    // nodemailer draws the multipart boundary from the CSPRNG per message; ours comes pooled.
    baseBoundary: secureRandom(8).toString('hex'),
    text: message.text,
    html,
    headers,
  } as ConstructorParameters<typeof MailComposer>[0]);
  return new Promise((resolve, reject) => {
    // SMTP carries CRLF line ends (RFC 5321 §2.3.8); nodemailer converts bare LFs on the wire,
    // so they are converted here instead, and the stored bytes are the bytes the server gets.
    composer.compile().build((err, raw) => (err ? reject(err) : resolve(toCrlf(raw))));
  });
}

function withPixel(html: string, src: string): string {
  const img = `<img src="${src}" width="1" height="1" alt="" style="display:block;border:0">`;
  const end = html.search(/<\/body\s*>/i);
  return end >= 0 ? `${html.slice(0, end)}${img}\n${html.slice(end)}` : `${html}\n${img}\n`;
}

/** Envelope sender with the send id in it (VERP): bounces+4711@example.org. */
export function verpAddress(bounceAddress: string, sendId: number): string {
  const at = bounceAddress.lastIndexOf('@');
  return `${bounceAddress.slice(0, at)}+${sendId}${bounceAddress.slice(at)}`;
}

function toCrlf(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** `<send id>.<random>@<sender's domain>`: unique, and findable again from the send id. */
export function newMessageId(sendId: number, fromAddress: string): string {
  const domain = fromAddress.split('@')[1] || 'mailer.invalid';
  return `<${sendId}.${secureRandom(6).toString('hex')}@${domain}>`;
}

/** The bare address of a From header value, for the envelope and the Message-ID. */
export function addressOf(header: string, what: string): string {
  const parsed = addressparser(header, { flatten: true }) as { address?: string }[];
  const address = parsed[0]?.address;
  if (!address || !address.includes('@')) {
    throw badInput(`${what} "${header}" has no e-mail address`, 'write it as "Name <address@example.org>" or just the address');
  }
  return address;
}
