import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys of `serve --api`: 256 bits from the CSPRNG, shown once, stored as their SHA-256 only.
 * A key that random cannot be guessed from its hash, so a fast hash is enough (a password would
 * need a slow one).
 */
const PREFIX = 'mk_';
/** A presented key longer than this is no key of ours: refused before it is hashed. */
const MAX_KEY_CHARS = 200;

export function newApiKey(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The key of an `Authorization: Bearer <key>` header; undefined when there is none. */
export function bearerKey(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return m && m[1].length <= MAX_KEY_CHARS ? m[1] : undefined;
}

/**
 * The name of the key whose hash matches, compared in constant time, and against every stored
 * hash whichever matches: the time taken tells neither how much of a key was right nor which.
 */
export function matchingKey(presented: string | undefined, stored: { name: string; hash: Buffer }[]): string | undefined {
  const hash = hashApiKey(presented ?? '');
  let found: string | undefined;
  for (const key of stored) {
    const equal = key.hash.length === hash.length && timingSafeEqual(key.hash, hash);
    if (equal && presented) found = key.name;
  }
  return found;
}

/** A key name as `api-key create` takes it: the program or shop that uses it. */
export const API_KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
