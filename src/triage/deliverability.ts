import net from 'node:net';
import { domainToASCII } from 'node:url';
import { checkSpf, mergeSpf, parseSpf, SPF_LOOKUP_LIMIT, withAll, type SpfProblem, type SpfReport } from '../domain/spf.js';
import { dmarcSuggestion, isDmarcRecord, parseDmarc } from '../domain/dmarc.js';
import { COMMON_DKIM_SELECTORS, dkimName, isDkimRecord, MIN_RSA_BITS, parseDkimKey } from '../domain/dkim.js';
import { aligned, deliverabilityWords, REQUIREMENTS, reverseName, spfTermFor, type Finding, type Requirement, type Words } from '../domain/deliverability.js';
import { DnsUnreachable, type DnsLookup } from '../domain/ports.js';
import { ExitCode, MailerError, badInput } from '../errors.js';
import type { Settings } from '../config/settings.js';
import { parseSmtpUrl } from '../config/smtp-url.js';
import { dnsResolver } from '../dns/resolver.js';

/**
 * `mailer check --domain`: the DNS of a sender domain read the way the big mailbox providers
 * read it, each finding in plain words with the record that fixes it, and the providers'
 * bulk-sender requirements as met / not met.
 */
export interface DomainCheckInput {
  domain: string;
  /** selectors to look at; empty: the common ones are tried */
  dkimSelectors: string[];
  /** the host names (or addresses) of the configured SMTP servers */
  smtpHosts: string[];
  /** the envelope sender's domain when it is not the From domain (bounceAddress) */
  envelopeDomain?: string;
  /** List-Unsubscribe with one-click goes into every mail (publicUrl set, tracking on) */
  oneClickUnsubscribe: boolean;
  dns: DnsLookup;
  lang?: string;
}

export interface DomainReport {
  domain: string;
  findings: Finding[];
  requirements: { name: Requirement; met: boolean }[];
}

export async function checkDomain(input: DomainCheckInput): Promise<DomainReport> {
  const words = deliverabilityWords(input.lang);
  const { domain, dns } = input;
  const [mx, spf, dmarc, dkim, ptr] = await Promise.all([
    checkMx(domain, dns, words),
    checkSpfFindings(domain, input, words),
    checkDmarc(domain, dns, words),
    checkDkim(domain, input.dkimSelectors, dns, words),
    checkPtr(input.smtpHosts, domain, dns, words),
  ]);
  const findings = [...mx, ...spf.findings, ...dmarc.findings, ...dkim.findings, ...ptr];
  const envelopeAligned = !input.envelopeDomain || aligned(input.envelopeDomain, domain);
  if (spf.ok && !envelopeAligned) findings.push({ check: 'spf', ok: false, text: words.spfNotAligned(input.envelopeDomain!, domain), record: null });
  const met: Record<Requirement, boolean> = {
    'spf-or-dkim-aligned': (spf.ok && envelopeAligned) || dkim.ok,
    'dmarc-present': dmarc.ok,
    'one-click-unsubscribe': input.oneClickUnsubscribe,
  };
  return { domain, findings, requirements: REQUIREMENTS.map((name) => ({ name, met: met[name] })) };
}

async function checkMx(domain: string, dns: DnsLookup, words: Words): Promise<Finding[]> {
  const records = await dns.mx(domain);
  if (records === null) return [{ check: 'mx', ok: false, text: words.domainMissing(domain), record: null }];
  const suggestion = `10 mail.${domain}.`;
  if (records.length === 0) return [{ check: 'mx', ok: false, text: words.mxMissing(domain), record: suggestion }];
  // RFC 7505: a single MX with the root as its host takes no mail.
  if (records.every((r) => r.exchange === '' || r.exchange === '.')) return [{ check: 'mx', ok: false, text: words.mxNull(domain), record: suggestion }];
  const hosts = [...records].sort((a, b) => a.priority - b.priority).map((r) => `${r.exchange} (${r.priority})`).join(', ');
  return [{ check: 'mx', ok: true, text: words.mxOk(hosts), record: null }];
}

async function checkSpfFindings(domain: string, input: DomainCheckInput, words: Words): Promise<{ ok: boolean; findings: Finding[] }> {
  const report = await checkSpf(domain, (name) => input.dns.txt(name));
  if (report.problems.length === 0) {
    return { ok: true, findings: [{ check: 'spf', ok: true, text: words.spfOk(report.record!, report.lookups), record: null }] };
  }
  const findings: Finding[] = [];
  for (const problem of report.problems) findings.push(await spfFinding(problem, report, input, words));
  return { ok: false, findings };
}

async function spfFinding(problem: SpfProblem, report: SpfReport, input: DomainCheckInput, words: Words): Promise<Finding> {
  const { domain } = report;
  const record = report.record ?? '';
  const finding = (text: string, fix: string | null): Finding => ({ check: 'spf', ok: false, text, record: fix });
  switch (problem.kind) {
    case 'none': {
      const hasMx = ((await input.dns.mx(domain)) ?? []).some((r) => r.exchange && r.exchange !== '.');
      const smtp = [...new Set(input.smtpHosts.map(spfTermFor))];
      const terms = hasMx || smtp.length === 0 ? ['mx', ...smtp] : smtp;
      return finding(words.spfNone(domain), ['v=spf1', ...terms, '-all'].join(' '));
    }
    case 'multiple':
      return finding(words.spfMultiple(domain, problem.records.length), mergeSpf(problem.records));
    case 'syntax': {
      const parsed = parseSpf(problem.record);
      const kept = ['v=spf1', ...parsed.terms.map((t) => t.text), ...(parsed.redirect ? [`redirect=${parsed.redirect}`] : [])].join(' ');
      return finding(words.spfSyntax(problem.domain, problem.errors.join('; ')), problem.domain === domain ? kept : record);
    }
    case 'too-many-lookups': {
      const costs = report.costs.map((c) => `${c.term} ${c.lookups}`).join(', ');
      const flat = await flattened(record, domain, input.dns);
      return finding(words.spfTooMany(domain, problem.lookups, costs, flat !== null), flat ?? record);
    }
    case 'target-missing':
      return finding(words.spfTargetMissing(problem.term, problem.domain), without(record, problem.term));
    case 'target-multiple':
      return finding(words.spfTargetMultiple(problem.term, problem.domain), without(record, problem.term));
    case 'loop':
      return finding(words.spfLoop(problem.domain), record);
    case 'plus-all':
      return finding(words.spfPlusAll(domain), withAll(record, '~all'));
    case 'neutral-all':
      return finding(words.spfNeutralAll(domain), withAll(record, '~all'));
    case 'no-all':
      return finding(words.spfNoAll(domain), withAll(record, '~all'));
  }
}

function without(record: string, term: string): string {
  return record.split(/ +/).filter((w) => w !== term).join(' ');
}

/**
 * The record with its own a and mx terms (and ptr, which RFC 7208 §5.5 says not to use) written
 * as the ip4:/ip6: addresses they stand for today: the exact record to publish when that brings
 * it within 10 lookups; null when it does not (the includes are too many on their own).
 */
async function flattened(record: string, domain: string, dns: DnsLookup): Promise<string | null> {
  const parsed = parseSpf(record);
  const out: string[] = ['v=spf1'];
  let saved = 0;
  for (const term of parsed.terms) {
    if (term.mechanism === 'ptr') { saved++; continue; }
    if (term.mechanism !== 'a' && term.mechanism !== 'mx') { out.push(term.text); continue; }
    if (term.value?.includes('%')) { out.push(term.text); continue; }
    const name = term.value ?? domain;
    const hosts = term.mechanism === 'a' ? [name] : ((await dns.mx(name)) ?? []).map((r) => r.exchange).filter((h) => h && h !== '.');
    const addresses = (await Promise.all(hosts.map((h) => dns.addresses(h)))).flatMap((a) => a ?? []);
    const q = term.qualifier === '+' ? '' : term.qualifier;
    for (const a of [...new Set(addresses)]) out.push(`${q}${net.isIPv6(a) ? 'ip6' : 'ip4'}:${a}`);
    saved++;
  }
  if (parsed.redirect) out.push(`redirect=${parsed.redirect}`);
  const report = await checkSpf(domain, async (name) => (name.toLowerCase() === domain.toLowerCase() ? [out.join(' ')] : dns.txt(name)));
  return saved > 0 && report.lookups <= SPF_LOOKUP_LIMIT ? out.join(' ') : null;
}

async function checkDmarc(domain: string, dns: DnsLookup, words: Words): Promise<{ ok: boolean; findings: Finding[] }> {
  const name = `_dmarc.${domain}`;
  let at = name;
  let records = ((await dns.txt(name)) ?? []).filter(isDmarcRecord);
  // A subdomain without its own record falls under its organisational domain's (RFC 7489 §6.6.3);
  // taken here as the last two labels, without the public suffix list.
  const labels = domain.split('.');
  if (records.length === 0 && labels.length > 2) {
    at = `_dmarc.${labels.slice(-2).join('.')}`;
    records = ((await dns.txt(at)) ?? []).filter(isDmarcRecord);
  }
  const fail = (text: string, record: string): { ok: boolean; findings: Finding[] } => ({ ok: false, findings: [{ check: 'dmarc', ok: false, text, record }] });
  if (records.length === 0) return fail(words.dmarcMissing(name), dmarcSuggestion(domain));
  if (records.length > 1) return fail(words.dmarcMultiple(at), dmarcSuggestion(domain, parseDmarc(records[0])));
  const parsed = parseDmarc(records[0]);
  if (parsed.errors.length) return fail(words.dmarcInvalid(at, parsed.errors.join('; ')), dmarcSuggestion(domain, parsed));
  return { ok: true, findings: [{ check: 'dmarc', ok: true, text: words.dmarcOk(at, parsed.policy!, parsed.rua.join(', ')), record: null }] };
}

const DKIM_EXAMPLE = 'v=DKIM1; k=rsa; p=<the public key your mail provider gives you>';

async function checkDkim(domain: string, given: string[], dns: DnsLookup, words: Words): Promise<{ ok: boolean; findings: Finding[] }> {
  const selectors = given.length ? given : COMMON_DKIM_SELECTORS;
  const answers = await Promise.all(selectors.map(async (s) => ({ selector: s, records: ((await dns.txt(dkimName(s, domain))) ?? []).filter(isDkimRecord) })));
  const findings: Finding[] = [];
  let ok = false;
  for (const { selector, records } of answers) {
    const name = dkimName(selector, domain);
    for (const record of records) {
      const key = parseDkimKey(record);
      if (key.revoked) findings.push({ check: 'dkim', ok: false, text: words.dkimRevoked(name, name), record: DKIM_EXAMPLE });
      else if (key.errors.length) findings.push({ check: 'dkim', ok: false, text: words.dkimBad(name, key.errors.join('; '), name), record: DKIM_EXAMPLE });
      else if (key.bits !== null && key.bits < MIN_RSA_BITS) findings.push({ check: 'dkim', ok: false, text: words.dkimShort(name, key.bits, name), record: DKIM_EXAMPLE });
      else {
        ok = true;
        findings.push({ check: 'dkim', ok: true, text: words.dkimOk(name, key.bits ? `${key.keyType}, ${key.bits} bit` : key.keyType, key.testing), record: null });
      }
    }
  }
  if (!answers.some((a) => a.records.length)) {
    const example = dkimName(given[0] ?? 'mail', domain);
    const tried = given.length ? selectors.map((s) => dkimName(s, domain)).join(', ') : selectors.join(', ');
    findings.push({ check: 'dkim', ok: false, text: words.dkimNone(domain, tried, given.length > 0, example), record: DKIM_EXAMPLE });
  }
  return { ok, findings };
}

async function checkPtr(hosts: string[], domain: string, dns: DnsLookup, words: Words): Promise<Finding[]> {
  if (hosts.length === 0) return [{ check: 'ptr', ok: true, text: words.ptrNoSmtp, record: null }];
  const findings: Finding[] = [];
  for (const host of [...new Set(hosts.map((h) => h.toLowerCase()))]) {
    const literal = net.isIP(host) !== 0;
    const addresses = literal ? [host] : await dns.addresses(host);
    if (!addresses?.length) {
      findings.push({ check: 'ptr', ok: false, text: words.ptrNoAddress(host), record: null });
      continue;
    }
    const wanted = literal ? `mail.${domain}` : host;
    for (const address of addresses) {
      const rev = reverseName(address);
      const names = ((await dns.reverse(address)) ?? []).map((n) => n.replace(/\.$/, ''));
      if (names.length === 0) {
        findings.push({ check: 'ptr', ok: false, text: words.ptrMissing(host, address, rev), record: wanted });
        continue;
      }
      // Forward-confirmed reverse DNS: one of the names has the address again.
      const back = await Promise.all(names.map(async (n) => ({ name: n, addresses: (await dns.addresses(n)) ?? [] })));
      const confirmed = back.find((b) => b.addresses.some((a) => sameAddress(a, address)));
      findings.push(confirmed
        ? { check: 'ptr', ok: true, text: words.ptrOk(host, address, confirmed.name), record: null }
        : { check: 'ptr', ok: false, text: words.ptrMismatch(host, address, names.join(', '), rev), record: wanted });
    }
  }
  return findings;
}

function sameAddress(a: string, b: string): boolean {
  return reverseName(a) === reverseName(b);
}

/**
 * For `mailer why`: the requirements the From domain fails, or null when it passes or when DNS
 * gives no answer in time (why must never fail because of DNS).
 */
export async function failedRequirements(input: DomainCheckInput, deadlineMs: number): Promise<Requirement[] | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), deadlineMs); });
  try {
    const report = await Promise.race([checkDomain(input), deadline]);
    if (!report) return null;
    const failing = report.requirements.filter((r) => !r.met && r.name !== 'one-click-unsubscribe');
    return failing.length ? failing.map((r) => r.name) : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The domain of an address as written in "from" (`Verein <noreply@verein.example>`). */
export function domainOfAddress(address: string | undefined | null): string | null {
  const m = /@([^\s<>@"]+)>?\s*$/.exec(address ?? '');
  return m ? m[1].toLowerCase().replace(/\.$/, '') : null;
}

/** What the check reads from the settings: the From domain, the SMTP hosts, bounceAddress, publicUrl. */
export function domainCheckInput(settings: Settings, opts: { domain?: string; dkimSelectors?: string[]; dns: DnsLookup; lang?: string }): DomainCheckInput {
  const fromDomain = domainOfAddress(settings.from);
  // An IDN (bücher.de) is looked up as its punycode (xn--bcher-kva.de).
  const given = (opts.domain ?? fromDomain ?? '').trim().replace(/\.$/, '');
  const domain = (domainToASCII(given) || given).toLowerCase();
  if (!domain) {
    throw badInput('no domain to check: no --domain given and no "from" in the settings', 'give the domain: mailer check --domain verein.example, or set "from" in mailer.json');
  }
  if (!/^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$/i.test(domain)) {
    throw badInput(`--domain ${JSON.stringify(opts.domain)} is not a domain name`, 'give the part after the @ of your From address, e.g. --domain verein.example');
  }
  const selectors = (opts.dkimSelectors ?? []).map((s) => s.trim());
  const badSelector = selectors.find((s) => !/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/i.test(s));
  if (badSelector !== undefined) throw badInput(`--dkim-selector ${JSON.stringify(badSelector)} is not a selector name`, 'the selector is the s= of a DKIM-Signature header, e.g. --dkim-selector selector1');
  const bounceDomain = domainOfAddress(settings.bounceAddress);
  return {
    domain,
    dkimSelectors: selectors,
    smtpHosts: settings.smtp.map((url) => parseSmtpUrl(url).host),
    // The envelope sender is the From address unless bounceAddress names another (only when the From is the domain checked).
    envelopeDomain: bounceDomain && (!fromDomain || fromDomain === domain) ? bounceDomain : undefined,
    oneClickUnsubscribe: !!settings.publicUrl && settings.track,
    dns: opts.dns,
    lang: opts.lang,
  };
}

/** `mailer check --domain`: the check on the settings' DNS servers; DNS that cannot be reached stops it (exit 3). */
export async function checkSenderDomain(settings: Settings, opts: { domain?: string; dkimSelectors?: string[] }): Promise<DomainReport> {
  const dns = dnsResolver({ servers: settings.dnsServers, timeoutMs: 2000, tries: 2 });
  const input = domainCheckInput(settings, { ...opts, dns });
  try {
    return await checkDomain(input);
  } catch (err) {
    if (err instanceof DnsUnreachable) {
      throw new MailerError(`${err.message}: the domain ${input.domain} cannot be checked`, {
        exitCode: ExitCode.serverUnusable,
        hint: settings.dnsServers ? `check that the DNS servers in "dnsServers" (${settings.dnsServers.join(', ')}) answer, or remove the setting to use the system's` : 'check the network connection and the system\'s DNS servers (/etc/resolv.conf), or set "dnsServers" in mailer.json',
      });
    }
    throw err;
  }
}
