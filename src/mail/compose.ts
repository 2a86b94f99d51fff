import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { secureRandom } from '../domain/token.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import MimeNodeClass from 'nodemailer/lib/mime-node/index.js';
import * as base64 from 'nodemailer/lib/base64/index.js';
import * as qp from 'nodemailer/lib/qp/index.js';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { internals } from './nodemailer-internals.js';
import { badInput } from '../errors.js';
import type { AttachmentRecord, RenderedMessage } from '../domain/types.js';
import type { OutgoingMessage } from '../domain/ports.js';

/** Marks mailer's wrappers on MimeNode, so a prototype is never wrapped twice and a test can tell. */
export const MEMO = 'mailerMemo';

/**
 * nodemailer normalises a header name with three regular expressions on every get and set of
 * a header, some forty times a message: a third of composing one (35 µs a message before, see
 * test/bench). The result depends on the name alone, so it is remembered per name (a mailing
 * has a dozen). The byte-for-byte test against nodemailer's own build covers this too.
 */
function rememberHeaderNames(proto: { _normalizeHeaderKey?: (key: unknown) => string }): void {
  const normalize = proto._normalizeHeaderKey;
  if (typeof normalize !== 'function' || MEMO in normalize) return;
  const known = new Map<string, string>();
  proto._normalizeHeaderKey = function (this: unknown, key: unknown): string {
    if (typeof key !== 'string') return normalize.call(this, key);
    let normalized = known.get(key);
    if (normalized === undefined) {
      normalized = normalize.call(this, key);
      if (known.size < 512) known.set(key, normalized);
    }
    return normalized;
  };
  Object.defineProperty(proto._normalizeHeaderKey, MEMO, { value: true });
}

/**
 * The sender's headers (From, Reply-To) are the same in every mail of a mailing, yet nodemailer
 * parses and encodes them again for each: address parser, punycode, encoded words, 3 µs a
 * mail. Their encoded form depends on the name and value alone (mailer sets no textEncoding),
 * so it is remembered. The recipient's To differs per mail and is left alone. (nodemailer 10
 * made the method public as `encodeHeaderValue`; `_encodeHeaderValue`, which buildHeaders no
 * longer calls, is an alias of it.)
 */
function rememberSenderHeaders(proto: { encodeHeaderValue?: (key: unknown, value: unknown) => string }): void {
  const encode = proto.encodeHeaderValue;
  if (typeof encode !== 'function' || MEMO in encode) return;
  const known = new Map<string, string>();
  proto.encodeHeaderValue = function (this: unknown, key: unknown, value: unknown): string {
    if ((key !== 'From' && key !== 'Reply-To') || typeof value !== 'string') return encode.call(this, key, value);
    const memo = `${key}:${value}`;
    let encoded = known.get(memo);
    if (encoded === undefined) {
      encoded = encode.call(this, key, value);
      if (known.size < 64) known.set(memo, encoded);
    }
    return encoded;
  };
  Object.defineProperty(proto.encodeHeaderValue, MEMO, { value: true });
}
// Another nodemailer's inside: every header encoded anew, as nodemailer does.
if (internals.headerMemo) {
  rememberHeaderNames(MimeNodeClass.prototype as never);
  rememberSenderHeaders(MimeNodeClass.prototype as never);
}

export interface ComposeInput {
  message: RenderedMessage;
  /** the resolved From (template, else settings) */
  from: string;
  replyTo: string | null;
  to: { name: string | null; address: string };
  messageId: string;
  sendId: number;
  test: boolean;
  /**
   * open pixel and one-click unsubscribe (RFC 8058) under this public URL, each with its own
   * value (never the registration token: proxies fetch the pixel, servers log both); null
   * leaves that one out (a required mail has no unsubscribe)
   */
  tracking?: { baseUrl: string; unsubscribe: string | null; pixel: string | null };
  /** files attached, in the template's order: read while the mail is handed over */
  attachments?: AttachmentFile[];
  /**
   * the multipart boundary of every message of the mailing (see composeParts), so that each
   * stored message finds it in its mailing's dictionary; without it, the message's own
   */
  boundary?: string;
}

/** A file to attach: where it is read from, the name it has in the mail, its size when checked. */
export interface AttachmentFile {
  path: string;
  name: string;
  size: number;
}

/**
 * A composed message whose attachment bodies are left out: `skeleton` is the message with each
 * body cut out at its slot's offset, `size` the message's length with the bodies in.
 */
export interface ComposedParts {
  skeleton: Buffer;
  slots: { offset: number; file: AttachmentFile }[];
  size: number;
}

/** The finished RFC 822 message, as it will be stored and handed to the server. */
export function compose(input: ComposeInput): Buffer {
  return composeTree(mimeTree(input));
}

export function composeTree(tree: MimeNode): Buffer {
  return composeTreeParts(tree).skeleton;
}

/** The message with its attachment bodies left out, and where each goes. */
export function composeParts(input: ComposeInput): ComposedParts {
  const tree = mimeTree(input);
  const parts = composeTreeParts(tree);
  // A boundary must not occur in the message but as its boundary (RFC 2046 §5.1.1). The
  // message's own random one cannot, the mailing's could: a member's field or a retried mail
  // could carry it, once someone has seen it in a mail. Then the message gets its own.
  if (input.boundary && boundaryUses(parts.skeleton, input.boundary) !== structuralUses(tree)) return composeTreeParts(mimeTree({ ...input, boundary: undefined }));
  return parts;
}

/** How often a base boundary is written: nodemailer's boundaries are `--_NmP-<base>-Part_<n>`. */
function boundaryUses(skeleton: Buffer, base: string): number {
  const needle = `_NmP-${base}-`;
  let n = 0;
  for (let at = skeleton.indexOf(needle); at >= 0; at = skeleton.indexOf(needle, at + needle.length)) n++;
  return n;
}

/** Each multipart names its boundary once, writes it before each part and once more at its end. */
function structuralUses(node: MimeNode): number {
  return (node.multipart ? node.childNodes.length + 2 : 0) + node.childNodes.reduce((n, child) => n + structuralUses(child), 0);
}

export function composeTreeParts(tree: MimeNode): ComposedParts {
  // SMTP carries CRLF line ends (RFC 5321 §2.3.8); nodemailer converts bare LFs on the wire,
  // so they are converted here instead, and the stored bytes are the bytes the server gets.
  // Converted piece by piece, so that the offsets of the attachment slots hold: a slot lies
  // between a header block's CRLF CRLF and the next boundary's CRLF, never inside a line end.
  const { pieces, files } = serialize(tree);
  const out: Buffer[] = [];
  const slots: ComposedParts['slots'] = [];
  let offset = 0;
  let size = 0;
  pieces.forEach((piece, i) => {
    const bytes = toCrlf(piece);
    out.push(bytes);
    offset += bytes.length;
    size += bytes.length;
    const file = files[i];
    if (file) {
      slots.push({ offset, file });
      size += base64Length(file.size);
    }
  });
  // a mail without files is one piece: not copied again
  return { skeleton: out.length === 1 ? out[0] : Buffer.concat(out), slots, size };
}

/** The length of `bytes` bytes as nodemailer's base64 stream writes them: lines of 76, CRLF between, none after the last. */
export function base64Length(bytes: number): number {
  if (bytes === 0) return 0;
  const chars = 4 * Math.ceil(bytes / 3);
  return chars + 2 * (Math.ceil(chars / 76) - 1);
}

/** 57 bytes are one line of 76 base64 characters. */
const LINE_BYTES = 57;

/**
 * A file's bytes as base64 lines, read in chunks: the same bytes as nodemailer's base64 stream
 * (checked against it in test/unit/compose), whatever the chunks. `hash` sees the raw bytes.
 */
async function* base64File(file: string, hash: ReturnType<typeof createHash>, counted: { size: number }): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  let first = true;
  const lines = (bytes: Buffer): Buffer => {
    const parts: string[] = [];
    for (let at = 0; at < bytes.length; at += LINE_BYTES) {
      parts.push((first ? '' : '\r\n') + bytes.toString('base64', at, Math.min(at + LINE_BYTES, bytes.length)));
      first = false;
    }
    return Buffer.from(parts.join(''), 'ascii');
  };
  for await (const chunk of fs.createReadStream(file, { highWaterMark: LINE_BYTES * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    counted.size += chunk.length;
    const bytes = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % LINE_BYTES);
    rest = bytes.subarray(whole);
    if (whole) yield lines(bytes.subarray(0, whole));
  }
  if (rest.length) yield lines(rest);
}

/**
 * A message with attachments as it is handed over: the skeleton's pieces and each file read and
 * encoded on the way, so a mail never holds its files in memory. After it went out, `records()`
 * says what was attached (size and SHA-256 of the bytes read), for the log.
 */
export class MessageWithFiles implements OutgoingMessage {
  readonly size: number;
  private read: AttachmentRecord[] | null = null;

  constructor(readonly parts: ComposedParts) {
    this.size = parts.size;
  }

  async *chunks(): AsyncGenerator<Buffer> {
    const { skeleton, slots } = this.parts;
    const read: AttachmentRecord[] = [];
    let from = 0;
    for (const { offset, file } of slots) {
      yield skeleton.subarray(from, offset);
      const hash = createHash('sha256');
      const counted = { size: 0 };
      yield* base64File(file.path, hash, counted);
      read.push({ name: file.name, path: file.path, size: counted.size, sha256: hash.digest('hex'), offset });
      from = offset;
    }
    yield skeleton.subarray(from);
    this.read = read;
  }

  /** What the last complete read attached; null before one. */
  records(): AttachmentRecord[] | null {
    return this.read;
  }
}

/** The stored form of a message with files, as the log keeps it: its skeleton and the records. */
export type RebuildResult =
  | { ok: true; raw: Buffer }
  | { ok: false; changed: { name: string; path: string; why: string }[] };

/**
 * The exact message as it went out, from its skeleton and the files as they are now: only when
 * every file still has the SHA-256 it was sent with, else which files changed.
 */
export async function rebuildMessage(skeleton: Buffer, records: AttachmentRecord[]): Promise<RebuildResult> {
  const changed: { name: string; path: string; why: string }[] = [];
  for (const r of records) {
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(r.path);
    } catch (err) {
      changed.push({ name: r.name, path: r.path, why: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it is gone' : (err as Error).message });
      continue;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== r.sha256) {
      changed.push({ name: r.name, path: r.path, why: `it changed since it was sent (${bytes.length} bytes now, ${r.size} then)` });
    }
  }
  if (changed.length) return { ok: false, changed };
  const message = new MessageWithFiles({
    skeleton, size: 0,
    slots: records.map((r) => ({ offset: r.offset, file: { path: r.path, name: r.name, size: r.size } })),
  });
  const out: Buffer[] = [];
  for await (const chunk of message.chunks()) out.push(chunk);
  return { ok: true, raw: Buffer.concat(out) };
}

/** nodemailer's MIME tree of the message: headers encoded and parts chosen as nodemailer does. */
export function mimeTree(input: ComposeInput): MimeNode {
  return new MailComposer(composerOptions(input) as ConstructorParameters<typeof MailComposer>[0]).compile() as unknown as MimeNode;
}

/** What MailComposer is given for the message: plain data, so nodemailer alone can build it too. */
export function composerOptions(input: ComposeInput): Record<string, unknown> {
  const { message } = input;
  const headers: Record<string, string> = { 'X-Mailer-Send-Id': String(input.sendId) };
  for (const [name, value] of message.extraHeaders) headers[name] = value;
  let html = message.html ?? undefined;
  if (input.tracking) {
    const { baseUrl, unsubscribe, pixel } = input.tracking;
    if (unsubscribe !== null) {
      headers['List-Unsubscribe'] = `<${baseUrl}/u/${unsubscribe}>`;
      headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
    }
    if (html !== undefined && pixel !== null) html = withPixel(html, `${baseUrl}/o/${pixel}.gif`);
  }
  return {
    from: input.from,
    replyTo: input.replyTo ?? undefined,
    // A display name never carries a line break into the To: header.
    to: input.to.name ? { name: input.to.name.replace(/[\r\n]+/g, ' '), address: input.to.address } : input.to.address,
    subject: input.test ? `[TEST] ${message.subject}` : message.subject,
    messageId: input.messageId,
    baseBoundary: input.boundary ?? boundaryFor(input.messageId),
    text: message.text,
    html,
    headers,
    // The file's own name (nodemailer writes a name that is not ASCII as RFC 2231's filename*),
    // its type from that name, and always base64: a text file's lines are the sender's business.
    ...(input.attachments?.length ? {
      attachments: input.attachments.map((f) => ({ filename: f.name, path: f.path, contentTransferEncoding: 'base64' })),
    } : {}),
  };
}

/** The parts of nodemailer's MimeNode that serialize() reads. */
export interface MimeNode {
  buildHeaders(): string;
  getTransferEncoding(): string | false;
  content?: unknown;
  multipart: string | false;
  boundary: string | false;
  childNodes: MimeNode[];
  build(): Promise<Buffer>;
}

/**
 * MimeNode's build, without its streams: the same header block and the same encoders in one
 * synchronous pass. The streamed build waits a turn of the event loop at every step (about
 * 0.8 ms per mail while sending, for 40 µs of work), and each queue worker waited with it.
 * Covers what MailComposer makes of our messages: text parts, and multiparts of them, and
 * attachments read from a file, whose bodies are left out: `files[i]` goes after `pieces[i]`.
 */
function serialize(node: MimeNode): { pieces: Buffer[]; files: (AttachmentFile | undefined)[] } {
  let out: Buffer[] = [];
  const pieces: Buffer[] = [];
  const files: (AttachmentFile | undefined)[] = [];
  const walk = (part: MimeNode) => {
    out.push(Buffer.from(part.buildHeaders() + '\r\n\r\n'));
    if (part.content && typeof part.content === 'object' && typeof (part.content as { path?: unknown }).path === 'string') {
      if (part.getTransferEncoding() !== 'base64') throw new Error('compose: an attachment that is not base64');
      pieces.push(Buffer.concat(out));
      out = [];
      const filePath = (part.content as { path: string }).path;
      files[pieces.length - 1] = { path: filePath, name: (part as unknown as { filename: string }).filename, size: fs.statSync(filePath).size };
    } else if (part.content) {
      if (typeof part.content !== 'string') throw new Error('compose: a MIME part that is not text');
      out.push(encodeBody(Buffer.from(part.content), part.getTransferEncoding()));
    }
    if (part.multipart) {
      part.childNodes.forEach((child, i) => {
        out.push(Buffer.from(`${i > 0 ? '\r\n' : ''}--${part.boundary}\r\n`));
        walk(child);
      });
      out.push(Buffer.from(`\r\n--${part.boundary}--\r\n`));
    }
  };
  walk(node);
  // as nodemailer's LastNewline: the message ends with a line break
  const last = out[out.length - 1];
  if (last && last.length && last[last.length - 1] !== 0x0a) out.push(Buffer.from('\r\n'));
  pieces.push(Buffer.concat(out));
  return { pieces, files };
}

/** As nodemailer's encoder streams do it for content that comes in one chunk. */
function encodeBody(bytes: Buffer, encoding: string | false): Buffer {
  if (encoding === 'quoted-printable') return Buffer.from(qp.wrap(qp.encode(bytes), 76), 'ascii');
  if (encoding !== 'base64') return bytes;
  // The stream encodes whole 3-byte groups and wraps them, then appends the rest unwrapped.
  const whole = bytes.length - (bytes.length % 3);
  let lines = base64.wrap(base64.encode(bytes.subarray(0, whole)), 76);
  let current = lines;
  const lastLf = lines.lastIndexOf('\n');
  if (lastLf < 0) {
    lines = '';
  } else {
    current = lines.substring(lastLf + 1);
    lines = lines.substring(0, lastLf + 1);
    if (lines && !lines.endsWith('\r\n')) lines += '\r\n';
  }
  if (whole < bytes.length) current += base64.encode(bytes.subarray(whole));
  return Buffer.from(lines + current, 'ascii');
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

/**
 * The multipart boundary: the Message-ID's random part, which no member's data can know in
 * advance, as nodemailer's own CSPRNG boundary could not. One random value where there were two
 * leaves a stored message one random value to compress (13 bytes of the ~140 a newsletter takes).
 * A Message-ID of another shape gets a random boundary of its own.
 */
export function boundaryFor(messageId: string): string {
  const random = /^<\d+\.([0-9a-f]{12,})@/.exec(messageId)?.[1];
  return random ?? secureRandom(8).toString('hex');
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

/** A plain message from mailer itself (the operator's report, a test mail): no member, no links. */
export function composeNotice(m: { from: string; to: string; subject: string; text: string; date?: Date }): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) =>
    new MailComposer({ ...m }).compile().build((err, buf) => (err ? reject(err) : resolve(buf))));
}
