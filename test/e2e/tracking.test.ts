import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { INVITATION, ROOT, mailer, membersCsv, openDb, startMailer, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startSmtpServer, type TestServer } from '../support/smtp.js';
import { bounceFromFixture } from '../support/bounces.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'bounces');
const members = [
  ['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org'],
  ['4', 'Dora', 'dora@example.org'], ['5', 'Eva', 'eva@example.org'], ['6', 'Fritz', 'fritz@example.org'],
];

async function mailingOf(server: TestServer, settings: object = {}) {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify(settings));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const log = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
  const byEmail = Object.fromEntries(log.map((s) => [s.email, s]));
  return { dir, byEmail, mailing: JSON.parse(r.stdout).mailing as number };
}

/** A fixture filled in for one send, dated now so "recipient and time" can match it. */

test('bounces: RFC 3464 and plain-text samples matched, classified, suppressed; importing twice changes nothing', async () => {
  const server = await startSmtpServer();
  try {
    const { dir, byEmail } = await mailingOf(server, { bounceAddress: 'bounces@verein.example', verp: true });
    assert.equal(server.messages.find((m) => m.to[0] === 'anna@example.org')!.from, `bounces+${byEmail['anna@example.org'].id}@verein.example`, 'VERP envelope sender');
    // Maildir: new/ and cur/
    const maildir = path.join(dir, 'Maildir');
    fs.mkdirSync(path.join(maildir, 'new'), { recursive: true });
    fs.mkdirSync(path.join(maildir, 'cur'), { recursive: true });
    fs.mkdirSync(path.join(maildir, 'tmp'), { recursive: true });
    writeFile(path.join(maildir, 'new'), '1.eml', bounceFromFixture('rfc3464-postfix.eml', byEmail['anna@example.org']));
    writeFile(path.join(maildir, 'new'), '2.eml', bounceFromFixture('rfc3464-delayed.eml', byEmail['ben@example.org']));
    writeFile(path.join(maildir, 'cur'), '3.eml', bounceFromFixture('exchange-verp.eml', byEmail['eva@example.org']));
    writeFile(path.join(maildir, 'cur'), '4.eml', fs.readFileSync(path.join(FIXTURES, 'out-of-office.eml')));
    // mbox with two messages, the second with a ">From " line to unescape
    const mbox = ['exim-plain.eml', 'gmail-plain.eml'].map((f, i) => `From MAILER-DAEMON Wed Nov 25 11:02:13 2026\n${bounceFromFixture(f, byEmail[['cem@example.org', 'dora@example.org'][i]])}\n>From here on\n`).join('\n');
    writeFile(dir, 'bounces.mbox', mbox);
    writeFile(dir, 'unknown.eml', fs.readFileSync(path.join(FIXTURES, 'unknown-recipient.eml')));

    const r1 = await mailer(dir, ['bounces', 'import', 'Maildir', '--json']);
    const first = JSON.parse(r1.stdout);
    assert.equal(r1.code, 1, 'the out-of-office reply is listed as unmatched');
    assert.deepEqual([first.read, first.matched, first.permanent, first.temporary], [4, 3, 2, 1]);
    assert.match(first.unmatched[0].reason, /not a bounce/);
    const r2 = JSON.parse((await mailer(dir, ['bounces', 'import', 'bounces.mbox', '--json'])).stdout);
    assert.deepEqual([r2.read, r2.matched, r2.permanent], [2, 2, 2]);
    const r3 = JSON.parse((await mailer(dir, ['bounces', 'import', 'unknown.eml', '--json'])).stdout);
    assert.deepEqual([r3.matched, r3.unmatched[0].recipient], [0, 'somebody@nowhere.example']);

    const db = openDb(dir);
    const rows = db.prepare(`SELECT s.email, s.status, s.category, b.matched_by, b.permanent FROM bounces b JOIN sends s ON s.id = b.send_id ORDER BY s.email`).all();
    db.close();
    assert.deepEqual(rows, [
      { email: 'anna@example.org', status: 'bounced', category: 'unknown-mailbox', matched_by: 'X-Mailer-Send-Id', permanent: 1 },
      { email: 'ben@example.org', status: 'sent', category: null, matched_by: 'Message-ID', permanent: 0 },
      { email: 'cem@example.org', status: 'bounced', category: 'unknown-mailbox', matched_by: 'Message-ID', permanent: 1 },
      { email: 'dora@example.org', status: 'bounced', category: 'unknown-mailbox', matched_by: 'recipient and time', permanent: 1 },
      { email: 'eva@example.org', status: 'bounced', category: 'unknown-mailbox', matched_by: 'VERP address', permanent: 1 },
    ]);
    const suppressed = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout).map((s: any) => s.email).sort();
    assert.deepEqual(suppressed, ['anna@example.org', 'cem@example.org', 'dora@example.org', 'eva@example.org']);

    const again = JSON.parse((await mailer(dir, ['bounces', 'import', 'Maildir', '--json'])).stdout);
    assert.deepEqual([again.alreadyImported, again.matched, again.permanent], [3, 0, 0]);
    const bouncesAgain = JSON.parse((await mailer(dir, ['bounces', 'import', 'bounces.mbox', '--json'])).stdout);
    assert.equal(bouncesAgain.alreadyImported, 2);
    const db2 = openDb(dir);
    assert.equal((db2.prepare('SELECT count(*) AS n FROM bounces').get() as any).n, 6);
    db2.close();

    const shown = await mailer(dir, ['show', String(byEmail['anna@example.org'].id)]);
    assert.match(shown.stdout, /bounce\s+failed 5\.1\.1: 550 5\.1\.1/);
    const why = await mailer(dir, ['why', '1']);
    assert.match(why.stdout, /bounced/);
    assert.match(why.stdout, /mailer retarget \d+ --to <address>/);

    const next = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([next.sent, next.byReason.suppressed], [2, 4], 'suppressed addresses are skipped by the next send');
  } finally {
    await server.close();
  }
});

async function serve(dir: string, port: number) {
  const proc = startMailer(dir, ['serve', '--port', String(port)]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start')), 10_000);
    proc.child.stderr!.on('data', (c: Buffer) => { if (c.toString().includes('listening on')) { clearTimeout(timer); resolve(); } });
  });
  return proc;
}

test('serve: the pixel records an open, POST unsubscribes (RFC 8058), unknown links get 404; --not-opened follows up', async () => {
  const server = await startSmtpServer();
  const port = await closedPort();
  const base = `http://127.0.0.1:${port}`;
  let proc: Awaited<ReturnType<typeof serve>> | null = null;
  try {
    const dir = tempDir();
    writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: base }));
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'news.txt', 'Subject: News\nFrom: Verein <news@verein.example>\nType: newsletter\n\nHallo {{name}}\n');
    writeFile(dir, 'news.html', '<html><body><p>Hallo {{name}}</p></body></html>\n');
    const first = JSON.parse((await mailer(dir, ['send', 'news.txt', '--smtp', server.url, '--json'])).stdout);
    const mails = await Promise.all(server.messages.map(async (m) => ({ to: m.to[0], parsed: await simpleParser(m.raw), raw: m.raw.toString() })));
    const unsubscribeOf = (to: string) => /\/u\/([A-Za-z0-9_-]+)>/.exec(mails.find((m) => m.to === to)!.raw)![1];
    const pixelOf = (to: string) => /\/o\/([A-Za-z0-9_-]+)\.gif/.exec(mails.find((m) => m.to === to)!.parsed.html as string)![1];
    const anna = mails.find((m) => m.to === 'anna@example.org')!;
    assert.match(anna.raw, new RegExp(`^List-Unsubscribe: <${base}/u/[A-Za-z0-9_-]+>`, 'm'));
    assert.match(anna.raw, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    assert.match(anna.parsed.html as string, new RegExp(`<img src="${base}/o/[A-Za-z0-9_-]+\\.gif"`));

    proc = await serve(dir, port);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    for (const who of ['anna@example.org', 'ben@example.org']) {
      const pixel = await fetch(`${base}/o/${pixelOf(who)}.gif`);
      assert.equal(pixel.status, 200);
      assert.equal(pixel.headers.get('content-type'), 'image/gif');
      assert.equal(Buffer.from(await pixel.arrayBuffer()).subarray(0, 6).toString(), 'GIF89a');
    }
    const unknownPixel = await fetch(`${base}/o/AAAAAAAAAAAAAAAAAAAAAA.gif`);
    assert.equal(unknownPixel.status, 200, 'the pixel never errors to the client');
    const confirm = await fetch(`${base}/u/${unsubscribeOf('cem@example.org')}`);
    assert.equal(confirm.status, 200);
    assert.match(await confirm.text(), /<form method="post">/);
    const db0 = openDb(dir);
    assert.equal((db0.prepare(`SELECT (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM optouts) AS n`).get() as any).n, 0, 'GET alone does not unsubscribe');
    db0.close();
    const post = await fetch(`${base}/u/${unsubscribeOf('cem@example.org')}`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(post.status, 200);
    const unknown = await fetch(`${base}/u/AAAAAAAAAAAAAAAAAAAAAA`);
    assert.equal(unknown.status, 404);
    const notFound = await fetch(`${base}/anything`);
    assert.equal(notFound.status, 404);

    // A re-targeted address's registration token is revoked; its pixel counts no open (the mail
    // went to someone else), but whoever has that address can still stop mails to it.
    const dora = JSON.parse((await mailer(dir, ['log', '--email', 'dora@example.org', '--json'])).stdout)[0];
    assert.equal((await mailer(dir, ['retarget', String(dora.id), '--to', 'dora.neu@example.org', '--smtp', server.url])).code, 0);
    const doraToken = JSON.parse((await mailer(dir, ['show', String(dora.id), '--json'])).stdout).token;
    assert.match((await mailer(dir, ['token', 'verify', doraToken])).stdout, /^revoked/);
    assert.equal((await fetch(`${base}/o/${pixelOf('dora@example.org')}.gif`)).status, 200);
    assert.equal((await fetch(`${base}/u/${unsubscribeOf('dora@example.org')}`)).status, 200);

    const list = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout);
    assert.deepEqual(list.map((s: any) => [s.email, s.reason]), [['cem@example.org', 'unsubscribed']]);

    const stats = JSON.parse((await mailer(dir, ['stats', '--mailing', String(first.mailing), '--json'])).stdout)[0];
    assert.deepEqual([stats.sent, stats.opened, stats.unsubscribed], [6, 2, 1], JSON.stringify(stats));
    assert.ok(Math.abs(stats.openRate - 2 / 6) < 1e-9);
    const table = await mailer(dir, ['stats']);
    assert.match(table.stdout, /33\.3%/);

    // The follow-up: delivered, not opened, not unsubscribed from its topic → Dora (new address), Eva, Fritz.
    const before = server.messages.length;
    writeFile(dir, 'reminder.txt', 'Subject: Erinnerung\nFrom: Verein <news@verein.example>\nTopic: newsletter\n\nHallo {{name}}\n');
    const follow = JSON.parse((await mailer(dir, ['send', 'reminder.txt', '--not-opened', String(first.mailing), '--no-track', '--smtp', server.url, '--json'])).stdout);
    const followed = server.messages.slice(before).map((m) => m.to[0]).sort();
    assert.deepEqual(followed, ['dora.neu@example.org', 'eva@example.org', 'fritz@example.org']);
    assert.equal(follow.skipped, 1, 'cem is suppressed');
    assert.ok(!server.messages.slice(before).some((m) => /List-Unsubscribe/.test(m.raw.toString())), '--no-track');
  } finally {
    proc?.child.kill('SIGTERM');
    await proc?.done;
    await server.close();
  }
});
