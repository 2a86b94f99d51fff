import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { checkSpf, expandMacros, isSpfRecord, mergeSpf, parseSpf, withAll, type SpfProblem } from '../../src/domain/spf.js';
import { dmarcSuggestion, isDmarcRecord, parseDmarc } from '../../src/domain/dmarc.js';
import { isDkimRecord, parseDkimKey } from '../../src/domain/dkim.js';
import { aligned, deliverabilityWords, reverseName, spfTermFor } from '../../src/domain/deliverability.js';
import { explain } from '../../src/domain/catalog.js';

test('SPF: which TXT records are SPF records (RFC 7208 §4.5)', () => {
  const rows: [string, boolean][] = [
    ['v=spf1 mx -all', true],
    ['v=spf1', true],
    ['V=SPF1 -all', true],
    ['v=spf10 -all', false],
    ['spf2.0/pra mx -all', false],
    ['google-site-verification=abc', false],
    [' v=spf1 -all', false],
  ];
  for (const [txt, want] of rows) assert.equal(isSpfRecord(txt), want, txt);
});

test('SPF: the records of RFC 7208 appendix A parse, term by term; broken ones name their error', () => {
  const rows: [string, string[], string | null, string[]][] = [
    // record, terms as parsed (qualifier + mechanism + value), redirect, errors
    ['v=spf1 +mx a:colo.example.com/28 -all', ['+mx', '+a:colo.example.com', '-all'], null, []],
    ['v=spf1 mx -all', ['+mx', '-all'], null, []],
    ['v=spf1 -all', ['-all'], null, []],
    ['v=spf1 a -all', ['+a', '-all'], null, []],
    ['v=spf1 a:example.org -all', ['+a:example.org', '-all'], null, []],
    ['v=spf1 mx:example.org -all', ['+mx:example.org', '-all'], null, []],
    ['v=spf1 mx mx:example.org -all', ['+mx', '+mx:example.org', '-all'], null, []],
    ['v=spf1 mx/30 mx:example.org/30 -all', ['+mx', '+mx:example.org', '-all'], null, []],
    ['v=spf1 ptr -all', ['+ptr', '-all'], null, []],
    ['v=spf1 ip4:192.0.2.128/28 -all', ['+ip4:192.0.2.128', '-all'], null, []],
    ['v=spf1 ip6:2001:db8::/32 ~all', ['+ip6:2001:db8::', '~all'], null, []],
    ['v=spf1 a//64 a/24//64 ?all', ['+a', '+a', '?all'], null, []],
    ['v=spf1 include:example.com include:example.org -all', ['+include:example.com', '+include:example.org', '-all'], null, []],
    ['v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all', ['+exists:%{ir}.%{l1r+-}._spf.%{d}', '-all'], null, []],
    ['v=spf1 redirect=_spf.example.com', [], '_spf.example.com', []],
    ['v=spf1 mx -all exp=explain._spf.%{d} foo=bar', ['+mx', '-all'], null, []],
    ['v=spf1 mx include: -all', ['+mx', '-all'], null, ['"include:": include needs a domain (include:example.org)']],
    ['v=spf1 ip4:192.0.2.300 -all', ['-all'], null, ['"ip4:192.0.2.300": ip4 needs an IPv4 address (ip4:192.0.2.1 or ip4:192.0.2.0/24)']],
    ['v=spf1 ip4:192.0.2.0/33 -all', ['-all'], null, ['"ip4:192.0.2.0/33": an IPv4 length is /0 to /32']],
    ['v=spf1 mx mailserver -all', ['+mx', '-all'], null, ['unknown term "mailserver"']],
    ['v=spf1 redirect=a.example redirect=b.example', [], 'b.example', ['redirect= appears twice']],
  ];
  for (const [record, terms, redirect, errors] of rows) {
    const r = parseSpf(record);
    assert.deepEqual(r.terms.map((t) => `${t.qualifier}${t.mechanism}${t.value !== null ? `:${t.value}` : ''}`), terms, record);
    assert.equal(r.redirect, redirect, record);
    assert.deepEqual(r.errors, errors, record);
  }
});

test('SPF macros: what a check can expand without a sender (RFC 7208 §7.4 examples)', () => {
  const domain = 'email.example.com';
  const rows: [string, string | null][] = [
    ['%{d}', 'email.example.com'],
    ['%{d4}', 'email.example.com'],
    ['%{d3}', 'email.example.com'],
    ['%{d2}', 'example.com'],
    ['%{d1}', 'com'],
    ['%{dr}', 'com.example.email'],
    ['%{d2r}', 'example.email'],
    ['_spf.%{d}', '_spf.email.example.com'],
    ['%{o}.x', 'email.example.com.x'],
    ['%{ir}.%{v}._spf.%{d2}', null],
    ['%{l}.example', null],
    ['plain.example', 'plain.example'],
  ];
  for (const [spec, want] of rows) assert.equal(expandMacros(spec, domain), want, spec);
});

/** A TXT table as DNS: null for a name that does not exist. */
const table = (zone: Record<string, string[]>) => {
  const asked: string[] = [];
  return { asked, lookup: async (name: string) => { asked.push(name); return zone[name] ?? null; } };
};
const kinds = (problems: SpfProblem[]) => problems.map((p) => p.kind);

test('SPF lookups: include, a, mx, ptr, exists and redirect count, inside includes too; ip4, ip6 and all do not (RFC 7208 §4.6.4)', async () => {
  const zone: Record<string, string[]> = {
    'plain.example': ['v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all'],
    'mx.example': ['v=spf1 mx -all', 'some other text'],
    'nested.example': ['v=spf1 a mx include:inc1.example -all'],
    'inc1.example': ['v=spf1 ptr exists:%{i}.rbl.example include:inc2.example ~all'],
    'inc2.example': ['v=spf1 a:x.example mx:y.example ?all'],
    'redirecting.example': ['v=spf1 a redirect=target.example'],
    'target.example': ['v=spf1 mx include:inc2.example -all'],
    'redirect-ignored.example': ['v=spf1 mx -all redirect=target.example'],
    // exactly 10: the limit itself passes
    // a 1 + include 6 + include 3
    'ten.example': ['v=spf1 a include:inc1.example include:inc2.example -all'],
    // 11: one over
    'eleven.example': ['v=spf1 a mx include:inc1.example include:inc2.example -all'],
  };
  const rows: [string, number, string[]][] = [
    ['plain.example', 0, []],
    ['mx.example', 1, []],
    // a 1 + mx 1 + include 1 + (ptr 1 + exists 1 + include 1 + (a 1 + mx 1)) = 8
    ['nested.example', 8, []],
    // a 1 + redirect 1 + (mx 1 + include 1 + (2)) = 6; ends as the target ends
    ['redirecting.example', 6, []],
    ['redirect-ignored.example', 1, []],
    ['ten.example', 10, []],
    ['eleven.example', 11, ['too-many-lookups']],
  ];
  for (const [domain, lookups, problems] of rows) {
    const report = await checkSpf(domain, table(zone).lookup);
    assert.equal(report.lookups, lookups, domain);
    assert.deepEqual(kinds(report.problems), problems, domain);
  }
  const nested = await checkSpf('nested.example', table(zone).lookup);
  assert.deepEqual(nested.costs, [{ term: 'a', lookups: 1 }, { term: 'mx', lookups: 1 }, { term: 'include:inc1.example', lookups: 6 }]);
  assert.equal((await checkSpf('redirecting.example', table(zone).lookup)).all, '-');
});

test('SPF problems: none, two records, +all, ?all, no all, an include without SPF, a loop, a syntax error', async () => {
  const zone: Record<string, string[]> = {
    'none.example': ['google-site-verification=abc'],
    'two.example': ['v=spf1 mx -all', 'v=spf1 include:_spf.provider.example ~all'],
    '_spf.provider.example': ['v=spf1 ip4:192.0.2.0/24 -all'],
    'plus.example': ['v=spf1 mx +all'],
    'bare.example': ['v=spf1 mx all'],
    'neutral.example': ['v=spf1 mx ?all'],
    'open.example': ['v=spf1 mx'],
    'dangling.example': ['v=spf1 include:gone.example -all'],
    'loop.example': ['v=spf1 include:loop2.example -all'],
    'loop2.example': ['v=spf1 include:loop.example -all'],
    'typo.example': ['v=spf1 mx ipv4:192.0.2.1 -all'],
    'good.example': ['v=spf1 mx include:_spf.provider.example ~all'],
  };
  const rows: [string, string[]][] = [
    ['none.example', ['none']],
    ['missing.example', ['none']],
    ['two.example', ['multiple']],
    ['plus.example', ['plus-all']],
    ['bare.example', ['plus-all']],
    ['neutral.example', ['neutral-all']],
    ['open.example', ['no-all']],
    ['dangling.example', ['target-missing']],
    ['loop.example', ['loop']],
    ['typo.example', ['syntax']],
    ['good.example', []],
  ];
  for (const [domain, problems] of rows) assert.deepEqual(kinds((await checkSpf(domain, table(zone).lookup)).problems), problems, domain);
});

test('SPF fixes: two records merged into one, and the end replaced or added', () => {
  assert.equal(mergeSpf(['v=spf1 mx -all', 'v=spf1 include:_spf.provider.example ~all']), 'v=spf1 mx include:_spf.provider.example -all');
  assert.equal(mergeSpf(['v=spf1 mx a ~all', 'v=spf1 a ip4:192.0.2.1 ~all']), 'v=spf1 mx a ip4:192.0.2.1 ~all');
  assert.equal(withAll('v=spf1 mx +all', '~all'), 'v=spf1 mx ~all');
  assert.equal(withAll('v=spf1 mx all', '~all'), 'v=spf1 mx ~all');
  assert.equal(withAll('v=spf1 a mx', '-all'), 'v=spf1 a mx -all');
  const rows: [string, string][] = [
    ['smtp.verein.example', 'a:smtp.verein.example'],
    ['192.0.2.25', 'ip4:192.0.2.25'],
    ['2001:db8::25', 'ip6:2001:db8::25'],
    ['smtp.office365.com', 'include:spf.protection.outlook.com'],
    ['smtp.gmail.com', 'include:_spf.google.com'],
  ];
  for (const [host, term] of rows) assert.equal(spfTermFor(host), term, host);
});

test('DMARC: the records of RFC 7489 appendix B parse; broken ones name their error', () => {
  const rows: [string, string | null, string[], number, string[]][] = [
    // record, policy, rua, pct, errors
    ['v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com', 'none', ['dmarc-feedback@example.com'], 100, []],
    ['v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; ruf=mailto:auth-reports@thirdparty.example.net', 'none', ['dmarc-feedback@example.com'], 100, []],
    ['v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; pct=25', 'quarantine', ['dmarc-feedback@example.com', 'tld-test@thirdparty.example.net'], 25, []],
    ['v=DMARC1;p=reject', 'reject', [], 100, []],
    ['v=DMARC1; rua=mailto:d@example.com', 'none', ['d@example.com'], 100, []],
    ['v=DMARC1', null, [], 100, ['p= is missing: the policy (none, quarantine or reject) is required']],
    ['v=DMARC1; p=block', null, [], 100, ['p=block: the policy is none, quarantine or reject']],
    ['v=DMARC1; p=none; pct=150', 'none', [], 100, ['pct=150: a percentage from 0 to 100']],
    ['v=DMARC1; p=none; rua=dmarc@example.com', 'none', [], 100, ['rua: "dmarc@example.com" is not a mailto: address']],
    ['v=DMARC1; p=none; adkim=x', 'none', [], 100, ['adkim=x: alignment is r (relaxed) or s (strict)']],
    ['p=none; v=DMARC1', null, [], 100, ['it does not start with v=DMARC1']],
  ];
  for (const [record, policy, rua, pct, errors] of rows) {
    const r = parseDmarc(record);
    assert.equal(r.policy, policy, record);
    assert.deepEqual(r.rua, rua, record);
    assert.equal(r.pct, pct, record);
    assert.deepEqual(r.errors, errors, record);
  }
  assert.equal(isDmarcRecord('v=DMARC1; p=none'), true);
  assert.equal(isDmarcRecord('v=spf1 -all'), false);
  assert.equal(parseDmarc('v=DMARC1; p=reject; sp=none').subdomainPolicy, 'none');
  assert.equal(dmarcSuggestion('verein.example'), 'v=DMARC1; p=none; rua=mailto:dmarc@verein.example');
  assert.equal(dmarcSuggestion('verein.example', parseDmarc('v=DMARC1; p=quarantine; rua=mailto:r@x.example; pct=500')), 'v=DMARC1; p=quarantine; rua=mailto:r@x.example');
});

test('DKIM: a key record, its length, testing, revoked and broken keys', () => {
  const key = (bits: number) => crypto.generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const long = key(2048);
  const short = key(512);
  const rows: [string, number | null, boolean, boolean, number][] = [
    // record, bits, testing, revoked, errors
    [`v=DKIM1; k=rsa; p=${long}`, 2048, false, false, 0],
    [`v=DKIM1; p=${long.slice(0, 100)} ${long.slice(100)}`, 2048, false, false, 0],
    [`k=rsa; t=y; p=${short}`, 512, true, false, 0],
    ['v=DKIM1; p=', null, false, true, 0],
    ['v=DKIM1; k=rsa; p=bm90IGEga2V5', null, false, false, 1],
    ['v=DKIM2; p=abc', null, false, false, 2],
  ];
  for (const [record, bits, testing, revoked, errors] of rows) {
    const k = parseDkimKey(record);
    assert.equal(k.bits, bits, record);
    assert.equal(k.testing, testing, record);
    assert.equal(k.revoked, revoked, record);
    assert.equal(k.errors.length, errors, `${record}: ${k.errors.join('; ')}`);
  }
  assert.equal(isDkimRecord(`v=DKIM1; k=rsa; p=${long}`), true);
  assert.equal(isDkimRecord('v=spf1 -all'), false);
});

test('reverse names, alignment, and the language by LANG (the catalog\'s rule)', () => {
  assert.equal(reverseName('192.0.2.25'), '25.2.0.192.in-addr.arpa');
  assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  assert.equal(aligned('verein.example', 'verein.example'), true);
  assert.equal(aligned('bounces.verein.example', 'verein.example'), true);
  assert.equal(aligned('provider.example', 'verein.example'), false);
  for (const [lang, german] of [['de_DE.UTF-8', true], ['de', true], ['en_GB.UTF-8', false], ['C', false], [undefined, false]] as const) {
    assert.equal(deliverabilityWords(lang).met === 'erfüllt', german, String(lang));
    assert.equal(explain('policy', lang).startsWith('Der empfangende'), german, String(lang));
  }
});
