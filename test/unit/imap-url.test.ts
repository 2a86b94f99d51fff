import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImapUrl, redactImap } from '../../src/config/imap-url.js';

test('bounceMailbox URLs: scheme, port, folder, user and password', () => {
  const rows: [string, string | undefined, object][] = [
    ['imaps://verein@imap.example.org/INBOX', undefined, { host: 'imap.example.org', port: 993, secure: true, user: 'verein', folder: 'INBOX', display: 'imaps://verein@imap.example.org/INBOX' }],
    ['imaps://verein@imap.example.org', undefined, { port: 993, folder: 'INBOX' }],
    ['imap://bounces@127.0.0.1:1143/Bounces/2026', undefined, { host: '127.0.0.1', port: 1143, secure: false, folder: 'Bounces/2026' }],
    ['imaps://info%40verein.example@outlook.office365.com/INBOX', 'pw', { user: 'info@verein.example', pass: 'pw' }],
    ['imaps://info@verein.example:p/a@ss@imap.example.org/INBOX', undefined, { user: 'info@verein.example', pass: 'p/a@ss', host: 'imap.example.org', display: 'imaps://info@verein.example@imap.example.org/INBOX' }],
  ];
  for (const [url, password, expected] of rows) {
    const t = parseImapUrl(url, password);
    for (const [key, value] of Object.entries(expected)) assert.deepEqual((t as unknown as Record<string, unknown>)[key], value, `${url}: ${key}`);
  }
  assert.throws(() => parseImapUrl('https://imap.example.org'), /not an IMAP URL/);
  assert.equal(redactImap('imaps://u:geheim@h/INBOX'), 'imaps://u:***@h/INBOX');
  assert.equal(parseImapUrl('imaps://u:geheim@h/INBOX').mask('NO [AUTHENTICATIONFAILED] geheim'), 'NO [AUTHENTICATIONFAILED] ***');
});
