import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { INVITATION, folderWithMembers, mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startBreakingServer, startSmtpServer } from '../support/smtp.js';

const withMembers = folderWithMembers;

const count = (dir: string, sql: string) => {
  const db = openDb(dir);
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

test('a typo in --rate or --smtp changes nothing: no mailing is left queued for the next run', async () => {
  const dir = await withMembers(3);
  const rate = await mailer(dir, ['send', 'invitation.txt', '--rate', '10/sec']);
  assert.equal(rate.code, 2);
  assert.match(rate.stderr, /--rate "10\/sec" is not a rate/);
  const smtp = await mailer(dir, ['send', 'invitation.txt', '--smtp', 'smtp//oops']);
  assert.equal(smtp.code, 2);
  assert.match(smtp.stderr, /is not an SMTP URL/);
  assert.equal(count(dir, 'SELECT count(*) AS n FROM mailings'), 0);
  assert.equal(count(dir, 'SELECT count(*) AS n FROM sends'), 0);
});

test('a count that is not a whole number exits 2 naming the flag and the value, whatever the command', async () => {
  const dir = await withMembers(2);
  for (const [args, flag, value] of [
    [['send', 'invitation.txt', '--limit', 'abc'], '--limit', 'abc'],
    [['mailings', '--limit', 'abc'], '--limit', 'abc'],
    [['why', '1', '--limit', '0'], '--limit', '0'],
    [['run', '--max', '1.5'], '--max', '1.5'],
    [['log', '--limit', '-1'], '--limit', '-1'],
  ] as [string[], string, string][]) {
    const r = await mailer(dir, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${flag} must be a whole number`) && r.stderr.includes(`"${value}"`), `${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal(count(dir, 'SELECT count(*) AS n FROM mailings'), 0, 'nothing was queued');
});

test('a server that refuses the sender (MAIL FROM) or wants a login stops the run; nobody is marked failed', async () => {
  for (const reply of ['553 5.7.1 <noreply@verein.example>: Sender address rejected: not owned by user', '530 5.7.0 Authentication Required']) {
    const server = await startSmtpServer({ rejectSender: reply });
    try {
      const dir = await withMembers(20);
      const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json']);
      assert.equal(r.code, 3, `${reply}: ${r.stderr}`);
      const summary = JSON.parse(r.stdout);
      assert.deepEqual([summary.failed, summary.queued], [0, 20], reply);
    } finally {
      await server.close();
    }
  }
});

test('a server that answers 421 to every mail is left out after five in a row: exit 3, all stay queued, none failed', async () => {
  const server = await startSmtpServer({ closeOn: Array.from({ length: 8 }, (_, i) => `m${i + 1}@example.org`) });
  try {
    const dir = await withMembers(8);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '1', '--json']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /cannot be used \(server-unreachable\)/);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.deferred, summary.queued], [0, 0, 0, 8]);
    // Five in a row leave the server out. The connection held two more mails by then (the next
    // one's envelope goes out behind the last message); they are tried too, and stay queued.
    const tries = count(dir, `SELECT count(*) AS n FROM attempts WHERE outcome = 'interrupted'`);
    assert.ok(tries >= 5 && tries <= 7, `${tries} tries: five, then the server is left out`);
  } finally {
    await server.close();
  }
});

test('implicit TLS to a plain SMTP port stops the run at once as a TLS problem (exit 3); nothing is failed', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(3);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', `smtps://127.0.0.1:${server.port}`, '--json']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\(tls\)/);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.queued], [0, 0, 3]);
  } finally {
    await server.close();
  }
});

test('an interrupted retry keeps the send deferred, and a later run delivers it', async () => {
  const server = await startSmtpServer({ reject: { 'm2@example.org': '451 4.7.1 Greylisted, try again later' } });
  try {
    const dir = await withMembers(3);
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 1);
    const dead = `smtp://127.0.0.1:${await closedPort()}`;
    const later = { MAILER_NOW: new Date(Date.now() + 16 * 60_000).toISOString() };
    const interrupted = await mailer(dir, ['run', '--smtp', dead], later);
    assert.equal(interrupted.code, 3, interrupted.stderr);
    const log = JSON.parse((await mailer(dir, ['log', '--email', 'm2@example.org', '--json'])).stdout)[0];
    assert.deepEqual([log.status, log.attempts], ['deferred', 1], 'still deferred, the interrupted try not counted');
    delete server.reject['m2@example.org'];
    const retried = await mailer(dir, ['run', '--smtp', server.url], later);
    assert.equal(retried.code, 0, retried.stderr);
    assert.equal(server.messages.filter((m) => m.to[0] === 'm2@example.org').length, 1);
  } finally {
    await server.close();
  }
});

test('a retry stopped by the quota leaves the sends it did not reach as they were: address and token', async () => {
  const server = await startSmtpServer({ reject: { 'm1@example.org': '451 4.7.1 Greylisted', 'm2@example.org': '451 4.7.1 Greylisted', 'm3@example.org': '451 4.7.1 Greylisted' } });
  try {
    const dir = await withMembers(3);
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 1);
    const before = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
    // everyone has a new address now; the hour's quota leaves room for one more mail
    writeFile(dir, 'members.csv', 'id;name;email\n1;Member 1;n1@example.org\n2;Member 2;n2@example.org\n3;Member 3;n3@example.org\n');
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'mailer.json', JSON.stringify({ maxPerHour: 4 }));
    server.reject = {};
    const r = await mailer(dir, ['retry', '--deferred', '--smtp', server.url, '--json']);
    assert.equal(JSON.parse(r.stdout).sent, 1, r.stdout + r.stderr);
    const after = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
    const untouched = after.filter((s) => s.status === 'deferred');
    assert.equal(untouched.length, 2);
    for (const s of untouched) {
      const was = before.find((b) => b.id === s.id);
      assert.equal(s.email, was.email, `send ${s.id} was not retried: it keeps the address it went to`);
    }
    const db = openDb(dir);
    const tokens = db.prepare(`SELECT count(*) AS n FROM sends WHERE status = 'deferred' AND token IS NOT NULL`).get() as any;
    db.close();
    assert.equal(tokens.n, 2, 'and its token');
  } finally {
    await server.close();
  }
});

test('a re-target stopped by an outage is finished by the next run', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(2);
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 0);
    const r = await mailer(dir, ['retarget', '1', '--to', 'neu@example.org', '--smtp', `smtp://127.0.0.1:${await closedPort()}`]);
    assert.equal(r.code, 3, r.stderr);
    const run = await mailer(dir, ['run', '--smtp', server.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(server.messages.at(-1)!.to, ['neu@example.org']);
  } finally {
    await server.close();
  }
});

test('the link of a test mail registers nobody; re-importing the old file does not bring a revoked address back', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(2);
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--test', '--test-to', 'me@verein.example', '--limit', '1', '--smtp', server.url])).code, 0);
    const token = /register\/([A-Za-z0-9_-]+)/.exec(server.messages[0].raw.toString())![1];
    const verify = await mailer(dir, ['token', 'verify', token, '--json']);
    assert.equal(verify.code, 1);
    assert.equal(JSON.parse(verify.stdout).state, 'test');

    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 0);
    const send = JSON.parse((await mailer(dir, ['log', '--email', 'm1@example.org', '--json'])).stdout)[0];
    assert.equal((await mailer(dir, ['retarget', String(send.id), '--to', 'anna.neu@example.org', '--smtp', server.url])).code, 0);
    const again = JSON.parse((await mailer(dir, ['import', 'members.csv', '--json'])).stdout);
    assert.equal(again.updated, 0);
    const why = JSON.parse((await mailer(dir, ['why', '1', '--json'])).stdout);
    assert.equal(why.member.email, 'anna.neu@example.org');
  } finally {
    await server.close();
  }
});

test('--dry-run honours --limit; send honours the hourly quota too', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(6);
    assert.equal((await mailer(dir, ['suppress', 'add', 'm1@example.org'])).code, 0);
    const dry = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--limit', '2', '--json'])).stdout);
    // as the real send: the suppressed member is skipped and takes no place of the two
    assert.deepEqual([dry.selected, dry.wouldSend, dry.skipped, dry.queued], [6, 2, 1, 3]);
    assert.deepEqual(dry.recipients.map((r: any) => r.email), ['m2@example.org', 'm3@example.org']);
    const text = await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--limit', '2']);
    assert.match(text.stdout + text.stderr, /6 selected, 2 would be sent, 1 skipped, 3 left queued for the next run \(--limit\)/);
    assert.equal((await mailer(dir, ['suppress', 'remove', 'm1@example.org'])).code, 0);
    writeFile(dir, 'mailer.json', JSON.stringify({ maxPerHour: 4 }));
    const r = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([r.sent, r.queued], [4, 2]);
    assert.equal(server.messages.length, 4);
  } finally {
    await server.close();
  }
});

test('--dry-run --limit counts as the run does: a member past the limit with an empty field is left queued, not skipped', async () => {
  const server = await startSmtpServer();
  try {
    const dir = tempDir();
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [
      ['1', 'Anna', 'm1@example.org'], ['2', 'Ben', 'm2@example.org'], ['3', '', 'm3@example.org'], ['4', 'Dora', ''], ['5', 'Eva', 'm5@example.org'],
    ]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    writeFile(dir, 'invitation.txt', INVITATION);
    const dry = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--limit', '2', '--json'])).stdout);
    const real = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--limit', '2', '--smtp', server.url, '--json'])).stdout);
    // Dora has no address: skipped by both at once. Member 3's empty name is past the limit.
    assert.deepEqual([dry.selected, dry.wouldSend, dry.skipped, dry.queued], [5, 2, 1, 2]);
    assert.deepEqual([real.selected, real.sent, real.skipped, real.queued], [dry.selected, dry.wouldSend, dry.skipped, dry.queued]);
  } finally {
    await server.close();
  }
});

test('an outbox that cannot be written stops the run (exit 3) and keeps the mails queued', async () => {
  const dir = await withMembers(3);
  const blocked = path.join(dir, 'outbox-file');
  fs.writeFileSync(blocked, 'not a folder');
  const r = await mailer(dir, ['send', 'invitation.txt', '--outbox', path.join(blocked, 'sub'), '--json']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(JSON.parse(r.stdout).queued, 3);
  // The outbox named is itself that file.
  const again = await mailer(dir, ['send', '--resume', String(JSON.parse(r.stdout).mailing), '--outbox', blocked, '--json']);
  assert.equal(again.code, 3, again.stderr);
  assert.match(again.stderr, /outbox-file is a file, not a folder/);
  assert.equal(JSON.parse(again.stdout).queued, 3);
});

test('a mail whose connection broke after the final dot is "outcome unknown", and its resend carries the "may have gone out twice" mark', async () => {
  // The first session: the whole message arrives, then a reset instead of the reply.
  const server = await startBreakingServer('cut-after-dot', 1);
  const good = await startSmtpServer();
  try {
    const dir = await withMembers(3);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '1', '--json']);
    assert.equal(server.dots, 3, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.queued], [2, 0, 1], r.stderr);
    const send = JSON.parse((await mailer(dir, ['log', '--email', 'm1@example.org', '--json'])).stdout)[0];
    const shown = await mailer(dir, ['show', String(send.id)]);
    assert.match(shown.stdout, /outcome unknown: .*connection broke after the whole message was sent/);
    assert.doesNotMatch(shown.stdout, /Nothing is lost|not sent yet/);
    assert.match(shown.stdout, /interrupted .*broke after the whole message was sent, before the server confirmed it/);
    assert.match(shown.stdout, /maybe-sent, temporary: The connection broke after the whole mail was handed over/);
    assert.match(shown.stdout, /— the message as it left —/, 'the message that may have arrived is kept');
    const json = JSON.parse((await mailer(dir, ['show', String(send.id), '--json'])).stdout);
    assert.deepEqual([json.maybeDuplicate, json.attempts.at(-1).category], [true, 'maybe-sent']);

    const resumed = await mailer(dir, ['send', '--resume', String(summary.mailing), '--smtp', good.url]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(good.messages.map((m) => m.to[0]), ['m1@example.org']);
    const after = await mailer(dir, ['show', String(send.id)]);
    assert.match(after.stdout, /may have gone out twice/);
    assert.equal(JSON.parse((await mailer(dir, ['show', String(send.id), '--json'])).stdout).maybeDuplicate, true);
    assert.equal(count(dir, 'SELECT count(*) AS n FROM sends WHERE maybe_duplicate = 1'), 1, 'only the mail whose reply was lost');
  } finally {
    await server.close();
    await good.close();
  }
});

test('an address with an IDN domain goes into the envelope as punycode, as into the To: header', async () => {
  const server = await startBreakingServer(null);
  try {
    const dir = tempDir();
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Buchladen', 'info@bücher.de']]));
    const imported = await mailer(dir, ['import', 'members.csv']);
    assert.equal(imported.code, 0, imported.stderr);
    writeFile(dir, 'invitation.txt', INVITATION);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(server.commands.filter((c) => c.startsWith('RCPT')), ['RCPT TO:<info@xn--bcher-kva.de>']);
  } finally {
    await server.close();
  }
});
