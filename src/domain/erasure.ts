import { createHmac } from 'node:crypto';

/**
 * What stands for an erased member's key or address: HMAC-SHA256 under the database's own
 * secret (erasure_secret), hex. Without the secret, a list of guessed addresses cannot be
 * checked against it; with it, mailer can tell that an address coming in again was erased.
 * `what` keeps the hash of a key apart from that of an address with the same text.
 */
export function erasedHash(secret: Buffer | Uint8Array, what: 'address' | 'key', value: string): string {
  return createHmac('sha256', secret).update(`${what}\u0000${value}`).digest('hex');
}

/** The form a suppression or opt-out of an erased address is kept in: never a valid address. */
export const ERASED_PREFIX = 'erased:';
