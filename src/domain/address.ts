/**
 * Address checks at import and re-target time. Deliberately plain: one @, a local part of
 * printable characters without spaces, a domain of dot-separated labels ending in a
 * top-level label of letters. What passes here may still bounce; what fails surely would.
 */
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/;
/** The same with letters beyond ASCII (RFC 6531), which only a server with SMTPUTF8 takes. */
const LOCAL_UTF8 = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\u00a1-\uffff-]+$/;
const LABEL = /^(?!-)[A-Za-z0-9\u00a1-\uffff-]{1,63}(?<!-)$/;
const TLD = /^([A-Za-z\u00a1-\uffff]{2,63}|xn--[a-z0-9-]{1,59})$/;

export function normalizeAddress(raw: string): string {
  return raw.trim().toLowerCase();
}

/** The common case in one test: a plain ASCII address (the full checks run only when it fails). */
const PLAIN = /^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/**
 * What addressProblem says of an address that is valid but for letters beyond ASCII before
 * the @: deliverable only through a server that offers SMTPUTF8. The import takes such an
 * address as valid and notes this; the send decides by the server it reaches.
 */
export const NEEDS_SMTPUTF8 = 'non-ASCII before the @ needs a server with SMTPUTF8';

/**
 * Why the address is not usable, or null if it is. A domain beyond ASCII (bücher.de) is
 * valid: it goes out as punycode. A name before the @ beyond ASCII gets NEEDS_SMTPUTF8, once
 * the rest of the address is valid.
 */
export function addressProblem(address: string): string | null {
  if (address.length <= 254 && PLAIN.test(address) && address.indexOf('@') <= 64) return null;
  if (address.length > 254) return 'longer than 254 characters';
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'no @ between a name and a domain';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.includes('@')) return 'more than one @';
  if (local.length > 64) return 'the part before @ is longer than 64 characters';
  const ascii = LOCAL.test(local);
  if ((!ascii && !LOCAL_UTF8.test(local)) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    return `"${local}" is not a valid name before the @`;
  }
  const labels = domain.split('.');
  if (labels.length < 2) return `the domain "${domain}" has no dot`;
  if (!labels.every((l) => LABEL.test(l))) return `the domain "${domain}" is not valid`;
  if (!TLD.test(labels[labels.length - 1])) return `the domain "${domain}" does not end in a top-level domain`;
  return ascii ? null : NEEDS_SMTPUTF8;
}

export function isValidAddress(address: string): boolean {
  return addressProblem(address) === null;
}
