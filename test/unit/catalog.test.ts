import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILT_IN_RULES, Catalog, explain, type DeliveryFailure } from '../../src/core/catalog.js';

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
