import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { INVITATION, ROOT, mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startSmtpServer } from '../support/smtp.js';
import { startDovecot, type TestImapServer } from '../support/dovecot.js';
import { bounceFromFixture } from '../support/bounces.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'bounces');
const members = [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org']];

/** A folder whose three members got the invitation through a real SMTP server, and the bounce mailbox in its settings. */
async function sentFolder(imap: TestImapServer, settings: object = {}) {
  const server = await startSmtpServer();
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url, ...settings }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  await server.close();
  const log = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as { id: number; email: string; messageId: string }[];
  return { dir, byEmail: Object.fromEntries(log.map((s) => [s.email, s])) };
}


const ordinary = (subject: string) => `From: Petra <petra@example.org>\r\nTo: bounces@verein.example\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n\r\nHallo, kurze Frage zur Versammlung.\r\n`;

/** Each folder's messages as subject → flags, looked at by a client of its own. */
async function folders(imap: TestImapServer): Promise<Record<string, Record<string, string[]>>> {
  const client = await imap.client();
  try {
    const out: Record<string, Record<string, string[]>> = {};
    for (const f of await client.list()) {
      await client.mailboxOpen(f.path, { readOnly: true });
      out[f.path] = {};
      if (client.mailbox && client.mailbox.exists === 0) continue;
      for (const m of await client.fetchAll('1:*', { envelope: true, flags: true })) out[f.path][m.envelope?.subject ?? '?'] = [...(m.flags ?? [])].sort();
    }
    return out;
  } finally {
    await client.logout();
  }
}

const env = (imap: TestImapServer) => ({ MAILER_IMAP_PASSWORD: imap.password });
const dbBytes = (dir: string) => fs.readFileSync(path.join(dir, 'mailer.db'));

test('bounces fetch: the DSN and the plain-text bounce are imported and moved, ordinary mails keep place and flags, a second fetch changes nothing', async () => {
  const imap = await startDovecot();
  try {
    const { dir, byEmail } = await sentFolder(imap);
    const client = await imap.client();
    await client.append('INBOX', bounceFromFixture('rfc3464-postfix.eml', byEmail['anna@example.org'], true), []);
    await client.append('INBOX', ordinary('Gelesene Frage'), ['\\Seen']);
    await client.append('INBOX', bounceFromFixture('exim-plain.eml', byEmail['cem@example.org'], true), ['\\Seen']);
    await client.append('INBOX', ordinary('Ungelesene Frage'), ['\\Flagged']);
    await client.logout();
    const before = await folders(imap);
    assert.deepEqual(Object.keys(before), ['INBOX'], 'no mailer-processed folder yet');

    const r = await mailer(dir, ['bounces', 'fetch', '--json'], env(imap));
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual({ read: j.read, bounces: j.bounces, matched: j.matched, unmatched: j.unmatched, moved: j.moved, left: j.left, unparsable: j.unparsable },
      { read: 4, bounces: 2, matched: 2, unmatched: [], moved: 2, left: 2, unparsable: [] });

    const after = await folders(imap);
    assert.deepEqual(after.INBOX, { 'Gelesene Frage': ['\\Seen'], 'Ungelesene Frage': ['\\Flagged'] }, 'the ordinary mails stay, the unread one unread');
    assert.deepEqual(Object.keys(after['mailer-processed']).sort(), ['Mail delivery failed: returning message to sender', 'Undelivered Mail Returned to Sender']);
    const db = openDb(dir);
    const statuses = db.prepare('SELECT email, status FROM sends ORDER BY email').all();
    const bounces = db.prepare('SELECT count(*) AS n FROM bounces').get();
    db.close();
    assert.deepEqual(statuses, [
      { email: 'anna@example.org', status: 'bounced' }, { email: 'ben@example.org', status: 'sent' }, { email: 'cem@example.org', status: 'bounced' },
    ]);
    assert.deepEqual(bounces, { n: 2 });

    // Again: nothing new is read, nothing changes, in the mailbox or the database.
    const bytes = dbBytes(dir);
    const second = await mailer(dir, ['bounces', 'fetch', '--json'], env(imap));
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(JSON.parse(second.stdout), { read: 0, bounces: 0, matched: 0, unmatched: [], moved: 0, left: 0, unparsable: [], suppressed: [], dryRun: false });
    assert.deepEqual(await folders(imap), after);
    const db2 = openDb(dir);
    assert.deepEqual(db2.prepare('SELECT count(*) AS n FROM bounces').get(), { n: 2 });
    db2.close();
    assert.ok(dbBytes(dir).equals(bytes), 'the second fetch wrote nothing to the database');

    // A mail that comes in later is the only one read next time.
    const c2 = await imap.client();
    await c2.append('INBOX', ordinary('Noch eine Frage'), []);
    await c2.logout();
    const third = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /read 1 new message, 0 bounces .* 1 left in place/);
    assert.deepEqual((await folders(imap)).INBOX['Noch eine Frage'], []);
  } finally {
    await imap.stop();
  }
});

test('bounces fetch --dry-run changes neither the mailbox nor the database; an unparsable report is left in place and listed; mailer run fetches', async () => {
  const imap = await startDovecot();
  try {
    const { dir, byEmail } = await sentFolder(imap);
    const client = await imap.client();
    await client.append('INBOX', bounceFromFixture('rfc3464-postfix.eml', byEmail['ben@example.org'], true), []);
    await client.append('INBOX', fs.readFileSync(path.join(FIXTURES, 'garbled-report.eml'), 'utf8').replace(/\r?\n/g, '\r\n'), []);
    await client.logout();
    const before = await folders(imap);
    const bytes = dbBytes(dir);

    const dry = await mailer(dir, ['bounces', 'fetch', '--dry-run', '--json'], env(imap));
    assert.equal(dry.code, 1, 'the unparsable report makes it exit 1');
    const d = JSON.parse(dry.stdout);
    assert.deepEqual([d.read, d.bounces, d.matched, d.moved, d.left, d.dryRun, d.suppressed], [2, 1, 1, 0, 1, true, ['ben@example.org']]);
    assert.equal(d.unparsable.length, 1);
    assert.equal(d.unparsable[0].subject, 'Undelivered Mail Returned to Sender');
    assert.deepEqual(await folders(imap), before, 'the dry run moved nothing and set no flag');
    assert.ok(dbBytes(dir).equals(bytes), 'the dry run wrote nothing to the database');

    // While another process reads the mailbox (a live lock), fetch stops with exit 4 before
    // reading, and mailer run sends without it; a dry run needs no lock.
    const lockDb = new Database(path.join(dir, 'mailer.db'));
    lockDb.prepare(`INSERT INTO locks (name, pid, host, since, what) VALUES ('mailbox', ?, ?, ?, 'bounces fetch')`).run(process.pid, os.hostname(), Date.now());
    lockDb.close();
    const busy = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(busy.code, 4, busy.stderr);
    assert.match(busy.stderr, new RegExp(`another mailer \\(bounces fetch, pid ${process.pid}, since .*\\) is reading the bounce mailbox; it was not read`));
    const busyRun = await mailer(dir, ['run'], env(imap));
    assert.equal(busyRun.code, 0, busyRun.stderr);
    assert.match(busyRun.stderr, /is reading the bounce mailbox; it was not read; sending goes on/);
    assert.equal((await mailer(dir, ['bounces', 'fetch', '--dry-run', '--json'], env(imap))).code, 1, 'the dry run reads as before');
    assert.deepEqual(await folders(imap), before, 'nothing was moved meanwhile');
    const unlock = new Database(path.join(dir, 'mailer.db'));
    unlock.prepare(`DELETE FROM locks WHERE name = 'mailbox'`).run();
    unlock.close();

    // mailer run fetches the mailbox first (nothing is due to be sent).
    const run = await mailer(dir, ['run'], env(imap));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /bounce mailbox imap:\/\/bounces@127\.0\.0\.1:\d+\/INBOX: 2 new, 1 bounces \(1 matched\), moved 1 to mailer-processed, 1 unparsable left in place/);
    const after = await folders(imap);
    assert.deepEqual(Object.values(after.INBOX), [[]], 'the garbled report stays in INBOX, unread');
    assert.equal(Object.keys(after['mailer-processed']).length, 1);
    const db = openDb(dir);
    assert.deepEqual(db.prepare("SELECT status FROM sends WHERE email = 'ben@example.org'").get(), { status: 'bounced' });
    db.close();
    const fetch = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(fetch.code, 0, fetch.stderr);
    assert.match(fetch.stdout, /read 0 new messages/);
  } finally {
    await imap.stop();
  }
});

test('bounces fetch: a wrong password and a server that is not there stop with exit 3, the step named; no mailbox configured is exit 2', async () => {
  const imap = await startDovecot();
  try {
    const dir = tempDir();
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url }));
    const wrong = await mailer(dir, ['bounces', 'fetch'], { MAILER_IMAP_PASSWORD: 'falsch-123' });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /bounce mailbox imap:\/\/bounces@127\.0\.0\.1:\d+\/INBOX cannot be used: login failed/);
    assert.match(wrong.stderr, /MAILER_IMAP_PASSWORD/);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /falsch-123/);
    // requireTls: imap:// to a server that offers no STARTTLS is refused before the login.
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url, requireTls: true }));
    const clear = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(clear.code, 3, clear.stderr);
    assert.match(clear.stderr, /cannot be used: STARTTLS failed \(Server does not support STARTTLS\)/);
    assert.match(clear.stderr, /requireTls is set in mailer\.json/);
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url }));
    // mailer check tests the bounce mailbox after the SMTP server.
    const smtp = await startSmtpServer();
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: smtp.url, bounceMailbox: imap.url }));
    const checkWrong = await mailer(dir, ['check'], { MAILER_IMAP_PASSWORD: 'falsch-123' });
    const checkGood = await mailer(dir, ['check'], env(imap));
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: smtp.url, bounceMailbox: imap.url, requireTls: true }));
    const checkClear = await mailer(dir, ['check'], env(imap));
    await smtp.close();
    assert.equal(checkClear.code, 3, checkClear.stdout + checkClear.stderr);
    assert.match(checkClear.stdout, /FAILED {2}connect, login and folder: STARTTLS failed/);
    assert.equal(checkWrong.code, 3);
    assert.match(checkWrong.stdout, /imap:\/\/bounces@127\.0\.0\.1:\d+\/INBOX \(bounceMailbox\)\n {2}FAILED {2}connect, login and folder: login failed/);
    assert.equal(checkGood.code, 0, checkGood.stdout);
    assert.match(checkGood.stdout, /ok {4} {2}connect, login and folder: INBOX opened read-only as bounces\n {2}→ the bounce mailbox can be read/);
    // mailer run goes on without the mailbox, and ends with exit 3 naming it.
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url }));
    const run = await mailer(dir, ['run', '--json'], { MAILER_IMAP_PASSWORD: 'falsch-123' });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /warning: the bounce mailbox .* login failed .*; sending goes on/);
    assert.equal(JSON.parse(run.stdout).bounces, null);
    const port = await closedPort();
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: `imaps://bounces@127.0.0.1:${port}/INBOX` }));
    const down = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(down.code, 3, down.stderr);
    assert.match(down.stderr, /connect failed \(127\.0\.0\.1:\d+: ECONNREFUSED\)/);
    writeFile(dir, 'mailer.json', '{}');
    const none = await mailer(dir, ['bounces', 'fetch']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no bounce mailbox is configured/);
  } finally {
    await imap.stop();
  }
});

test('bounces fetch with OAuth2: XOAUTH2 at Dovecot with the token of the oauth2 setting, renewed once when refused; no token in any output or database byte', async () => {
  const { startTokenEndpoint } = await import('../support/oauth2.js');
  const endpoint = await startTokenEndpoint();
  const imap = await startDovecot({ introspectionUrl: endpoint.introspectionUrl });
  try {
    const { dir, byEmail } = await sentFolder(imap);
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.url, oauth2: { tokenUrl: endpoint.tokenUrl, clientId: endpoint.clientId, user: imap.user } }));
    const client = await imap.client();
    await client.append('INBOX', bounceFromFixture('rfc3464-postfix.eml', byEmail['anna@example.org'], true), []);
    await client.logout();
    const secrets = { MAILER_OAUTH2_CLIENT_SECRET: endpoint.clientSecret, MAILER_OAUTH2_REFRESH_TOKEN: endpoint.refreshToken };
    // The first token is dead at the server (expired early): refused, renewed once, and the fetch goes on.
    endpoint.issueDead = 1;
    const r = await mailer(dir, ['bounces', 'fetch', '--json'], secrets);
    assert.equal(r.code, 0, r.stderr + imap.log().slice(-2000));
    assert.deepEqual([JSON.parse(r.stdout).bounces, JSON.parse(r.stdout).moved], [1, 1]);
    assert.equal(endpoint.grants, 2);

    endpoint.revoked.add(endpoint.refreshToken);
    const revoked = await mailer(dir, ['bounces', 'fetch'], secrets);
    assert.equal(revoked.code, 3);
    assert.match(revoked.stderr, /bounce mailbox imap:\/\/bounces@127\.0\.0\.1:\d+\/INBOX cannot be used: OAuth2 token step failed: .*invalid_grant/);
    const texts = [r.stdout, r.stderr, revoked.stdout, revoked.stderr, ...fs.readdirSync(dir).filter((f) => f.startsWith('mailer.db')).map((f) => fs.readFileSync(path.join(dir, f), 'latin1'))];
    for (const token of [...endpoint.issued, endpoint.refreshToken, endpoint.clientSecret]) assert.ok(texts.every((t) => !t.includes(token)), 'a token was printed or stored');
  } finally {
    await imap.stop();
    await endpoint.close();
  }
});

test('bounces fetch over imaps://: a certificate from a private CA is refused (exit 3, the TLS step named) until NODE_EXTRA_CA_CERTS trusts it', async () => {
  const certDir = tempDir();
  const keyFile = path.join(certDir, 'key.pem');
  const certFile = path.join(certDir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  fs.chmodSync(certDir, 0o755);
  const imap = await startDovecot({ tls: { certFile, keyFile } });
  try {
    const dir = tempDir();
    writeFile(dir, 'mailer.json', JSON.stringify({ bounceMailbox: imap.tlsUrl }));
    const untrusted = await mailer(dir, ['bounces', 'fetch'], env(imap));
    assert.equal(untrusted.code, 3, untrusted.stderr);
    assert.match(untrusted.stderr, /bounce mailbox imaps:\/\/bounces@127\.0\.0\.1:\d+\/INBOX cannot be used: TLS failed/);
    assert.match(untrusted.stderr, /NODE_EXTRA_CA_CERTS/);
    const trusted = await mailer(dir, ['bounces', 'fetch', '--json'], { ...env(imap), NODE_EXTRA_CA_CERTS: certFile });
    assert.equal(trusted.code, 0, trusted.stderr + imap.log().slice(-1500));
    assert.equal(JSON.parse(trusted.stdout).read, 0);
  } finally {
    await imap.stop();
  }
});
