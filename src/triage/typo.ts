/**
 * Before sending again, the office asks whether the address is exactly right: a domain one or two keystrokes away from a
 * big provider is almost always a typo — gmial.com, t-onlne.de, gmx.dee.
 */
export const COMMON_DOMAINS = [
  'gmail.com', 'googlemail.com', 'gmx.de', 'gmx.net', 'gmx.at', 'gmx.ch', 'gmx.com', 'web.de', 't-online.de',
  'freenet.de', 'arcor.de', 'online.de', 'posteo.de', 'mailbox.org', 'magenta.de', 'vodafone.de', 'kabelmail.de',
  'outlook.com', 'outlook.de', 'hotmail.com', 'hotmail.de', 'live.com', 'live.de', 'msn.com', 'yahoo.com',
  'yahoo.de', 'icloud.com', 'me.com', 'aol.com', 'aol.de', 'protonmail.com', 'proton.me', 'ionos.de', 'email.de',
];

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The address as it was probably meant, or null if its domain does not look like a typo. */
export function suspectTypo(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at < 0) return null;
  const domain = address.slice(at + 1).toLowerCase();
  if (COMMON_DOMAINS.includes(domain)) return null;
  let best: { domain: string; distance: number } | null = null;
  for (const known of COMMON_DOMAINS) {
    const distance = editDistance(domain, known);
    // Two edits on a short domain would call gmx.at a typo of web.de; scale with length.
    const allowed = known.length <= 6 ? 1 : 2;
    if (distance > 0 && distance <= allowed && (!best || distance < best.distance)) best = { domain: known, distance };
  }
  return best ? `${address.slice(0, at)}@${best.domain}` : null;
}
