import net from 'node:net';

/**
 * SPF records (RFC 7208), read the way a receiver reads them, without the sender's IP: which
 * record applies, whether it parses, how many DNS lookups it costs (at most 10, §4.6.4), and how
 * it ends (`-all`, `~all`, `+all`, nothing). Pure: the record fetcher is handed in, so the
 * walk over `include:` and `redirect=` runs on a table in the unit tests and on DNS in the check.
 */

export type Qualifier = '+' | '-' | '~' | '?';
export const MECHANISMS = ['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/** The mechanisms and modifier that make a DNS query when evaluated (RFC 7208 §4.6.4). */
const COSTS_A_LOOKUP: ReadonlySet<string> = new Set(['include', 'a', 'mx', 'ptr', 'exists']);

/** The lookup limit of RFC 7208 §4.6.4: past it, the result is permerror and SPF fails. */
export const SPF_LOOKUP_LIMIT = 10;

export interface SpfTerm {
  qualifier: Qualifier;
  mechanism: Mechanism;
  /** the domain-spec or address after the colon, without the CIDR length */
  value: string | null;
  /** the term as written */
  text: string;
}

export interface SpfRecord {
  text: string;
  terms: SpfTerm[];
  redirect: string | null;
  exp: string | null;
  /** syntax errors: any one makes the record a permerror (§4.6) */
  errors: string[];
}

/** A TXT record is an SPF record when it starts with "v=spf1" and then a space or its end (§4.5). */
export function isSpfRecord(txt: string): boolean {
  return /^v=spf1(?: |$)/i.test(txt);
}

const CIDR4 = /^(\d{1,2})$/;

export function parseSpf(text: string): SpfRecord {
  const record: SpfRecord = { text, terms: [], redirect: null, exp: null, errors: [] };
  if (!isSpfRecord(text)) {
    record.errors.push('it does not start with v=spf1');
    return record;
  }
  for (const term of text.trim().split(/ +/).slice(1)) {
    const modifier = /^([a-z][a-z0-9_.-]*)=(.*)$/i.exec(term);
    if (modifier) {
      const name = modifier[1].toLowerCase();
      if (name === 'redirect' || name === 'exp') {
        if (record[name] !== null) record.errors.push(`${name}= appears twice`);
        if (!modifier[2]) record.errors.push(`${term} has no domain`);
        record[name] = modifier[2];
      }
      // Unknown modifiers are ignored (§6).
      continue;
    }
    const m = /^([+\-~?]?)([a-z0-9]+)(?::([^/]*))?((?:\/\/?\d+){0,2})$/i.exec(term);
    const mechanism = m?.[2].toLowerCase() as Mechanism | undefined;
    if (!m || !mechanism || !(MECHANISMS as readonly string[]).includes(mechanism)) {
      record.errors.push(`unknown term "${term}"`);
      continue;
    }
    const value = m[3] ?? null;
    const cidr = m[4];
    const error = termError(mechanism, value, cidr, term);
    if (error) {
      record.errors.push(error);
      continue;
    }
    record.terms.push({ qualifier: (m[1] || '+') as Qualifier, mechanism, value, text: term });
  }
  return record;
}

function termError(mechanism: Mechanism, value: string | null, cidr: string, term: string): string | null {
  const lengths = cidr.split('/').filter(Boolean).map(Number);
  switch (mechanism) {
    case 'all':
      return value !== null || cidr ? `"${term}": all takes nothing after it` : null;
    case 'include':
    case 'exists':
      return !value ? `"${term}": ${mechanism} needs a domain (${mechanism}:example.org)` : cidr ? `"${term}": ${mechanism} takes no /length` : null;
    case 'ptr':
      return cidr ? `"${term}": ptr takes no /length` : value === '' ? `"${term}": nothing after the colon` : null;
    case 'a':
    case 'mx':
      if (value === '') return `"${term}": nothing after the colon`;
      // a/24, a//64 (IPv6 only), a/24//64 (§5.3)
      if (Number(/^\/(\d+)/.exec(cidr)?.[1] ?? 0) > 32 || Number(/\/\/(\d+)$/.exec(cidr)?.[1] ?? 0) > 128) return `"${term}": the /length is too large`;
      return null;
    case 'ip4': {
      if (!value || !net.isIPv4(value)) return `"${term}": ip4 needs an IPv4 address (ip4:192.0.2.1 or ip4:192.0.2.0/24)`;
      if (cidr && (!CIDR4.test(cidr.slice(1)) || cidr.startsWith('//') || lengths[0] > 32)) return `"${term}": an IPv4 length is /0 to /32`;
      return null;
    }
    case 'ip6': {
      // The address itself holds colons: the regex put all of it after the first colon.
      if (!value || !net.isIPv6(value)) return `"${term}": ip6 needs an IPv6 address (ip6:2001:db8::/32)`;
      if (cidr && (cidr.startsWith('//') || lengths[0] > 128)) return `"${term}": an IPv6 length is /0 to /128`;
      return null;
    }
  }
}

/** The strings of one TXT record are joined without spaces (§3.3). */
export type TxtLookup = (name: string) => Promise<string[] | null>;

export type SpfProblem =
  | { kind: 'none' }
  | { kind: 'multiple'; records: string[] }
  | { kind: 'syntax'; domain: string; record: string; errors: string[] }
  | { kind: 'too-many-lookups'; lookups: number }
  | { kind: 'target-missing'; domain: string; term: string }
  | { kind: 'target-multiple'; domain: string; term: string }
  | { kind: 'loop'; domain: string }
  | { kind: 'plus-all' }
  | { kind: 'neutral-all' }
  | { kind: 'no-all' };

export interface SpfReport {
  domain: string;
  /** the one SPF record at the domain (the first, when there are two) */
  record: string | null;
  records: string[];
  /** DNS lookups the record costs when evaluated in full, includes and redirects counted inside */
  lookups: number;
  /** the top-level terms that cost lookups, each with what it costs including what it pulls in */
  costs: { term: string; lookups: number }[];
  /** how the record ends, following redirect=; null when it has no all */
  all: Qualifier | null;
  problems: SpfProblem[];
}

/** Past this many records fetched the walk stops: a record that large fails anyway. */
const MAX_FETCHES = 50;

/**
 * Walks the domain's SPF record the way check_host() would for a sender that matches nothing,
 * so every include and redirect is followed and counted. Macros (§7) other than %{d} and %{o}
 * depend on the sender and are counted, not followed.
 */
export async function checkSpf(domain: string, lookupTxt: TxtLookup): Promise<SpfReport> {
  const report: SpfReport = { domain, record: null, records: [], lookups: 0, costs: [], all: null, problems: [] };
  const top = await spfRecordsAt(domain, lookupTxt);
  report.records = top;
  if (top.length === 0) {
    report.problems.push({ kind: 'none' });
    return report;
  }
  report.record = top[0];
  if (top.length > 1) report.problems.push({ kind: 'multiple', records: top });
  let fetches = 0;

  /** The lookups one record costs, and how it ends. */
  const walk = async (name: string, text: string, path: string[]): Promise<{ lookups: number; all: Qualifier | null; costs: { term: string; lookups: number }[] }> => {
    const parsed = parseSpf(text);
    if (parsed.errors.length) report.problems.push({ kind: 'syntax', domain: name, record: text, errors: parsed.errors });
    let lookups = 0;
    const costs: { term: string; lookups: number }[] = [];
    const follow = async (target: string, term: string): Promise<{ lookups: number; all: Qualifier | null }> => {
      const expanded = expandMacros(target, name);
      if (expanded === null || fetches >= MAX_FETCHES) return { lookups: 0, all: null };
      if (path.includes(expanded.toLowerCase())) {
        report.problems.push({ kind: 'loop', domain: expanded });
        return { lookups: 0, all: null };
      }
      fetches++;
      const records = await spfRecordsAt(expanded, lookupTxt);
      if (records.length === 0) {
        report.problems.push({ kind: 'target-missing', domain: expanded, term });
        return { lookups: 0, all: null };
      }
      if (records.length > 1) report.problems.push({ kind: 'target-multiple', domain: expanded, term });
      return walk(expanded, records[0], [...path, expanded.toLowerCase()]);
    };
    for (const term of parsed.terms) {
      if (!COSTS_A_LOOKUP.has(term.mechanism)) continue;
      let cost = 1;
      if (term.mechanism === 'include') cost += (await follow(term.value!, term.text)).lookups;
      lookups += cost;
      costs.push({ term: term.text, lookups: cost });
    }
    const all = parsed.terms.find((t) => t.mechanism === 'all');
    if (all) return { lookups, all: all.qualifier, costs };
    // A redirect is ignored when the record has an all (§6.1).
    if (parsed.redirect !== null) {
      const target = await follow(parsed.redirect, `redirect=${parsed.redirect}`);
      lookups += 1 + target.lookups;
      costs.push({ term: `redirect=${parsed.redirect}`, lookups: 1 + target.lookups });
      return { lookups, all: target.all, costs };
    }
    return { lookups, all: null, costs };
  };

  const result = await walk(domain, top[0], [domain.toLowerCase()]);
  report.lookups = result.lookups;
  report.costs = result.costs;
  report.all = result.all;
  if (result.lookups > SPF_LOOKUP_LIMIT) report.problems.push({ kind: 'too-many-lookups', lookups: result.lookups });
  if (result.all === '+') report.problems.push({ kind: 'plus-all' });
  else if (result.all === '?') report.problems.push({ kind: 'neutral-all' });
  else if (result.all === null && !report.problems.some((p) => p.kind === 'target-missing' || p.kind === 'loop')) report.problems.push({ kind: 'no-all' });
  return report;
}

async function spfRecordsAt(domain: string, lookupTxt: TxtLookup): Promise<string[]> {
  return ((await lookupTxt(domain)) ?? []).filter(isSpfRecord);
}

/**
 * The macros a check can expand without a sender (%{d}, %{o}: the domain; %% %_ %-); null when
 * the domain-spec needs the sender's IP or local part (%{i}, %{l}, …), so it cannot be followed.
 */
export function expandMacros(spec: string, domain: string): string | null {
  let unknown = false;
  const out = spec.replace(/%(?:\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}|(.))/gi, (_all, letter: string | undefined, digits: string, reverse: string, delimiters: string, escape: string | undefined) => {
    if (escape !== undefined) return escape === '%' ? '%' : escape === '_' ? ' ' : escape === '-' ? '%20' : (unknown = true, '');
    if (!['d', 'o'].includes(letter!.toLowerCase())) {
      unknown = true;
      return '';
    }
    let parts = domain.split(delimiters ? new RegExp(`[${delimiters.replace(/[-\\\]^]/g, '\\$&')}]`) : '.');
    if (reverse) parts = parts.reverse();
    if (digits) parts = parts.slice(-Number(digits));
    return parts.join('.');
  });
  return unknown ? null : out;
}

/**
 * Two SPF records made into one, as the merged record to publish instead: every mechanism of
 * both (once), the redirect of the first, and the stricter end (`-all` over `~all`).
 */
export function mergeSpf(records: string[]): string {
  const parsed = records.map(parseSpf);
  const terms: string[] = [];
  for (const r of parsed) for (const t of r.terms) if (t.mechanism !== 'all' && !terms.includes(t.text)) terms.push(t.text);
  const ends = parsed.flatMap((r) => r.terms.filter((t) => t.mechanism === 'all').map((t) => t.qualifier));
  const end = ends.includes('-') ? '-all' : '~all';
  const redirect = parsed.find((r) => r.redirect)?.redirect;
  return ['v=spf1', ...terms, ends.length || !redirect ? end : `redirect=${redirect}`].join(' ');
}

/** The record with its all replaced (or added): how `+all`, `?all` and a missing all are fixed. */
export function withAll(record: string, end: '-all' | '~all'): string {
  const words = record.trim().split(/ +/).filter((w) => !/^[+\-~?]?all$/i.test(w) && !/^redirect=/i.test(w));
  return [...words, end].join(' ');
}
