/**
 * DMARC records (RFC 7489 §6.3): the tag list at _dmarc.<domain>, its policy, and what makes a
 * receiver ignore it. Pure, with table tests from the RFC's examples.
 */

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
const POLICIES: readonly string[] = ['none', 'quarantine', 'reject'];

export interface DmarcRecord {
  text: string;
  tags: Record<string, string>;
  /** p=; none when p is missing but rua is valid (§6.6.3) */
  policy: DmarcPolicy | null;
  subdomainPolicy: DmarcPolicy | null;
  pct: number;
  /** the mailto: addresses aggregate reports go to (size limits such as !10m dropped) */
  rua: string[];
  adkim: 'r' | 's';
  aspf: 'r' | 's';
  /** anything that makes receivers discard the record or a tag of it */
  errors: string[];
}

/** A TXT record at _dmarc is a DMARC record when it starts with v=DMARC1 (§6.6.3, step 3). */
export function isDmarcRecord(txt: string): boolean {
  return /^v\s*=\s*DMARC1\s*(?:;|$)/i.test(txt.trim());
}

export function parseDmarc(text: string): DmarcRecord {
  const record: DmarcRecord = { text, tags: {}, policy: null, subdomainPolicy: null, pct: 100, rua: [], adkim: 'r', aspf: 'r', errors: [] };
  if (!isDmarcRecord(text)) {
    record.errors.push('it does not start with v=DMARC1');
    return record;
  }
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z]+)\s*=\s*(.*)$/i.exec(part);
    if (!m) {
      record.errors.push(`"${part}" is not a tag=value pair`);
      continue;
    }
    const name = m[1].toLowerCase();
    if (name in record.tags) record.errors.push(`${name}= appears twice`);
    record.tags[name] = m[2].trim();
  }
  const { tags } = record;
  const policy = (name: 'p' | 'sp'): DmarcPolicy | null => {
    const value = tags[name];
    if (value === undefined) return null;
    if (!POLICIES.includes(value.toLowerCase())) {
      record.errors.push(`${name}=${value}: the policy is none, quarantine or reject`);
      return null;
    }
    return value.toLowerCase() as DmarcPolicy;
  };
  if (tags.rua !== undefined) {
    for (const uri of tags.rua.split(',').map((u) => u.trim()).filter(Boolean)) {
      const mail = /^mailto:([^!]+@[^!]+)(?:!\d+[kmgt]?)?$/i.exec(uri);
      if (mail) record.rua.push(mail[1]);
      else record.errors.push(`rua: "${uri}" is not a mailto: address`);
    }
  }
  record.policy = policy('p');
  // A record without p (or with a bad one) still counts as p=none when rua is valid (§6.6.3 step 6).
  if (record.policy === null && tags.p === undefined) {
    if (record.rua.length) record.policy = 'none';
    else record.errors.push('p= is missing: the policy (none, quarantine or reject) is required');
  }
  record.subdomainPolicy = policy('sp') ?? record.policy;
  if (tags.pct !== undefined) {
    if (!/^\d{1,3}$/.test(tags.pct) || Number(tags.pct) > 100) record.errors.push(`pct=${tags.pct}: a percentage from 0 to 100`);
    else record.pct = Number(tags.pct);
  }
  for (const name of ['adkim', 'aspf'] as const) {
    const value = tags[name]?.toLowerCase();
    if (value === undefined) continue;
    if (value === 'r' || value === 's') record[name] = value;
    else record.errors.push(`${name}=${tags[name]}: alignment is r (relaxed) or s (strict)`);
  }
  return record;
}

/** The record to publish: the tags kept, the broken ones replaced, p and rua set. */
export function dmarcSuggestion(domain: string, existing?: DmarcRecord): string {
  const rua = existing?.rua.length ? existing.rua : [`dmarc@${domain}`];
  const policy = existing?.policy ?? 'none';
  return `v=DMARC1; p=${policy}; rua=${rua.map((a) => `mailto:${a}`).join(',')}`;
}
