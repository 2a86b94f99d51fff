import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { mailer, membersCsv, tempDir, writeFile } from '../support/cli.js';
import { startDns, txtStrings, type TestDns } from '../support/dns.js';
import { startSmtpServer } from '../support/smtp.js';

const dkimKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

/** One zone for every domain of the tests: each domain is one case. */
const ZONE = {
  // everything right; its TXT answer is too big for UDP (a long verification record), so node's resolver asks again over TCP
  'good.example': { MX: [[10, 'mx.good.example']] as [number, string][], TXT: ['v=spf1 mx a:smtp.good.example -all', txtStrings(`site-verification=${'a'.repeat(1500)}`)] },
  'mx.good.example': { A: ['127.0.0.2'] },
  'smtp.good.example': { A: ['127.0.0.3'] },
  '3.0.0.127.in-addr.arpa': { PTR: ['smtp.good.example'] },
  '_dmarc.good.example': { TXT: ['v=DMARC1; p=quarantine; rua=mailto:dmarc@good.example'] },
  'selector1._domainkey.good.example': { TXT: [txtStrings(`v=DKIM1; k=rsa; p=${dkimKey}`)] },
  // no DMARC
  'nodmarc.example': { MX: [[10, 'mx.good.example']] as [number, string][], TXT: ['v=spf1 mx -all'] },
  // two SPF records
  'twospf.example': { MX: [[10, 'mx.good.example']] as [number, string][], TXT: ['v=spf1 mx -all', 'v=spf1 include:_spf.provider.example ~all'] },
  '_spf.provider.example': { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] },
  '_dmarc.twospf.example': { TXT: ['v=DMARC1; p=none; rua=mailto:dmarc@twospf.example'] },
  // SPF with 11 lookups: a 1, mx 1, include 1+4, include 1+3
  'many.example': { A: ['127.0.1.1'], MX: [[10, 'mx.many.example']] as [number, string][], TXT: ['v=spf1 a mx include:_spf1.many.example include:_spf2.many.example -all'] },
  'mx.many.example': { A: ['127.0.1.2'] },
  '_spf1.many.example': { TXT: ['v=spf1 exists:%{i}.rbl.many.example a:h1.many.example a:h2.many.example a:h3.many.example ~all'] },
  '_spf2.many.example': { TXT: ['v=spf1 a:h4.many.example a:h5.many.example a:h6.many.example ~all'] },
  '_dmarc.many.example': { TXT: ['v=DMARC1; p=reject'] },
  // +all
  'plusall.example': { MX: [[10, 'mx.good.example']] as [number, string][], TXT: ['v=spf1 mx +all'] },
  '_dmarc.plusall.example': { TXT: ['v=DMARC1; p=none; rua=mailto:dmarc@plusall.example'] },
};

let dns: TestDns;
before(async () => { dns = await startDns(ZONE); });
after(async () => { await dns.close(); });

/** A folder whose settings send From the domain through smtpHost, with DNS from the test server. */
function folder(domain: string, extra: Record<string, unknown> = {}, server = dns.server): string {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ from: `Verein <news@${domain}>`, smtp: 'smtp://verein@smtp.good.example:587', publicUrl: 'https://verein.example', dnsServers: [server], ...extra }));
  return dir;
}

interface Report {
  domain: string;
  findings: { check: string; ok: boolean; text: string; record: string | null }[];
  requirements: { name: string; met: boolean }[];
}

async function checkJson(dir: string, args: string[] = []): Promise<{ code: number; report: Report; stderr: string }> {
  const r = await mailer(dir, ['check', '--domain', ...args, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout), stderr: r.stderr };
}

const failed = (report: Report) => report.findings.filter((f) => !f.ok);
const met = (report: Report) => Object.fromEntries(report.requirements.map((r) => [r.name, r.met]));

test('a domain with everything right: every check ok, every requirement met, exit 0; no SMTP server is needed', async () => {
  const dir = folder('good.example');
  const { code, report, stderr } = await checkJson(dir);
  assert.equal(code, 0, stderr);
  assert.deepEqual(Object.keys(report), ['domain', 'findings', 'requirements']);
  assert.equal(report.domain, 'good.example', 'the From domain by default');
  assert.deepEqual(failed(report), []);
  assert.deepEqual([...new Set(report.findings.map((f) => f.check))], ['mx', 'spf', 'dmarc', 'dkim', 'ptr']);
  for (const f of report.findings) assert.deepEqual(Object.keys(f), ['check', 'ok', 'text', 'record']);
  assert.deepEqual(report.requirements, [
    { name: 'spf-or-dkim-aligned', met: true }, { name: 'dmarc-present', met: true }, { name: 'one-click-unsubscribe', met: true },
  ]);
  const text = (check: string) => report.findings.find((f) => f.check === check)!.text;
  assert.equal(text('spf'), 'SPF: one record, ending in -all or ~all, 2 of 10 DNS lookups: v=spf1 mx a:smtp.good.example -all');
  // The 2048-bit key is published as two strings, joined again (RFC 7208 §3.3 holds for DKIM too).
  assert.equal(text('dkim'), 'DKIM: a key is published at selector1._domainkey.good.example (rsa, 2048 bit).');
  assert.equal(text('ptr'), 'PTR: the mail server smtp.good.example has the address 127.0.0.3, whose reverse name smtp.good.example points back to it.');
  assert.ok(dns.queries.includes('TXT default._domainkey.good.example'), 'the common selectors are tried');
  assert.ok(dns.queries.filter((q) => q === 'TXT good.example').length >= 2, 'the TXT answer came over TCP after a truncated UDP one');

  // In German by LANG, as the catalog; the same exit code.
  const de = await mailer(dir, ['check', '--domain'], { LANG: 'de_DE.UTF-8' });
  assert.equal(de.code, 0, de.stderr);
  assert.match(de.stdout, /^Zustellbarkeit von good\.example$/m);
  assert.match(de.stdout, /^ {2}ok {6}DMARC: _dmarc\.good\.example hat einen Eintrag mit der Richtlinie p=quarantine; Berichte gehen an dmarc@good\.example\.$/m);
  assert.match(de.stdout, /^ {2}erfüllt {7}ein DMARC-Eintrag$/m);

  // publicUrl is what one-click unsubscribe needs: without it, exit 1.
  const noUrl = await checkJson(folder('good.example', { publicUrl: undefined }));
  assert.equal(noUrl.code, 1);
  assert.deepEqual(met(noUrl.report), { 'spf-or-dkim-aligned': true, 'dmarc-present': true, 'one-click-unsubscribe': false });
});

test('DKIM under a selector given with --dkim-selector, and one that has no key', async () => {
  const dir = folder('good.example');
  const asked = dns.queries.length;
  const given = await checkJson(dir, ['--dkim-selector', 'selector1']);
  assert.equal(given.code, 0, given.stderr);
  assert.deepEqual(given.report.findings.filter((f) => f.check === 'dkim'), [
    { check: 'dkim', ok: true, text: 'DKIM: a key is published at selector1._domainkey.good.example (rsa, 2048 bit).', record: null },
  ]);
  assert.deepEqual(dns.queries.slice(asked).filter((q) => q.includes('_domainkey')), ['TXT selector1._domainkey.good.example'], 'only the selector given');

  const other = await checkJson(dir, ['--dkim-selector', 'other', '--dkim-selector', 'mx2026']);
  assert.deepEqual(other.report.findings.filter((f) => f.check === 'dkim'), [{
    check: 'dkim', ok: false,
    text: 'DKIM: no DKIM key at other._domainkey.good.example, mx2026._domainkey.good.example. Turn on DKIM signing at your mail provider and publish the key it gives you as a TXT record at other._domainkey.good.example:',
    record: 'v=DKIM1; k=rsa; p=<the public key your mail provider gives you>',
  }]);
  assert.equal(other.code, 0, 'SPF alone meets the requirement');
});

test('a domain without DMARC: the record to add, with reports to dmarc@ the domain; exit 1', async () => {
  // The server's address is given as an IP without a reverse name: the PTR finding names the record.
  const dir = folder('nodmarc.example', { smtp: 'smtp://127.0.0.9:587' });
  const { code, report } = await checkJson(dir);
  assert.equal(code, 1);
  assert.deepEqual(failed(report), [
    {
      check: 'dmarc', ok: false,
      text: 'DMARC: there is no DMARC record at _dmarc.nodmarc.example. Gmail and Yahoo require one of bulk senders and may refuse or junk your mails. Add this TXT record at _dmarc.nodmarc.example (p=none only watches and sends reports to the address; tighten it later):',
      record: 'v=DMARC1; p=none; rua=mailto:dmarc@nodmarc.example',
    },
    {
      check: 'dkim', ok: false,
      text: 'DKIM: no DKIM key found for nodmarc.example under the usual selectors (default, selector1, selector2, google, k1, mail, dkim, s1, s2). If your provider signs with another one, name it: --dkim-selector <name>. Otherwise turn on DKIM signing at your mail provider and publish the key it gives you as a TXT record at mail._domainkey.nodmarc.example:',
      record: 'v=DKIM1; k=rsa; p=<the public key your mail provider gives you>',
    },
    {
      check: 'ptr', ok: false,
      text: 'PTR: the address 127.0.0.9 of the mail server 127.0.0.9 has no reverse name, and many receivers refuse mail from such addresses. Ask whoever runs the server (your provider) to set the PTR record of 9.0.0.127.in-addr.arpa to:',
      record: 'mail.nodmarc.example',
    },
  ]);
  assert.deepEqual(met(report), { 'spf-or-dkim-aligned': true, 'dmarc-present': false, 'one-click-unsubscribe': true });

  const human = await mailer(dir, ['check', '--domain', 'nodmarc.example']);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /^ {2}FAILED {2}DMARC: there is no DMARC record at _dmarc\.nodmarc\.example\..*\n {10}v=DMARC1; p=none; rua=mailto:dmarc@nodmarc\.example$/m);
  assert.match(human.stdout, /^ {2}not met {7}a DMARC record$/m);
});

test('two SPF records: one merged record to publish instead', async () => {
  const { code, report } = await checkJson(folder('twospf.example'));
  assert.equal(code, 1);
  assert.deepEqual(failed(report).filter((f) => f.check === 'spf'), [{
    check: 'spf', ok: false,
    text: 'SPF: twospf.example has 2 SPF records. Receivers treat that as an error (RFC 7208 §4.5) and SPF fails for every mail. Delete them and publish one TXT record at twospf.example that holds both:',
    record: 'v=spf1 mx include:_spf.provider.example -all',
  }]);
  assert.deepEqual(met(report), { 'spf-or-dkim-aligned': false, 'dmarc-present': true, 'one-click-unsubscribe': true });
});

test('an SPF record that needs 11 lookups: what each term costs, and the record with a and mx as addresses', async () => {
  const { code, report } = await checkJson(folder('many.example'));
  assert.equal(code, 1);
  assert.deepEqual(failed(report).filter((f) => f.check === 'spf'), [{
    check: 'spf', ok: false,
    text: 'SPF: the record at many.example needs 11 DNS lookups; receivers stop at 10 (RFC 7208 §4.6.4) and SPF fails for every mail. What costs: a 1, mx 1, include:_spf1.many.example 5, include:_spf2.many.example 4. With the a and mx terms written as the addresses they stand for it needs fewer; change the record at many.example to:',
    record: 'v=spf1 ip4:127.0.1.1 ip4:127.0.1.2 include:_spf1.many.example include:_spf2.many.example -all',
  }]);
});

test('an SPF record ending in +all: the record ending in ~all', async () => {
  const { code, report } = await checkJson(folder('plusall.example'));
  assert.equal(code, 1);
  assert.deepEqual(failed(report).filter((f) => f.check === 'spf'), [{
    check: 'spf', ok: false,
    text: 'SPF: the record at plusall.example ends in +all: it allows every server on the internet to send as your domain, and providers count it against you. End it in ~all (or -all once every sender is listed):',
    record: 'v=spf1 mx ~all',
  }]);
  assert.equal(met(report)['spf-or-dkim-aligned'], false);
});

test('a domain with no SPF and no MX: the SPF record names the SMTP host; a domain that does not exist is said so', async () => {
  const missing = await checkJson(folder('good.example'), ['nowhere.example']);
  assert.equal(missing.code, 1);
  assert.equal(missing.report.domain, 'nowhere.example');
  assert.deepEqual(failed(missing.report).find((f) => f.check === 'mx'), { check: 'mx', ok: false, text: 'MX: the domain nowhere.example does not exist in DNS. Check its spelling (in "from" or --domain).', record: null });
  assert.deepEqual(failed(missing.report).find((f) => f.check === 'spf')?.record, 'v=spf1 a:smtp.good.example -all');
  // A domain with letters beyond ASCII is looked up as its punycode; a name that is none is bad input.
  assert.equal((await checkJson(folder('good.example'), ['bücher.example'])).report.domain, 'xn--bcher-kva.example');
  const bad = await mailer(folder('good.example'), ['check', '--domain', 'not a domain']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--domain "not a domain" is not a domain name/);
});

/** A UDP port on 127.0.0.1 with nothing behind it. */
async function closedUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

test('DNS that cannot be reached: exit 3, naming the server, nothing on stdout', async () => {
  const server = `127.0.0.1:${await closedUdpPort()}`;
  const started = Date.now();
  const r = await mailer(folder('good.example', {}, server), ['check', '--domain', '--json']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`DNS cannot be reached: ${server.replace(/\./g, '\\.')} gave no answer for \\w+ [\\w.]+ \\((ECONNREFUSED|ETIMEOUT)\\): the domain good\\.example cannot be checked`));
  assert.match(r.stderr, /"dnsServers"/);
  assert.ok(Date.now() - started < 15_000, 'a short timeout');
  // A bad setting is bad input, before any lookup.
  const bad = await mailer(folder('good.example', {}, 'dns.example:53'), ['check', '--domain']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /"dnsServers" must be a list of DNS server addresses/);
});

test('check --domain takes no --to; check without --domain still tests the SMTP server', async () => {
  const dir = folder('good.example');
  const both = await mailer(dir, ['check', '--domain', '--to', 'me@example.org']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--to sends test mails through the server, --domain checks DNS only/);
  const smtp = await startSmtpServer();
  try {
    const r = await mailer(dir, ['check', '--smtp', smtp.url]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /the server can be used/);
  } finally {
    await smtp.close();
  }
});

test('why: one more step when a send was refused as spam and the From domain fails the check; none otherwise, and DNS trouble changes nothing', async () => {
  const smtp = await startSmtpServer({ reject: { 'anna@example.org': '554 5.7.1 Message rejected as spam' } });
  try {
    // The template's From is the mail's sender, whatever the settings' from says (here a domain that passes).
    const dir = folder('good.example', { smtp: smtp.url });
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'news.txt', 'Subject: News\nFrom: Verein <news@nodmarc.example>\n\nHallo {{name}}\n');
    assert.equal((await mailer(dir, ['send', 'news.txt'])).code, 1);

    const line = 'the From domain nodmarc.example fails the deliverability check (a DMARC record: not met), which makes providers refuse mail as spam or by policy: mailer check --domain nodmarc.example';
    const anna = await mailer(dir, ['why', 'anna@example.org', '--json']);
    assert.equal(anna.code, 0, anna.stderr);
    assert.equal(JSON.parse(anna.stdout).nextSteps.at(-1), line);
    const human = await mailer(dir, ['why', 'anna@example.org']);
    assert.equal(human.stdout.split('\n').filter((l) => l.includes('deliverability check')).length, 1);

    // Ben's mail went out: no check is run at all.
    const asked = dns.queries.length;
    const ben = await mailer(dir, ['why', 'ben@example.org', '--json']);
    assert.equal(ben.code, 0);
    assert.ok(!JSON.parse(ben.stdout).nextSteps.some((s: string) => s.includes('deliverability')));
    assert.equal(dns.queries.length, asked, 'no DNS question for a send that was not refused');

    // DNS that does not answer: why answers as before, quickly.
    writeFile(dir, 'mailer.json', JSON.stringify({ from: 'Verein <news@nodmarc.example>', smtp: smtp.url, dnsServers: [`127.0.0.1:${await closedUdpPort()}`] }));
    const started = Date.now();
    const blind = await mailer(dir, ['why', 'anna@example.org', '--json']);
    assert.equal(blind.code, 0, blind.stderr);
    assert.ok(!JSON.parse(blind.stdout).nextSteps.some((s: string) => s.includes('deliverability')));
    assert.ok(Date.now() - started < 8000, `why waited ${Date.now() - started} ms for DNS`);
  } finally {
    await smtp.close();
  }
});
