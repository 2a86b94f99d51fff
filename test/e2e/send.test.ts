import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { INVITATION, folderWithRows, mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startSmtpServer } from '../support/smtp.js';

const setup = (rows: string[][], header = ['id', 'name', 'email', 'region']) => folderWithRows(header, rows);

const many = (n: number) => Array.from({ length: n }, (_, i) => [String(i + 1), `Member ${i + 1}`, `m${i + 1}@example.org`, i % 2 ? 'Nord' : 'Süd']);

test('--test sends 5 (or --limit) to the test address only, marked [TEST], not counted as sent to members', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup(many(12));
    const r = await mailer(dir, ['send', 'invitation.txt', '--test', '--test-to', 'me@verein.example', '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.messages.length, 5);
    for (const m of server.messages) {
      assert.deepEqual(m.to, ['me@verein.example']);
      assert.match((await simpleParser(m.raw)).subject!, /^\[TEST\] Einladung für Member \d$/);
    }
    const r3 = await mailer(dir, ['send', 'invitation.txt', '--test', '--limit', '3', '--test-to', 'me@verein.example', '--smtp', server.url]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal(server.messages.length, 8);
    const db = openDb(dir);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM sends WHERE test = 0`).get() as any).n, 0);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM sends WHERE test = 1 AND status = 'sent'`).get() as any).n, 8);
    db.close();
    const noAddress = await mailer(dir, ['send', 'invitation.txt', '--test', '--smtp', server.url]);
    assert.equal(noAddress.code, 2);
    assert.match(noAddress.stderr, /--test-to/);
  } finally {
    await server.close();
  }
});

test('a 200-member send delivers exactly one message per member with a valid address', async () => {
  const server = await startSmtpServer();
  try {
    const rows = many(200);
    rows[10][2] = '';
    rows[20][2] = 'kaputt@';
    const dir = await setup(rows);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '8', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      { selected: summary.selected, sent: summary.sent, skipped: summary.skipped, failed: summary.failed, queued: summary.queued },
      { selected: 200, sent: 198, skipped: 2, failed: 0, queued: 0 },
    );
    assert.deepEqual(summary.byReason, { 'no-address': 1, 'invalid-address': 1 });
    const recipients = server.messages.flatMap((m) => m.to);
    assert.equal(recipients.length, 198);
    assert.equal(new Set(recipients).size, 198);
    assert.ok(!recipients.includes('m11@example.org'));
    const skipped = JSON.parse((await mailer(dir, ['log', '--status', 'skipped', '--json'])).stdout) as any[];
    assert.deepEqual(skipped.map((s) => [s.member, s.category]).sort(), [['11', 'no-address'], ['21', 'invalid-address']]);
    // every message carries its send id and a unique token
    const tokens = new Set(server.messages.map((m) => /register\/([A-Za-z0-9_-]+)/.exec(m.raw.toString())![1]));
    assert.equal(tokens.size, 198);
    for (const t of tokens) assert.ok(t.length >= 22, 'at least 128 bits');
    assert.ok(server.messages.every((m) => /^X-Mailer-Send-I[dD]: \d+/m.test(m.raw.toString())));
  } finally {
    await server.close();
  }
});

test("text is not HTML-escaped (O'Brien & Co), the HTML part is", async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup([['1', "O'Brien & Co", 'obrien@example.com', '<Nord>']]);
    writeFile(dir, 'news.txt', 'Subject: News für {{name}}\nFrom: Verein <news@verein.example>\n\nHallo {{name}} aus {{region}}\n');
    writeFile(dir, 'news.html', '<p>Hallo {{name}} aus {{region}}</p>\n');
    const r = await mailer(dir, ['send', 'news.txt', '--smtp', server.url]);
    assert.equal(r.code, 0, r.stderr);
    const parsed = await simpleParser(server.messages[0].raw);
    assert.match(parsed.text!, /Hallo O'Brien & Co aus <Nord>/);
    assert.match(parsed.html as string, /Hallo O&#39;Brien &amp; Co aus &lt;Nord&gt;/);
    assert.equal(parsed.subject, "News für O'Brien & Co");
  } finally {
    await server.close();
  }
});

test('a CSV value with CRLF + Bcc: adds no recipient; in a header it is refused for that member', async () => {
  const server = await startSmtpServer();
  try {
    const evil = '"Eve\r\nBcc: spy@evil.example"';
    const dir = tempDir();
    // A free-text field keeps its line breaks (the import makes them a space in the name).
    writeFile(dir, 'members.csv', `id;name;email;title;note\r\n1;Eve;eve@example.org;${evil};x\r\n2;Bob;bob@example.org;Herr;"a\r\nBcc: spy@evil.example"\r\n`);
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'm.txt', 'Subject: Hallo {{title}} {{name}}\nFrom: Verein <noreply@verein.example>\n\nText: {{note}}\n');
    const r = await mailer(dir, ['send', 'm.txt', '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.sent, 1);
    assert.equal(summary.skipped, 1);
    assert.deepEqual(summary.byReason, { 'header-injection': 1 });
    assert.deepEqual(server.messages.flatMap((m) => m.to), ['bob@example.org']);
    const parsed = await simpleParser(server.messages[0].raw);
    assert.equal(parsed.bcc, undefined);
    assert.match(parsed.text!, /Bcc: spy@evil\.example/, 'stays text in the body');
    const log = JSON.parse((await mailer(dir, ['log', '--status', 'skipped', '--json'])).stdout);
    assert.match(log[0].reason, /line break/);
  } finally {
    await server.close();
  }
});

test('show --raw prints exactly the bytes the server received; show explains the send', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup(many(3));
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 0);
    const log = JSON.parse((await mailer(dir, ['log', '--member', '2', '--json'])).stdout);
    assert.equal(log.length, 1);
    const received = server.messages.find((m) => m.to[0] === 'm2@example.org')!;
    const raw = await mailer(dir, ['show', String(log[0].id), '--raw']);
    assert.equal(raw.code, 0);
    assert.ok(raw.stdoutBytes.equals(received.raw), 'stored bytes equal the received bytes');
    const shown = await mailer(dir, ['show', String(log[0].id)]);
    assert.match(shown.stdout, /Subject: Einladung für Member 2/);
    assert.match(shown.stdout, /Hallo Member 2,/);
    assert.match(shown.stdout, /sent .*250/);
    const json = JSON.parse((await mailer(dir, ['show', String(log[0].id), '--json'])).stdout);
    assert.equal(json.messageId, log[0].messageId);
    assert.equal(json.attempts.length, 1);
    const missing = await mailer(dir, ['show', '999']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no send 999/);
  } finally {
    await server.close();
  }
});

test('server replies are classified: 550 5.1.1 failed, 451 4.7.1 and 452 4.2.2 deferred, 554 5.7.1 failed (exit 1)', async () => {
  const server = await startSmtpServer({
    reject: {
      'm1@example.org': '550 5.1.1 <m1@example.org>: Recipient address rejected: User unknown',
      'm2@example.org': '451 4.7.1 Greylisted, please try again later',
      'm3@example.org': '452 4.2.2 Mailbox full',
      'm4@example.org': '554 5.7.1 Message rejected as spam',
    },
  });
  try {
    const dir = await setup(many(6));
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.deferred, summary.queued], [2, 2, 2, 0]);
    assert.deepEqual(summary.byReason, { 'unknown-mailbox': 1, greylisted: 1, 'mailbox-full': 1, 'rejected-as-spam': 1 });
    const log = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
    const byEmail = Object.fromEntries(log.map((s) => [s.email, s]));
    assert.equal(byEmail['m1@example.org'].status, 'failed');
    assert.equal(byEmail['m1@example.org'].category, 'unknown-mailbox');
    assert.match(byEmail['m1@example.org'].reason, /550 5\.1\.1/);
    assert.equal(byEmail['m2@example.org'].status, 'deferred');
    assert.equal(byEmail['m2@example.org'].category, 'greylisted');
    assert.equal(byEmail['m3@example.org'].category, 'mailbox-full');
    assert.equal(byEmail['m4@example.org'].status, 'failed');
    const failed = JSON.parse((await mailer(dir, ['log', '--status', 'failed', '--json'])).stdout) as any[];
    assert.deepEqual(failed.map((s) => s.email).sort(), ['m1@example.org', 'm4@example.org']);
    const shown = await mailer(dir, ['show', String(byEmail['m1@example.org'].id)]);
    assert.match(shown.stdout, /unknown-mailbox, permanent: The receiving server says this mailbox does not exist/);
    const delivered = server.messages.length;
    const table = await mailer(dir, ['send', '--resume', String(summary.mailing), '--smtp', server.url]);
    assert.equal(table.code, 0, 'nothing left to send');
    assert.equal(server.messages.length, delivered, 'the resume sent nothing again: the deferred wait for their back-off');
    const resumed = JSON.parse((await mailer(dir, ['send', '--resume', String(summary.mailing), '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([resumed.sent, resumed.failed, resumed.deferred, resumed.queued], [2, 2, 2, 0], 'the mailing\'s totals are unchanged');
    assert.equal(server.messages.length, delivered);
  } finally {
    await server.close();
  }
});

test('a closed port stops the run at once with exit 3, everything stays queued, resume delivers once', async () => {
  const port = await closedPort();
  const dir = await setup(many(30));
  const started = Date.now();
  const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', `smtp://127.0.0.1:${port}`, '--json']);
  assert.equal(r.code, 3, r.stderr);
  assert.ok(Date.now() - started < 10_000, 'stops quickly');
  assert.match(r.stderr, /cannot be used \(server-unreachable\)/);
  assert.match(r.stderr, /send --resume 1/);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.queued, 30);
  assert.equal(summary.failed, 0);
  const db = openDb(dir);
  assert.equal((db.prepare(`SELECT status, status_reason FROM mailings WHERE id = 1`).get() as any).status, 'paused');
  assert.equal((db.prepare(`SELECT count(*) AS n FROM sends WHERE status = 'queued' AND attempts = 0`).get() as any).n, 30);
  db.close();

  const server = await startSmtpServer();
  try {
    const resumed = await mailer(dir, ['send', '--resume', '1', '--smtp', server.url, '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(JSON.parse(resumed.stdout).sent, 30);
    assert.equal(server.messages.length, 30);
    assert.equal(new Set(server.messages.flatMap((m) => m.to)).size, 30);
  } finally {
    await server.close();
  }
});

test('a wrong password stops with exit 3 (auth); the password is never printed or stored', async () => {
  const server = await startSmtpServer({ auth: { user: 'verein', pass: 'richtig' } });
  try {
    const dir = await setup(many(3));
    const url = `smtp://verein@127.0.0.1:${server.port}`;
    const wrong = await mailer(dir, ['send', 'invitation.txt', '--smtp', url], { MAILER_SMTP_PASSWORD: 'Geheim-falsch-42' });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /\(auth\)/);
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /Geheim-falsch-42/);
    const right = await mailer(dir, ['send', '--resume', '1', '--smtp', url], { MAILER_SMTP_PASSWORD: 'richtig' });
    assert.equal(right.code, 0, right.stderr);
    assert.equal(server.messages.length, 3);
    // a password inside the URL works too, and is not shown either
    const inUrl = await mailer(dir, ['send', 'invitation.txt', '--smtp', `smtp://verein:richtig@127.0.0.1:${server.port}`]);
    assert.equal(inUrl.code, 0, inUrl.stderr);
    assert.doesNotMatch(inUrl.stdout + inUrl.stderr, /richtig/);
    for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('mailer.db'))) {
      const bytes = fs.readFileSync(path.join(dir, f)).toString('latin1');
      assert.ok(!bytes.includes('Geheim-falsch-42') && !bytes.includes('richtig'), `${f} holds no password`);
    }
  } finally {
    await server.close();
  }
});

test('an unknown placeholder stops before anything is sent, naming it; an empty field skips unless --allow-empty', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup([['1', 'Anna', 'anna@example.org', 'Nord'], ['2', 'Ben', 'ben@example.org', '']]);
    writeFile(dir, 'typo.txt', 'Subject: Hallo {{nmae}}\nFrom: V <v@verein.example>\n\nText\n');
    const r = await mailer(dir, ['send', 'typo.txt', '--smtp', server.url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\{\{nmae\}\} is not a member field/);
    assert.equal(server.messages.length, 0);
    const db = openDb(dir);
    assert.equal((db.prepare('SELECT count(*) AS n FROM mailings').get() as any).n, 0);
    db.close();

    writeFile(dir, 'region.txt', 'Subject: Region {{region}}\nFrom: V <v@verein.example>\n\nHallo {{name}} aus {{region}}\n');
    const skipped = JSON.parse((await mailer(dir, ['send', 'region.txt', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([skipped.sent, skipped.skipped, skipped.byReason['empty-field']], [1, 1, 1]);
    const allowed = JSON.parse((await mailer(dir, ['send', 'region.txt', '--allow-empty', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([allowed.sent, allowed.skipped], [2, 0]);
  } finally {
    await server.close();
  }
});

test('--dry-run lists what would be sent and skipped and changes nothing', async () => {
  const dir = await setup([['1', 'Anna', 'anna@example.org', 'Nord'], ['2', 'Ben', '', 'Süd']]);
  const r = await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.wouldSend, 1);
  assert.deepEqual(result.skippedMembers.map((s: any) => [s.member, s.category]), [['2', 'no-address']]);
  assert.ok(!fs.existsSync(path.join(dir, 'outbox')));
  const db = openDb(dir);
  assert.equal((db.prepare('SELECT count(*) AS n FROM sends').get() as any).n, 0);
  db.close();
});

test('selection: --where, a saved --segment and --member; without SMTP the outbox gets one .eml per mail', async () => {
  const dir = await setup([
    ['1', 'Anna', 'anna@example.org', 'Nord'], ['2', 'Ben', 'ben@example.org', 'Süd'],
    ['3', 'Cem', 'cem@example.org', 'Nord'], ['4', 'Dora', 'dora@example.org', 'Nordost'],
  ]);
  const where = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--where', 'region=Nord', '--json'])).stdout);
  assert.equal(where.sent, 2);
  assert.equal(fs.readdirSync(path.join(dir, 'outbox')).filter((f) => f.endsWith('.eml')).length, 2);
  assert.equal((await mailer(dir, ['segment', 'save', 'nordisch', '--where', 'region~nord', '--where', 'id!=3'])).code, 0);
  const seg = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--segment', 'nordisch', '--json'])).stdout);
  assert.equal(seg.sent, 2);
  const member = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--member', 'ben@example.org', '--json'])).stdout);
  assert.equal(member.sent, 1);
  const unknownField = await mailer(dir, ['send', 'invitation.txt', '--where', 'regoin=Nord']);
  assert.equal(unknownField.code, 2);
  assert.match(unknownField.stderr, /no member field "regoin"/);
  const unknownMember = await mailer(dir, ['send', 'invitation.txt', '--member', '99']);
  assert.equal(unknownMember.code, 2);
  assert.match(unknownMember.stderr, /no member with id or address "99"/);
  const outboxNote = await mailer(dir, ['send', 'invitation.txt', '--member', '1']);
  assert.match(outboxNote.stderr, /no SMTP server configured: mails are written to the outbox/);
});

test('--limit caps the run; the rest stays queued for --resume', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup(many(10));
    const r = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--limit', '4', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([r.selected, r.sent, r.queued], [10, 4, 6]);
    assert.equal(server.messages.length, 4);
    const rest = JSON.parse((await mailer(dir, ['send', '--resume', String(r.mailing), '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([rest.sent, rest.queued], [10, 0]);
    assert.equal(new Set(server.messages.flatMap((m) => m.to)).size, 10);
    assert.equal(server.messages.length, 10);
  } finally {
    await server.close();
  }
});

test('--limit counts the mails handed over: sends skipped on the way (suppressed since queued) give their place to the next', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await setup(many(10));
    const first = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--limit', '2', '--smtp', server.url, '--concurrency', '1', '--json'])).stdout);
    assert.deepEqual([first.sent, first.queued], [2, 8]);
    for (const address of ['m3@example.org', 'm4@example.org']) assert.equal((await mailer(dir, ['suppress', 'add', address])).code, 0);
    const next = JSON.parse((await mailer(dir, ['send', '--resume', String(first.mailing), '--limit', '3', '--smtp', server.url, '--concurrency', '1', '--json'])).stdout);
    assert.deepEqual([next.sent, next.skipped, next.queued], [5, 2, 3], 'three more handed over, past the two suppressed');
    assert.deepEqual(server.messages.map((m) => m.to).flat(), ['m1@example.org', 'm2@example.org', 'm5@example.org', 'm6@example.org', 'm7@example.org']);
  } finally {
    await server.close();
  }
});

test('--limit: a send that every server cut off goes back to the queue and gives its place to the next', async () => {
  const servers = [await startSmtpServer({ closeOn: ['m2@example.org'] }), await startSmtpServer({ closeOn: ['m2@example.org'] })];
  try {
    const dir = await setup(many(5));
    const r = await mailer(dir, ['send', 'invitation.txt', '--limit', '3', '--smtp', servers[0].url, '--smtp', servers[1].url, '--concurrency', '1', '--json']);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.queued, summary.failed], [3, 2, 0], r.stderr);
    const delivered = servers.flatMap((s) => s.messages.flatMap((m) => m.to)).sort();
    assert.deepEqual(delivered, ['m1@example.org', 'm3@example.org', 'm4@example.org'], 'three handed over, m2 not among them');
    const db = openDb(dir);
    const m2 = db.prepare(`SELECT s.status, count(a.id) AS cut FROM sends s JOIN attempts a ON a.send_id = s.id WHERE s.email = 'm2@example.org' AND a.outcome = 'interrupted'`).get();
    db.close();
    assert.deepEqual(m2, { status: 'queued', cut: 2 }, 'tried on both servers, then left queued');
  } finally {
    for (const s of servers) await s.close();
  }
});

test('a connection closed by the server (421) puts that send back in the queue; the others go out', async () => {
  const server = await startSmtpServer({ closeOn: ['m2@example.org'] });
  try {
    const dir = await setup(many(5));
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '1', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.queued, summary.failed], [4, 1, 0]);
    const db = openDb(dir);
    const attempt = db.prepare(`SELECT a.outcome, a.category FROM attempts a JOIN sends s ON s.id = a.send_id WHERE s.email = 'm2@example.org'`).get();
    assert.deepEqual(attempt, { outcome: 'interrupted', category: 'server-unreachable' });
    db.close();
  } finally {
    await server.close();
  }
});
