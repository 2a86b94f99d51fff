import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmtpUrl, redact, secretMask } from '../../src/config/smtp-url.js';
import { MailerError } from '../../src/errors.js';

/** Passwords with each character that ends a URL's authority, starts a query, or escapes. */
const PASSWORDS = ['ab/cd', 'ab#cd', 'ab?cd', '50%off', 'ab@cd', 'a/b#c?d%e@f', 'p:w'];

test('a password with any of / # ? % @ is read as typed, and the host and port after it', () => {
  for (const pass of PASSWORDS) {
    const t = parseSmtpUrl(`smtp://alice:${pass}@mail.example.org:2525`);
    assert.deepEqual([t.host, t.port, t.secure, t.auth], ['mail.example.org', 2525, false, { user: 'alice', pass }], pass);
    assert.equal(t.display, 'smtp://alice@mail.example.org:2525');
  }
});

test('percent-encoding is decoded where it is valid, taken literally where not', () => {
  const rows: [string, string][] = [
    ['p%40ss', 'p@ss'],
    ['p%2Fss%25', 'p/ss%'],
    ['50%off', '50%off'],
    ['100%', '100%'],
    ['%ab', '%ab'],
  ];
  for (const [inUrl, pass] of rows) assert.equal(parseSmtpUrl(`smtps://u:${inUrl}@h.example`).auth?.pass, pass, inUrl);
  assert.equal(parseSmtpUrl('smtp://me%40example.org:pw@h.example').auth?.user, 'me@example.org');
  assert.equal(parseSmtpUrl('smtp://me@example.org:pw@h.example').auth?.user, 'me@example.org');
});

test('$MAILER_SMTP_PASSWORD wins over the URL password', () => {
  assert.equal(parseSmtpUrl('smtp://u:inurl@h.example', 'fromenv').auth?.pass, 'fromenv');
  assert.equal(parseSmtpUrl('smtp://u@h.example', 'fromenv').auth?.pass, 'fromenv');
});

test('redact hides the password whatever characters it holds, and keeps everything else', () => {
  const rows: [string, string][] = [
    ['smtp://u:ab/cd@h.example:587', 'smtp://u:***@h.example:587'],
    ['smtp://u:ab#cd@h.example', 'smtp://u:***@h.example'],
    ['smtp://u:ab?cd@h.example', 'smtp://u:***@h.example'],
    ['smtp://u:50%off@h.example', 'smtp://u:***@h.example'],
    ['smtp://u:a@b@h.example', 'smtp://u:***@h.example'],
    ['smtp://me@example.org:pw@h.example', 'smtp://me@example.org:***@h.example'],
    ['http://u:ab/cd@h.example', 'http://u:***@h.example'],
    ['u:ab/cd@h.example', 'u:***@h.example'],
    ['smtp:u:ab/cd@h.example', 'smtp:***@h.example'],
    ['smtp://u@h.example', 'smtp://u@h.example'],
    ['smtp://h.example:25', 'smtp://h.example:25'],
  ];
  for (const [url, shown] of rows) assert.equal(redact(url), shown, url);
});

test('an URL that is refused names itself without its password', () => {
  const bad = ['smtp//u:s3cr/et@h.example', 'http://u:s3cr/et@h.example', 'smtp://u:s3cr/et@', 'smtp://u:s3cr/et@h.example:99999', 'u:s3cr/et@h.example'];
  for (const url of bad) {
    assert.throws(() => parseSmtpUrl(url), (err: unknown) => {
      assert.ok(err instanceof MailerError, url);
      assert.equal(err.exitCode, 2, url);
      assert.match(err.message, /is not an SMTP URL/, url);
      assert.ok(!`${err.message} ${err.hint}`.includes('s3cr'), `${url}: ${err.message}`);
      return true;
    });
  }
});

test('a reply that echoes the password is masked in every form the server was sent it', () => {
  for (const pass of PASSWORDS) {
    const { mask } = parseSmtpUrl(`smtp://alice:${pass}@h.example`);
    const plain = Buffer.from(`\0alice\0${pass}`).toString('base64');
    const reply = `535 5.7.8 Authentication failed for ${pass} (${encodeURIComponent(pass)}, ${Buffer.from(pass).toString('base64')}, ${plain})`;
    assert.equal(mask(reply), '535 5.7.8 Authentication failed for *** (***, ***, ***)', pass);
  }
  const both = parseSmtpUrl('smtp://alice:inurl@h.example', 'fromenv').mask;
  assert.equal(both('535 fromenv inurl'), '535 *** ***');
  assert.equal(secretMask('u', [undefined])('250 ok'), '250 ok');
});
