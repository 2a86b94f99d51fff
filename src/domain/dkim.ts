import crypto from 'node:crypto';

/**
 * DKIM key records (RFC 6376 §3.6.1) at <selector>._domainkey.<domain>: whether a key is
 * published, and whether receivers can use it.
 */

/** Selectors the common providers and mail servers sign with, tried when none is given. */
export const COMMON_DKIM_SELECTORS = ['default', 'selector1', 'selector2', 'google', 'k1', 'mail', 'dkim', 's1', 's2'];

/** Gmail and Yahoo ignore shorter RSA keys; 2048 is what to generate. */
export const MIN_RSA_BITS = 1024;

export interface DkimKey {
  keyType: string;
  /** the RSA modulus length, when the key is RSA and parses */
  bits: number | null;
  /** t=y: the domain is testing DKIM, receivers treat signatures as unsigned */
  testing: boolean;
  /** p= empty: the key was revoked (§3.6.1) */
  revoked: boolean;
  errors: string[];
}

export function dkimName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** A TXT record at the selector is a key record when it has a p= tag (v=DKIM1 is optional, but first if present). */
export function isDkimRecord(txt: string): boolean {
  return /(?:^|;)\s*p\s*=/i.test(txt) && (!/\bv\s*=/i.test(txt) || /^\s*v\s*=\s*DKIM1\s*(?:;|$)/i.test(txt));
}

export function parseDkimKey(text: string): DkimKey {
  const tags: Record<string, string> = {};
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq > 0) tags[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).replace(/\s+/g, '');
  }
  const key: DkimKey = { keyType: (tags.k ?? 'rsa').toLowerCase(), bits: null, testing: (tags.t ?? '').split(':').includes('y'), revoked: tags.p === '', errors: [] };
  if (tags.v !== undefined && tags.v !== 'DKIM1') key.errors.push(`v=${tags.v}: only v=DKIM1 exists`);
  if (tags.p === undefined) key.errors.push('p= (the public key) is missing');
  if (key.keyType === 'rsa' && tags.p) {
    try {
      const details = crypto.createPublicKey({ key: Buffer.from(tags.p, 'base64'), format: 'der', type: 'spki' }).asymmetricKeyDetails;
      key.bits = details?.modulusLength ?? null;
    } catch {
      key.errors.push('p= is not an RSA public key in base64: copy it again from your mail provider, without spaces or quotes');
    }
  } else if (key.keyType !== 'rsa' && key.keyType !== 'ed25519') {
    key.errors.push(`k=${key.keyType}: the key type is rsa or ed25519`);
  }
  return key;
}
