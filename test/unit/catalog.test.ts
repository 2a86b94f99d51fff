import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILT_IN_RULES, CATEGORIES, Catalog, explain, type DeliveryFailure } from '../../src/domain/catalog.js';

const catalog = new Catalog();
const reply = (code: number, text: string): DeliveryFailure => ({ code: 'EENVELOPE', responseCode: code, response: `${code} ${text}`, message: `Can't send mail - all recipients were rejected: ${code} ${text}` });

test('server replies become categories, permanent or temporary', () => {
  const rows: [DeliveryFailure, string, boolean, string | null][] = [
    [reply(550, '5.1.1 <a@b.de>: Recipient address rejected: User unknown'), 'unknown-mailbox', true, '5.1.1'],
    [reply(550, 'Requested action not taken: mailbox unavailable'), 'unknown-mailbox', true, null],
    [reply(451, '4.7.1 Greylisted, please try again later'), 'greylisted', false, '4.7.1'],
    [reply(450, '4.2.0 <a@b.de>: Recipient address rejected: Greylisted'), 'greylisted', false, '4.2.0'],
    [reply(452, '4.2.2 Mailbox full'), 'mailbox-full', false, '4.2.2'],
    [reply(552, '5.2.2 The email account that you tried to reach is over quota'), 'mailbox-full', true, '5.2.2'],
    [reply(554, '5.7.1 Message rejected as spam'), 'rejected-as-spam', true, '5.7.1'],
    [reply(550, '5.7.1 Service unavailable; client host blocked using Spamhaus'), 'rejected-as-spam', true, '5.7.1'],
    [reply(554, '5.7.1 <x@y.de>: Relay access denied'), 'auth', true, '5.7.1'],
    [reply(530, '5.7.0 Authentication Required'), 'auth', true, '5.7.0'],
    [reply(553, '5.7.1 <noreply@verein.example>: Sender address rejected: not owned by user verein'), 'policy', true, '5.7.1'],
    [reply(550, '5.1.2 <a@b.invalid>: Recipient address rejected: Domain does not exist'), 'bad-domain', true, '5.1.2'],
    [reply(550, '5.7.26 Unauthenticated email is not accepted due to DMARC policy'), 'policy', true, '5.7.26'],
    [reply(421, '4.7.0 Too many connections from your IP, slow down'), 'rate-limited', false, '4.7.0'],
    [reply(450, '4.7.1 Rate limit exceeded'), 'rate-limited', false, '4.7.1'],
    [reply(550, '5.1.2 Host unknown: domain not found'), 'bad-domain', true, '5.1.2'],
    [reply(535, '5.7.8 Authentication credentials invalid'), 'auth', true, '5.7.8'],
    [reply(553, 'sorry, that domain isn\'t in my list of allowed rcpthosts'), 'auth', true, null],
    [reply(553, '5.1.3 Bad recipient address syntax'), 'unknown-mailbox', true, '5.1.3'],
    [reply(451, '4.3.0 Temporary lookup failure'), 'other', false, '4.3.0'],
    [reply(559, '5.9.9 Something nobody has seen'), 'other', true, '5.9.9'],
  ];
  for (const [failure, category, permanent, enhanced] of rows) {
    const c = catalog.classify(failure);
    assert.deepEqual([c.category, c.permanent, c.enhancedCode], [category, permanent, enhanced], failure.response);
  }
});

/** As the servers send them; multi-line replies as nodemailer joins them. */
const providerReplies: [string, DeliveryFailure, string, boolean][] = [
  // Postfix
  ['Postfix', reply(550, '5.1.1 <anna@verein.example>: Recipient address rejected: User unknown in virtual mailbox table'), 'unknown-mailbox', true],
  ['Postfix', reply(550, '5.1.1 <anna@verein.example>: Recipient address rejected: User unknown in local recipient table'), 'unknown-mailbox', true],
  ['Postfix', reply(452, '4.2.2 Mailbox full'), 'mailbox-full', false],
  ['Postfix', reply(552, '5.2.2 <anna@verein.example>: Mailbox is full / Blocks limit exceeded'), 'mailbox-full', true],
  ['Postfix', reply(450, '4.2.0 <anna@verein.example>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/verein.example.html'), 'greylisted', false],
  ['Postfix', reply(421, '4.7.0 mail.verein.example Error: too many connections from 192.0.2.10'), 'rate-limited', false],
  ['Postfix', reply(554, '5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org'), 'rejected-as-spam', true],
  ['Postfix', reply(554, '5.7.1 <anna@verein.example>: Recipient address rejected: Access denied'), 'policy', true],
  ['Postfix', reply(450, '4.7.1 Client host rejected: cannot find your hostname, [192.0.2.10]'), 'policy', false],
  ['Postfix', reply(552, '5.3.4 Error: message file too big'), 'too-large', true],
  ['Postfix', { code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 552, response: '552 5.3.4 Message size exceeds fixed limit', message: 'Mail command failed: 552 5.3.4 Message size exceeds fixed limit' }, 'too-large', true],
  ['Postfix', reply(553, '5.6.7 <jürgen@verein.example>: SMTPUTF8 is required, but was not offered by host mx.verein.example[192.0.2.1]'), 'needs-smtputf8', true],
  // Exim
  ['Exim', reply(550, 'Unrouteable address'), 'bad-domain', true],
  ['Exim', reply(550, 'No Such User Here'), 'unknown-mailbox', true],
  ['Exim', reply(550, 'Mailbox quota exceeded'), 'mailbox-full', true],
  ['Exim', reply(451, 'Temporary local problem - please try later'), 'other', false],
  ['Exim', { message: 'defer (-53): retry time not reached for any host' }, 'server-unreachable', false],
  ['Exim', reply(451, 'You are greylisted. Please try again later.'), 'greylisted', false],
  ['Exim', reply(550, 'Administrative prohibition'), 'policy', true],
  ['Exim', reply(550, 'rejected because 192.0.2.10 is in a black list at zen.spamhaus.org'), 'rejected-as-spam', true],
  ['Exim', reply(552, 'Message size exceeds maximum permitted'), 'too-large', true],
  // Exchange / Office 365
  ['Exchange', reply(550, '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'), 'unknown-mailbox', true],
  ['Exchange', reply(550, '5.1.1 RESOLVER.ADR.RecipNotFound; not found'), 'unknown-mailbox', true],
  ['Exchange', reply(550, '5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]'), 'unknown-mailbox', true],
  ['Exchange', reply(554, '5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded'), 'mailbox-full', true],
  ['Exchange', reply(552, '5.3.4 Message size exceeds fixed maximum message size'), 'too-large', true],
  ['Exchange', reply(550, '5.2.3 RESOLVER.RST.RecipSizeLimit; message too large for this recipient'), 'too-large', true],
  ['Exchange', reply(550, '5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(2600)'), 'rejected-as-spam', true],
  ['Exchange', reply(550, '5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/'), 'rejected-as-spam', true],
  ['Exchange', reply(550, '5.7.1 Unfortunately, messages from [192.0.2.10] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3150).'), 'rejected-as-spam', true],
  ['Exchange', reply(452, '4.5.3 Too many recipients'), 'rate-limited', false],
  ['Exchange', reply(451, '4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)'), 'rate-limited', false],
  ['Exchange', reply(550, '5.7.509 Access denied, sending domain verein.example does not pass DMARC verification and has a DMARC policy of reject.'), 'policy', true],
  // Gmail
  ['Gmail', reply(550, "5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp"), 'unknown-mailbox', true],
  ['Gmail', reply(550, '5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser - gsmtp'), 'unknown-mailbox', true],
  ['Gmail', reply(452, '4.2.2 The email account that you tried to reach is over quota. Please direct\n452 4.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp'), 'mailbox-full', false],
  ['Gmail', reply(552, '5.2.2 The email account that you tried to reach is over quota and inactive. - gsmtp'), 'mailbox-full', true],
  ['Gmail', reply(450, '4.2.1 The user you are trying to contact is receiving mail at a rate that\n450 4.2.1 prevents additional messages from being delivered. - gsmtp'), 'rate-limited', false],
  ['Gmail', reply(550, '5.4.5 Daily user sending limit exceeded. - gsmtp'), 'rate-limited', false],
  ['Gmail', reply(452, '4.5.3 Your message has too many recipients. - gsmtp'), 'rate-limited', false],
  ['Gmail', reply(421, '4.7.0 [192.0.2.10] Our system has detected an unusual rate of unsolicited mail originating\n421-4.7.0 from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. - gsmtp'), 'rejected-as-spam', false],
  ['Gmail', reply(550, '5.7.1 [192.0.2.10] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. - gsmtp'), 'rejected-as-spam', true],
  ['Gmail', reply(550, "5.7.26 Unauthenticated email from verein.example is not accepted due to domain's DMARC policy. - gsmtp"), 'policy', true],
  ['Gmail', reply(552, "5.2.3 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines. - gsmtp"), 'too-large', true],
  ['Gmail', reply(421, '4.7.0 Try again later, closing connection. (EHLO) - gsmtp'), 'rate-limited', false],
  // GMX / WEB.DE
  ['GMX', reply(550, 'Requested action not taken: mailbox unavailable'), 'unknown-mailbox', true],
  ['GMX', reply(554, 'Transaction failed\n554-Reject due to policy restrictions.\n554 For explanation visit https://postmaster.gmx.net/en/case?c=r0601&i=ip&v=192.0.2.10&r=1Mxxx'), 'policy', true],
  ['GMX', reply(421, 'gmx.net (mxgmx116) Nemesis ESMTP Service not available\n421-Service unavailable\n421 Too many connections'), 'rate-limited', false],
  ['GMX', reply(554, 'gmx.net (mxgmx016) Nemesis ESMTP Service not available\n554-No SMTP service\n554-IP address is block listed.'), 'rejected-as-spam', true],
  ['WEB.DE', reply(552, 'Requested mail action aborted: exceeded storage allocation'), 'mailbox-full', true],
  ['WEB.DE', reply(421, 'Rate limit reached. Please try again later'), 'rate-limited', false],
  // T-Online
  ['T-Online', reply(554, 'IP=192.0.2.10 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)'), 'rejected-as-spam', true],
  ['T-Online', reply(554, 'IP=192.0.2.10 - None/bad reputation. Ask your postmaster for help or to contact postmaster@rx.t-online.de for reset. (NOWL)'), 'rejected-as-spam', true],
  ['T-Online', reply(554, 'Dialup/transient IP not allowed. Use a mailgateway or contact toda@rx.t-online.de if obsolete. (DIAL)'), 'policy', true],
];

test('the replies of Postfix, Exim, Exchange, Gmail, GMX/WEB.DE and T-Online become the right category', () => {
  for (const [server, failure, category, permanent] of providerReplies) {
    const c = catalog.classify(failure);
    assert.deepEqual([c.category, c.permanent], [category, permanent], `${server}: ${failure.response ?? failure.message}`);
  }
});

test('an enhanced code the catalog knows decides over the reply code; an unknown one by its subject, then the reply code', () => {
  const rows: [DeliveryFailure, string][] = [
    [reply(552, '5.3.4 Message too big for system'), 'too-large'],
    [reply(552, 'Requested mail action aborted: exceeded storage allocation'), 'mailbox-full'],
    [reply(550, '5.7.350 Remote server returned message detected as spam'), 'rejected-as-spam'],
    [reply(550, '5.7.999 Something the receiving site made up'), 'policy'],
    [reply(550, '5.1.99 Something about the address'), 'unknown-mailbox'],
    [reply(550, '5.0.0 Something without detail'), 'unknown-mailbox'],
    [reply(421, '4.3.2 Service shutting down, closing connection'), 'server-unreachable'],
  ];
  for (const [failure, category] of rows) assert.equal(catalog.classify(failure).category, category, failure.response);
  // The operator's reply-code rule in front does not override an enhanced code the catalog knows.
  const custom = new Catalog([{ match: '552', category: 'mailbox-full', permanent: false }, ...BUILT_IN_RULES]);
  assert.equal(custom.classify(reply(552, '5.3.4 Error: message file too big')).category, 'too-large');
  assert.deepEqual([custom.classify(reply(552, 'Sorry, no')).category, custom.classify(reply(552, 'Sorry, no')).permanent], ['mailbox-full', false]);
});

test('connection errors become server-side categories, always temporary', () => {
  const rows: [DeliveryFailure, string][] = [
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:2525' }, 'server-unreachable'],
    [{ code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:2525' }, 'server-unreachable'],
    [{ code: 'EDNS', message: 'getaddrinfo ENOTFOUND mail.example.invalid' }, 'server-unreachable'],
    [{ code: 'ETIMEDOUT', message: 'Connection timeout' }, 'timeout'],
    [{ code: 'ETLS', message: 'wrong version number' }, 'tls'],
    [{ code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" }, 'tls'],
    // as nodemailer really reports failed handshakes: a socket error with OpenSSL's words
    [{ code: 'ESOCKET', message: 'certificate has expired' }, 'tls'],
    [{ code: 'ESOCKET', message: 'C0BC:error:0A00010B:SSL routines:ssl3_get_record:wrong version number' }, 'tls'],
    [{ code: 'ESOCKET', message: 'self-signed certificate in certificate chain' }, 'tls'],
    [{ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Error: authentication failed', message: 'Invalid login' }, 'auth'],
    [{ message: 'something odd' }, 'other'],
  ];
  for (const [failure, category] of rows) {
    const c = catalog.classify(failure);
    assert.equal(c.category, category, failure.message);
    if (category !== 'auth') assert.equal(c.permanent, false, failure.message);
    if (category === 'tls') assert.equal(c.fatal, true, `a TLS failure stops the run at once: ${failure.message}`);
  }
});

test('rules put in front win over the built-in ones', () => {
  const custom = new Catalog([{ match: '/mailbox unavailable/i', category: 'mailbox-full', permanent: false, text: 'Dieser Anbieter meint: voll' }, ...BUILT_IN_RULES]);
  const c = custom.classify(reply(550, 'Requested action not taken: mailbox unavailable'));
  assert.deepEqual([c.category, c.permanent, c.explanation], ['mailbox-full', false, 'Dieser Anbieter meint: voll']);
});

test('explanations in English and German, by LANG', () => {
  assert.match(explain('greylisted', 'en_US.UTF-8'), /greylisting/);
  assert.match(explain('greylisted', 'de_DE.UTF-8'), /nächsten Morgen/);
  assert.match(explain('too-large', 'en_US.UTF-8'), /bigger than the receiving server accepts.*attachment/);
  assert.match(explain('too-large', 'de_DE.UTF-8'), /größer.*Anhang/);
  for (const category of CATEGORIES) {
    assert.ok(explain(category, 'en') && explain(category, 'de'), `${category} is explained in English and German`);
  }
  assert.equal(explain('no-such-category', 'C'), '');
});

test('what stops a run: server-level failures go back to the queue, some leave the server out at once', () => {
  const rows: [DeliveryFailure, boolean, boolean][] = [
    [reply(550, '5.1.1 User unknown'), false, false],
    [reply(451, '4.7.1 Greylisted'), false, false],
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, true, true],
    [{ code: 'ETIMEDOUT', message: 'Connection timeout' }, true, false],
    [{ code: 'ECONNRESET', message: 'socket hang up' }, true, false],
    [{ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Error: authentication failed', message: 'Invalid login' }, true, true],
    [{ code: 'EENVELOPE', command: 'MAIL FROM', responseCode: 553, response: '553 5.7.1 Sender address rejected', message: 'Mail command failed' }, true, true],
    [{ code: 'ENOSPC', message: 'no space left on device' }, true, true],
  ];
  for (const [failure, serverLevel, fatal] of rows) {
    const c = catalog.classify(failure);
    assert.deepEqual([c.serverLevel, c.fatal], [serverLevel, fatal], failure.response ?? failure.message);
  }
});
