import { randomBytes } from 'node:crypto';

/** 128 bits from the CSPRNG, base64url: unguessable and safe in a link. */
export function newToken(): string {
  return randomBytes(16).toString('base64url');
}
