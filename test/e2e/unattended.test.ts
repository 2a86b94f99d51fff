import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { folderWithMembers, mailer, openDb, startMailer, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startBreakingServer, startSmtpServer, type TestServer } from '../support/smtp.js';

const withMembers = folderWithMembers;

const recipients = (server: TestServer) => server.messages.flatMap((m) => m.to);
const duplicates = (list: string[]) => list.length - new Set(list).size;
const waitFor = async (condition: () => boolean, ms = 15_000) => {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('server dies mid-run: exit 3, only unaccepted sends stay queued, resume delivers the rest once', async () => {
  const first = await startSmtpServer({ dieAfter: 15 });
  const dir = await withMembers(60);
  const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', first.url, '--concurrency', '4', '--json']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /server-unreachable/);
  const summary = JSON.parse(r.stdout);
  const accepted = first.messages.length;
  assert.equal(summary.sent, accepted, 'what the server accepted is recorded as sent');
  assert.equal(summary.queued, 60 - accepted, 'the rest is queued, none failed');
  assert.equal(summary.failed, 0);
  const db = openDb(dir);
  assert.match((db.prepare('SELECT status_reason FROM mailings WHERE id = 1').get() as any).status_reason, /server unusable/);
  db.close();
  const mailings = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout);
  assert.equal(mailings[0].status, 'paused');

  const second = await startSmtpServer();
  try {
    const resumed = await mailer(dir, ['send', '--resume', '1', '--smtp', second.url, '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const all = [...recipients(first), ...recipients(second)];
    assert.equal(new Set(all).size, 60);
    assert.equal(duplicates(all), 0);
  } finally {
    await second.close();
  }
});

test('kill -9 mid-send, then run: everyone gets it, duplicates only among the in-flight (≤ 2 per connection)', async () => {
  const server = await startSmtpServer({ delayMs: 30 });
  try {
    const dir = await withMembers(80);
    const run = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '4']);
    await waitFor(() => server.messages.length >= 20);
    run.child.kill('SIGKILL');
    await run.done;
    const after = await mailer(dir, ['run', '--smtp', server.url]);
    assert.equal(after.code, 0, after.stderr);
    const all = recipients(server);
    assert.equal(new Set(all).size, 80, 'nobody is lost');
    // Per connection: the mail answered but not yet recorded, and the one being sent behind it.
    assert.ok(duplicates(all) <= 8, `duplicates ${duplicates(all)} ≤ 2 × concurrency`);
    const db = openDb(dir);
    const marked = (db.prepare('SELECT count(*) AS n FROM sends WHERE maybe_duplicate = 1').get() as any).n;
    db.close();
    // A kill leaves the mails in hand claimed, three per connection (one sent, one with its
    // envelope written behind it, one waiting); the next run marks them.
    assert.ok(marked >= 1 && marked >= duplicates(all) && marked <= 12, `marked ${marked}`);
    const check = openDb(dir);
    const id = (check.prepare('SELECT id FROM sends WHERE maybe_duplicate = 1').get() as any).id;
    check.close();
    assert.match((await mailer(dir, ['show', String(id)])).stdout, /may have gone out twice/);
  } finally {
    await server.close();
  }
});

test("a send run waits out another command's long write (a re-import, say) instead of taking back what it handed over", { timeout: 60_000 }, async () => {
  const server = await startSmtpServer({ delayMs: 20 });
  try {
    const dir = await withMembers(40);
    const run = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '2', '--json']);
    await waitFor(() => server.messages.length >= 5);
    // Longer than the 5 s other commands wait: the run's next write must wait, not give up.
    const holder = new Database(path.join(dir, 'mailer.db'));
    try {
      holder.pragma('busy_timeout = 5000');
      holder.exec('BEGIN IMMEDIATE');
      await new Promise((resolve) => setTimeout(resolve, 6500));
      holder.exec('ROLLBACK');
    } finally {
      holder.close();
    }
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.queued], [40, 0]);
    assert.equal(new Set(recipients(server)).size, 40);
    assert.equal(duplicates(recipients(server)), 0);
    const db = openDb(dir);
    assert.equal((db.prepare('SELECT count(*) AS n FROM sends WHERE maybe_duplicate = 1').get() as { n: number }).n, 0);
    db.close();
  } finally {
    await server.close();
  }
});

test('cancel after kill -9 takes the sends the dead run left in hand too: the next run does not send them', async () => {
  const server = await startSmtpServer({ delayMs: 400 });
  try {
    const dir = await withMembers(6);
    const run = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '2']);
    const claimed = () => {
      const db = openDb(dir);
      try {
        return db.prepare('SELECT m.key FROM sends s JOIN members m ON m.id = s.member_id WHERE s.claimed_at IS NOT NULL').all() as { key: string }[];
      } catch {
        return [];
      } finally {
        db.close();
      }
    };
    await waitFor(() => claimed().length > 0);
    run.child.kill('SIGKILL');
    await run.done;
    const member = claimed()[0].key;
    const cancel = JSON.parse((await mailer(dir, ['cancel', '1', '--member', member, '--json'])).stdout);
    assert.deepEqual([cancel.cancelled, cancel.inFlight], [1, 0], 'no run is going: nothing is in flight');
    const before = recipients(server).filter((to) => to === `m${member}@example.org`).length;
    const after = await mailer(dir, ['run', '--smtp', server.url]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(recipients(server).filter((to) => to === `m${member}@example.org`).length, before, 'the cancelled member gets nothing more');
    const log = JSON.parse((await mailer(dir, ['log', '--member', member, '--json'])).stdout)[0];
    assert.equal(log.status, 'cancelled');
    assert.match(log.reason, /may have gone out/);
  } finally {
    await server.close();
  }
});

test('SIGTERM mid-send: the mails in hand are finished and recorded, the rest stays queued, no possible duplicates', async () => {
  const server = await startSmtpServer({ delayMs: 30 });
  try {
    const dir = await withMembers(60);
    const run = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '4', '--json']);
    await waitFor(() => server.messages.length >= 10);
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGTERM: stopping after the work in hand/);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.sent, server.messages.length, 'everything the server took is recorded');
    assert.equal(summary.sent + summary.queued, 60);
    const db = openDb(dir);
    assert.equal((db.prepare('SELECT count(*) AS n FROM sends WHERE claimed_at IS NOT NULL').get() as any).n, 0, 'nothing left in hand');
    assert.match((db.prepare('SELECT status_reason FROM mailings WHERE id = 1').get() as any).status_reason, /stopped by a signal/);
    db.close();
    const resumed = await mailer(dir, ['send', '--resume', '1', '--smtp', server.url]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(server.messages.length, 60);
    assert.equal(duplicates(recipients(server)), 0);
    const check = openDb(dir);
    assert.equal((check.prepare('SELECT count(*) AS n FROM sends WHERE maybe_duplicate = 1').get() as any).n, 0);
    check.close();
  } finally {
    await server.close();
  }
});

test('a second SIGTERM while a send stops ends it at once: exit 130, no summary, the mails in hand left claimed', async () => {
  // The server takes 2 s per mail, so that the mails in hand are still in hand when the second
  // signal comes: a run that waited for them would print its summary.
  const server = await startSmtpServer({ delayMs: 2000 });
  try {
    const dir = await withMembers(20);
    const run = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '4', '--json']);
    let stderr = '';
    run.child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(() => server.messages.length >= 4);
    run.child.kill('SIGTERM');
    await waitFor(() => /stopping after the work in hand/.test(stderr));
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stdout, '', 'ended before the run could report');
    const db = openDb(dir);
    assert.ok((db.prepare('SELECT count(*) AS n FROM sends WHERE claimed_at IS NOT NULL').get() as any).n > 0, 'the mails in hand were not waited for');
    db.close();
  } finally {
    await server.close();
  }
});

test('two runs at once: one exits 4 naming the holder, nobody gets a mail twice', async () => {
  // The first run's mails after the second wait for the test: however slowly the machine starts
  // the second process, the first still holds the lock when it asks.
  const server = await startSmtpServer({ holdAfter: 2 });
  try {
    const dir = await withMembers(40);
    const first = startMailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--concurrency', '2']);
    await waitFor(() => server.messages.length >= 2);
    const second = await mailer(dir, ['run', '--smtp', server.url]);
    server.release();
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, /another mailer \(send, pid \d+/);
    const firstResult = await first.done;
    assert.equal(firstResult.code, 0, firstResult.stderr);
    assert.equal(duplicates(recipients(server)), 0);
    assert.equal(server.messages.length, 40);
  } finally {
    await server.close();
  }
});

test('a deferred send is retried by run once its back-off has passed, and fails after the last step', async () => {
  const server = await startSmtpServer({ reject: { 'm2@example.org': '451 4.7.1 Greylisted, try again later' } });
  try {
    const dir = await withMembers(3);
    writeFile(dir, 'mailer.json', JSON.stringify({ retryBackoff: ['15m', '1h'] }));
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url])).code, 1);
    const at = (minutes: number) => ({ MAILER_NOW: new Date(Date.now() + minutes * 60_000).toISOString() });
    const early = await mailer(dir, ['run', '--smtp', server.url], at(10));
    assert.equal(early.code, 0, early.stderr);
    assert.match(early.stderr, /nothing to do/);
    assert.equal(server.messages.length, 2);

    const second = await mailer(dir, ['run', '--smtp', server.url], at(16));
    assert.equal(second.code, 1, 'deferred again');
    assert.match(second.stderr, /retrying 1 deferred/);
    const log = JSON.parse((await mailer(dir, ['log', '--email', 'm2@example.org', '--json'])).stdout);
    assert.deepEqual([log[0].status, log[0].attempts], ['deferred', 2]);

    const last = await mailer(dir, ['run', '--smtp', server.url], at(16 + 61));
    assert.equal(last.code, 1);
    const failed = JSON.parse((await mailer(dir, ['log', '--email', 'm2@example.org', '--json'])).stdout);
    assert.deepEqual([failed[0].status, failed[0].category, failed[0].attempts], ['failed', 'greylisted', 3]);
    assert.match(failed[0].reason, /gave up after 3 attempts/);

    delete server.reject['m2@example.org'];
    const retried = await mailer(dir, ['retry', '--failed', '--smtp', server.url, '--json']);
    assert.equal(JSON.parse(retried.stdout).sent, 1);
  } finally {
    await server.close();
  }
});

test('a quota kept in the database stops a run at the cap; the next run continues', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(12);
    writeFile(dir, 'mailer.json', JSON.stringify({ maxPerHour: 5 }));
    const first = await mailer(dir, ['send', 'invitation.txt', '--limit', '3', '--smtp', server.url, '--json']);
    assert.equal(JSON.parse(first.stdout).sent, 3);
    const run1 = await mailer(dir, ['run', '--smtp', server.url, '--json']);
    assert.equal(run1.code, 0, run1.stderr);
    assert.equal(JSON.parse(run1.stdout).handedOver, 2, 'only 2 left of 5 this hour');
    assert.match(run1.stderr, /stopped at the cap \(maxPerHour 5\)/);
    const run2 = await mailer(dir, ['run', '--smtp', server.url]);
    assert.match(run2.stderr, /quota is used up/);
    assert.equal(server.messages.length, 5);
    const later = { MAILER_NOW: new Date(Date.now() + 61 * 60_000).toISOString() };
    const run3 = await mailer(dir, ['run', '--smtp', server.url, '--max', '4', '--json'], later);
    assert.equal(JSON.parse(run3.stdout).handedOver, 4);
    const run4 = await mailer(dir, ['run', '--smtp', server.url, '--json'], later);
    assert.equal(JSON.parse(run4.stdout).handedOver, 1);
    assert.equal(new Set(recipients(server)).size, 10);
    assert.equal(server.messages.length, 10);
  } finally {
    await server.close();
  }
});

/** `send --at` takes local time to the minute. */
function localMinute(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

test('a mailing that falls due while the quota is used up stays scheduled until a run has room', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(4);
    writeFile(dir, 'mailer.json', JSON.stringify({ maxPerHour: 2 }));
    const first = await mailer(dir, ['send', 'invitation.txt', '--member', '1', '--member', '2', '--smtp', server.url, '--json']);
    assert.equal(JSON.parse(first.stdout).sent, 2);
    const when = new Date(Date.now() + 10 * 60_000);
    const scheduled = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--member', '3', '--member', '4', '--at', localMinute(when), '--json'])).stdout);
    const at = (minutes: number) => ({ MAILER_NOW: new Date(Date.now() + minutes * 60_000).toISOString() });
    const full = await mailer(dir, ['run', '--smtp', server.url], at(20));
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stderr, /quota is used up \(maxPerHour 2\); the next run continues \(1 due mailing waiting\)/);
    const status = async () => JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout).find((m: any) => m.mailing === scheduled.mailing).status;
    assert.equal(await status(), 'scheduled', 'not started: no run is sending it');
    const room = await mailer(dir, ['run', '--smtp', server.url], at(65));
    assert.equal(room.code, 0, room.stderr);
    assert.match(room.stderr, new RegExp(`mailing ${scheduled.mailing} is due`));
    assert.equal(await status(), 'done');
    assert.deepEqual(recipients(server).sort(), ['m1@example.org', 'm2@example.org', 'm3@example.org', 'm4@example.org']);
  } finally {
    await server.close();
  }
});

test('SIGTERM during run: the mailing in hand pauses, a due mailing not reached stays scheduled, no retry starts', async () => {
  const server = await startSmtpServer({ delayMs: 30 });
  try {
    const dir = await withMembers(40);
    const when = localMinute(new Date(Date.now() + 10 * 60_000));
    for (let i = 0; i < 2; i++) assert.equal((await mailer(dir, ['send', 'invitation.txt', '--at', when])).code, 0);
    const later = { MAILER_NOW: new Date(Date.now() + 20 * 60_000).toISOString() };
    const run = startMailer(dir, ['run', '--smtp', server.url, '--concurrency', '2'], later);
    await waitFor(() => server.messages.length >= 5);
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.doesNotMatch(r.stderr, /mailing 2/, 'the second mailing was not reached');
    const statuses = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout).map((m: any) => [m.mailing, m.status]).sort();
    assert.deepEqual(statuses, [[1, 'paused'], [2, 'scheduled']]);
    const rest = await mailer(dir, ['run', '--smtp', server.url], later);
    assert.equal(rest.code, 0, rest.stderr);
    assert.equal(server.messages.length, 80);
    const perMember = new Map<string, number>();
    for (const to of recipients(server)) perMember.set(to, (perMember.get(to) ?? 0) + 1);
    assert.deepEqual([perMember.size, ...new Set(perMember.values())], [40, 2], 'each member got each mailing once');
  } finally {
    await server.close();
  }
});

test('a mailing cancelled while run works on an earlier one stays cancelled, and none of it is sent', { timeout: 60_000 }, async () => {
  const server = await startSmtpServer({ delayMs: 150 });
  try {
    const dir = await withMembers(12);
    // Two mailings, each sent to one member and left with the rest queued.
    for (const _ of [1, 2]) assert.equal((await mailer(dir, ['send', 'invitation.txt', '--limit', '1', '--smtp', server.url])).code, 0);
    const run = startMailer(dir, ['run', '--smtp', server.url, '--concurrency', '1', '--json']);
    await waitFor(() => server.messages.length >= 4);
    const cancel = await mailer(dir, ['cancel', '2', '--json']);
    assert.equal(cancel.code, 0, cancel.stderr);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout) as { mailing: number; status: string; sent: number }[];
    const byId = new Map(list.map((m) => [m.mailing, m]));
    assert.deepEqual([byId.get(1)!.status, byId.get(1)!.sent], ['done', 12]);
    assert.deepEqual([byId.get(2)!.status, byId.get(2)!.sent], ['cancelled', 1], 'only the mail of the first send went out');
    assert.equal(server.messages.length, 13);
  } finally {
    await server.close();
  }
});

test('send --at schedules; run sends it when due; cancel takes single members out', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(4);
    const when = new Date(Date.now() + 2 * 3_600_000);
    const pad = (n: number) => String(n).padStart(2, '0');
    const at = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T${pad(when.getHours())}:${pad(when.getMinutes())}`;
    const scheduled = await mailer(dir, ['send', 'invitation.txt', '--at', at, '--json']);
    assert.equal(scheduled.code, 0, scheduled.stderr);
    assert.equal(JSON.parse(scheduled.stdout).queued, 4);
    assert.equal(JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout)[0].status, 'scheduled');
    const cancel = await mailer(dir, ['cancel', '1', '--member', '2', '--member', 'm3@example.org', '--json']);
    assert.equal(JSON.parse(cancel.stdout).cancelled, 2);
    const now = await mailer(dir, ['run', '--smtp', server.url]);
    assert.match(now.stderr, /nothing to do/);
    assert.equal(server.messages.length, 0);
    const due = await mailer(dir, ['run', '--smtp', server.url], { MAILER_NOW: new Date(when.getTime() + 60_000).toISOString() });
    assert.equal(due.code, 0, due.stderr);
    assert.match(due.stderr, /mailing 1 is due/);
    assert.deepEqual(recipients(server).sort(), ['m1@example.org', 'm4@example.org']);
    const list = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout);
    assert.deepEqual([list[0].status, list[0].sent, list[0].cancelled], ['done', 2, 2]);
    const past = await mailer(dir, ['send', 'invitation.txt', '--at', '2020-01-01T08:00']);
    assert.equal(past.code, 2);
    assert.match(past.stderr, /in the past/);
    const whole = await mailer(dir, ['send', 'invitation.txt', '--at', at, '--json']);
    const id = String(JSON.parse(whole.stdout).mailing);
    assert.equal(JSON.parse((await mailer(dir, ['cancel', id, '--json'])).stdout).cancelled, 4);
    assert.equal(JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout)[0].status, 'cancelled');
  } finally {
    await server.close();
  }
});

test('several servers: a dead one is left out and the others carry the mailing; none usable is exit 3', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(20);
    const dead = `smtp://127.0.0.1:${await closedPort()}`;
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', dead, '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).sent, 20);
    assert.equal(new Set(recipients(server)).size, 20);
    const both = await mailer(dir, ['send', 'invitation.txt', '--smtp', dead, '--smtp', `smtp://127.0.0.1:${await closedPort()}`, '--json']);
    assert.equal(both.code, 3);
    assert.equal(JSON.parse(both.stdout).queued, 20);
  } finally {
    await server.close();
  }
});

test('several servers: one that dies mid-run is left out, the other carries the rest, nobody gets the mail twice', async () => {
  const dying = await startSmtpServer({ dieAfter: 10 });
  const other = await startSmtpServer();
  try {
    const dir = await withMembers(60);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', dying.url, '--smtp', other.url, '--concurrency', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.queued, summary.failed, summary.deferred], [60, 0, 0, 0]);
    assert.equal(dying.messages.length, 10, 'the first server took its share until it died');
    assert.equal(other.messages.length, 50, 'the other took the rest, the mails in hand at the death among them');
    const all = [...recipients(dying), ...recipients(other)];
    assert.equal(new Set(all).size, 60);
    assert.equal(duplicates(all), 0);
    const db = openDb(dir);
    const interrupted = db.prepare(`SELECT count(*) AS n FROM attempts WHERE outcome = 'interrupted' AND category = 'server-unreachable'`).get() as { n: number };
    db.close();
    assert.ok(interrupted.n >= 1, 'the cut connection is in the history of the sends it held');
  } finally {
    await dying.close();
    await other.close();
  }
});

test('operator report: mailed after a run; printed when it cannot be mailed', async () => {
  const server = await startSmtpServer({ reject: { 'm2@example.org': '550 5.1.1 User unknown', 'boss@bad.example': '550 5.1.1 no such user' } });
  try {
    const dir = await withMembers(3);
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--report-to', 'vorstand@verein.example']);
    assert.equal(r.code, 1);
    const report = server.messages.find((m) => m.to[0] === 'vorstand@verein.example')!;
    const parsed = await simpleParser(report.raw);
    assert.match(parsed.subject!, /2 sent, 1 not delivered/);
    assert.match(parsed.text!, /failed unknown-mailbox: member 2 \(Member 2\) <m2@example.org>/);
    assert.match(parsed.text!, /mailer retry --failed --mailing 1/);

    const unsent = await mailer(dir, ['send', 'invitation.txt', '--member', '1', '--smtp', server.url, '--report-to', 'boss@bad.example']);
    assert.match(unsent.stderr, /the report to boss@bad\.example could not be sent/);
    assert.match(unsent.stdout, /Mailing 2 \(invitation/);

    // run --json: a report that could not be mailed is in the JSON, not lost
    assert.equal((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--limit', '1'])).code, 0);
    const run = await mailer(dir, ['run', '--smtp', server.url, '--report-to', 'boss@bad.example', '--json']);
    const json = JSON.parse(run.stdout);
    assert.equal(json.report.sent, false, run.stdout);
    assert.match(json.report.text, /mailing 3/i);
  } finally {
    await server.close();
  }
});

test('check: closed port, TLS to a plain port, wrong password, and a working server with a test mail', async () => {
  const dir = tempDir();
  const closed = await mailer(dir, ['check', '--smtp', `smtp://127.0.0.1:${await closedPort()}`]);
  assert.equal(closed.code, 3);
  assert.match(closed.stdout, /FAILED\s+TCP connect: .*ECONNREFUSED/);
  assert.match(closed.stdout, /the server is down, or the port is wrong/);

  const server = await startSmtpServer({ auth: { user: 'verein', pass: 'richtig' } });
  try {
    const url = `smtp://verein@127.0.0.1:${server.port}`;
    // implicit TLS to a plain SMTP port: the handshake fails, and check says so (exit 3)
    const plain = await mailer(dir, ['check', '--smtp', `smtps://127.0.0.1:${server.port}`]);
    assert.equal(plain.code, 3, plain.stdout + plain.stderr);
    assert.match(plain.stdout, /FAILED\s+TLS and greeting/);
    assert.match(plain.stdout, new RegExp(`port ${server.port} does not speak implicit TLS`));

    const wrong = await mailer(dir, ['check', '--smtp', url], { MAILER_SMTP_PASSWORD: 'falsch' });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stdout, /ok\s+greeting and EHLO/);
    assert.match(wrong.stdout, /FAILED\s+login/);
    assert.match(wrong.stdout, /wrong user name or password/);
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /falsch/);

    // requireTls: a server that offers no STARTTLS fails the TLS step, and no password is sent
    writeFile(dir, 'mailer.json', JSON.stringify({ requireTls: true }));
    const clear = await mailer(dir, ['check', '--smtp', url, '--json'], { MAILER_SMTP_PASSWORD: 'richtig' });
    writeFile(dir, 'mailer.json', '{}');
    assert.equal(clear.code, 3, clear.stdout + clear.stderr);
    const tls = JSON.parse(clear.stdout)[0].steps;
    assert.deepEqual(tls.map((s: any) => [s.step, s.ok]), [['name lookup', true], ['TCP connect', true], ['TLS', false]]);
    assert.match(tls[2].hint, /requireTls is set in mailer\.json/);

    const good = await mailer(dir, ['check', '--smtp', url, '--to', 'me@verein.example', '--json'], { MAILER_SMTP_PASSWORD: 'richtig' });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const steps = JSON.parse(good.stdout)[0].steps.map((s: any) => [s.step, s.ok]);
    assert.deepEqual(steps, [['name lookup', true], ['TCP connect', true], ['TLS', true], ['greeting and EHLO', true], ['login', true], ['test mail to me@verein.example', true]]);
    assert.deepEqual(server.messages.map((m) => m.to[0]), ['me@verein.example']);
  } finally {
    await server.close();
  }
});

test('check sends its test mail through the transport send uses: an IDN domain goes into the envelope as punycode, a refusal in its words', async () => {
  const dir = tempDir();
  // a server without SMTPUTF8, which records the envelope as it arrives
  const raw = await startBreakingServer(null);
  try {
    const sent = await mailer(dir, ['check', '--smtp', raw.url, '--to', 'info@bücher.example', '--json']);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    // a connection of its own, past send's transport, hands the server the domain in raw UTF-8
    assert.deepEqual(raw.commands.filter((c) => c.startsWith('RCPT')), ['RCPT TO:<info@xn--bcher-kva.example>']);
    assert.equal(raw.accepted, 1);
  } finally {
    await raw.close();
  }
  const server = await startSmtpServer({ reject: { 'gone@verein.example': '550 5.1.1 User unknown' } });
  try {
    const refused = await mailer(dir, ['check', '--smtp', server.url, '--to', 'gone@verein.example', '--json']);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    const step = JSON.parse(refused.stdout)[0].steps.at(-1);
    assert.deepEqual([step.step, step.ok], ['test mail to gone@verein.example', false]);
    assert.match(step.detail, /^550 5\.1\.1 User unknown/);
    assert.equal(server.messages.length, 0);
  } finally {
    await server.close();
  }
});
