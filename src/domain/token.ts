import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * Random bytes from the CSPRNG, drawn in blocks: one system call per few thousand tokens
 * instead of one per mail (it showed as 10% of the send path's CPU).
 */
const BLOCK = 64 * 1024;
let pool = Buffer.alloc(0);
let offset = 0;

export function secureRandom(bytes: number): Buffer {
  if (offset + bytes > pool.length) {
    pool = randomBytes(BLOCK);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + bytes);
  offset += bytes;
  return out;
}

/**
 * A send's token: the send id in base 36, then 17 bytes (136 bits) from the CSPRNG in base64url.
 * The random part makes it unguessable and safe in a link. The id in front puts the tokens of
 * one run side by side in the token index, so a commit of 16 results writes one page of it, not
 * 16 pages at random places (5 % of a send's wall time). The id is no secret: the Message-ID
 * carries it too. Starting with a digit or letter, a token is never read as a command-line
 * option (`mailer token verify …`).
 */
export function newToken(sendId: number): string {
  return sendId.toString(36) + secureRandom(17).toString('base64url');
}

/**
 * What a link of a send is for. Each purpose has its own value, so one that leaks (an image
 * proxy fetches the pixel, a web server logs it, a scanner follows the unsubscribe link) opens
 * nothing else: above all not the registration link, the member's credential.
 */
export type LinkPurpose = 'unsubscribe' | 'open' | 'confirm';

/** The values of one mail's unsubscribe link and open pixel. */
export interface MailLinks {
  unsubscribe: string;
  open: string;
}

const LINK = /^([0-9a-z]{1,11})-([A-Za-z0-9_-]{22})$/;

/**
 * The unsubscribe, pixel and confirmation values of a send: the send id in base 36 and 128 bits
 * of an HMAC-SHA256 of the id under the database's own secret. Nothing is stored per send, the
 * value is checked by computing it again; and a mail costs one HMAC (a few µs), not a row: its
 * unsubscribe and pixel values are the two halves of one, each telling nothing of the other.
 */
export class LinkSigner {
  private readonly key: KeyObject;

  constructor(secret: Buffer) {
    this.key = createSecretKey(secret);
  }

  /** The two values a mail carries. */
  mailLinks(sendId: number): MailLinks {
    const mac = this.mac('links', sendId);
    const id = sendId.toString(36);
    return { unsubscribe: `${id}-${mac.toString('base64url', 0, 16)}`, open: `${id}-${mac.toString('base64url', 16, 32)}` };
  }

  value(purpose: LinkPurpose, sendId: number): string {
    if (purpose === 'confirm') return `${sendId.toString(36)}-${this.mac('confirm', sendId).toString('base64url', 0, 16)}`;
    return this.mailLinks(sendId)[purpose];
  }

  /** The send a value was made for, if it was made for this purpose by this database. */
  sendId(purpose: LinkPurpose, value: string): number | undefined {
    const m = LINK.exec(value);
    const id = m ? parseInt(m[1], 36) : 0;
    // One spelling per send: "0a-…" is not "a-…".
    const wellFormed = !!m && Number.isSafeInteger(id) && id.toString(36) === m[1];
    // The HMAC is computed for a value of any shape, so a malformed one is refused no faster
    // than a forged one: the answer tells nothing about how a value is checked.
    const expected = Buffer.from(this.value(purpose, wellFormed ? id : 0));
    const given = Buffer.alloc(expected.length);
    given.write(value.slice(0, expected.length), 'latin1');
    const same = timingSafeEqual(expected, given);
    return wellFormed && same && value.length === expected.length ? id : undefined;
  }

  /**
   * The multipart boundary of a mailing's messages: one per mailing, so that its stored
   * messages find it in their dictionary, and as unknown in advance as a random one.
   */
  mailingBoundary(mailingId: number): string {
    return this.mac('boundary', mailingId).toString('hex', 0, 6);
  }

  private mac(label: string, sendId: number): Buffer {
    return createHmac('sha256', this.key).update(`${label}:${sendId}`).digest();
  }
}
