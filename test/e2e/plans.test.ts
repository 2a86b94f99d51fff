import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { INVITATION, folderWithMembers, mailer, membersCsv, openDb, startMailer, tempDir, writeFile } from '../support/cli.js';
import { closedPort, startSmtpServer, type TestServer } from '../support/smtp.js';

// The bed shop's clock: every time below is local Berlin time, summer time from 29 March 2026.
const TZ = 'Europe/Berlin';
const at = (now: string) => ({ TZ, MAILER_NOW: now });

const customers = [
  ['1', 'Anna', 'anna@example.org', 'April'], ['2', 'Ben', 'ben@example.org', 'April'], ['3', 'Cem', 'cem@example.org', 'April'],
  ['4', 'Dora', 'dora@example.org', 'April'], ['5', 'Eva', 'eva@example.org', 'April'], ['6', 'Lea', 'lea@example.org', 'April'],
  ['7', 'Fritz', 'fritz@example.org', 'Mai'], ['8', 'Gina', 'gina@example.org', 'Mai'], ['9', 'Hans', 'hans@example.org', 'Juni'],
  ['10', 'Ida', 'ida@example.org', 'Juli'], ['11', 'Jan', 'jan@example.org', 'Juli'], ['12', 'Kai', 'kai@example.org', ''],
];

const to = (server: TestServer, from = 0) => server.messages.slice(from).map((m) => m.to[0]).sort();

async function serve(dir: string, port: number) {
  const proc = startMailer(dir, ['serve', '--port', String(port)], { TZ });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('serve did not start')), 10_000);
    proc.child.stderr!.on('data', (c: Buffer) => { if (c.toString().includes('listening on')) { clearTimeout(timer); resolve(); } });
  });
  return proc;
}

test('a monthly plan: checked before it is saved, one mailing per period however many runs, missed periods reported and not sent late, the follow-up to those who did not open', async () => {
  const server = await startSmtpServer({ reject: { 'cem@example.org': '550 5.1.1 User unknown' } });
  const port = await closedPort();
  const base = `http://127.0.0.1:${port}`;
  let proc: Awaited<ReturnType<typeof serve>> | null = null;
  try {
    const dir = tempDir();
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: server.url, publicUrl: base }));
    writeFile(dir, 'kunden.csv', membersCsv(['id', 'name', 'email', 'erinnerungsmonat'], customers));
    assert.equal((await mailer(dir, ['import', 'kunden.csv'])).code, 0);
    writeFile(dir, 'erinnerung.txt', 'Subject: Ihre Matratze: Erinnerung {{month}} {{year}}\nFrom: Bettenhaus <info@betten.example>\n\nHallo {{name}}, es ist {{month_number}}/{{year}}.\n');
    writeFile(dir, 'erinnerung.html', '<html><body><p>Hallo {{name}}, {{month}}</p></body></html>\n');
    writeFile(dir, 'nachfass.txt', 'Subject: Nochmals: Ihre Erinnerung {{month}}\nFrom: Bettenhaus <info@betten.example>\n\nHallo {{name}}\n');
    writeFile(dir, 'kaputt.txt', 'Subject: Hallo {{vorname}}\nFrom: Bettenhaus <info@betten.example>\n\nText\n');
    const added = at('2026-03-20T10:00:00+01:00');
    const add = (...extra: string[]) => mailer(dir, ['plan', 'add', 'erinnerung', '--every', 'month', '--on', '1', '--at', '08:00', ...extra], added);
    const main = ['--template', 'erinnerung.txt', '--where', 'erinnerungsmonat={{month}}'];

    // Everything is checked before anything is saved.
    const refused: [string[], RegExp][] = [
      [['--template', 'erinnerung.txt', '--where', 'erinnerungsmonatt={{month}}'], /no member field "erinnerungsmonatt"/],
      [['--template', 'kaputt.txt'], /kaputt\.txt: the placeholder \{\{vorname\}\} is not a member field/],
      [['--template', 'fehlt.txt'], /cannot read template .*fehlt\.txt/],
      [[...main, '--segment', 'nirgends'], /no segment "nirgends"/],
      [[...main, '--follow-up', '30d'], /--follow-up 30d is not before the next period/],
      [[...main, '--follow-up', '14d', '--follow-up-template', 'kaputt.txt'], /\{\{vorname\}\}/],
      [[...main, '--follow-up-template', 'nachfass.txt'], /--follow-up-template without --follow-up/],
    ];
    for (const [args, message] of refused) {
      const r = await add(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    for (const [flag, value, message] of [['--at', '24:00', /--at "24:00" is not a time of day/], ['--on', '32', /--on "32" is not a day of the month/], ['--every', 'year', /--every "year"/]] as const) {
      const r = await mailer(dir, ['plan', 'add', 'erinnerung', ...main, '--every', 'month', '--on', '1', '--at', '08:00', flag, value], added);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const db0 = openDb(dir);
    assert.equal((db0.prepare('SELECT count(*) AS n FROM plans').get() as any).n, 0, 'nothing saved');
    db0.close();

    const ok = await add(...main, '--follow-up', '14d', '--follow-up-template', 'nachfass.txt');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /first due 2026-04-01 08:00/);
    assert.equal((await add(...main)).code, 2, 'the name is taken');
    const listed = JSON.parse((await mailer(dir, ['plan', 'list', '--json'], added)).stdout);
    assert.deepEqual(listed.map((p: any) => [p.name, p.every, p.next, p.paused, p.lastMailing, p.followUpDays]),
      [['erinnerung', 'month', '2026-04-01T06:00:00.000Z', false, null, 14]], 'first due at the next 1st, 08:00 summer time');
    assert.match(listed[0].template, /^\/.*erinnerung\.txt$/);

    // 1 April: 07:59 nothing; 08:00 two runs at once; 08:10 and 12:00 nothing more.
    const early = await mailer(dir, ['run', '--json'], at('2026-04-01T07:59:00+02:00'));
    assert.equal(early.code, 0, early.stderr);
    assert.deepEqual(JSON.parse(early.stdout).plans, []);
    assert.equal(server.messages.length, 0);
    const both = await Promise.all([1, 2].map(() => startMailer(dir, ['run', '--json'], at('2026-04-01T08:00:00+02:00')).done));
    const codes = both.map((r) => r.code).sort();
    assert.equal(codes.filter((c) => c === 1).length, 1, `one run sends (Cem's address is refused): ${both.map((r) => r.stderr).join('\n')}`);
    assert.ok(codes.every((c) => c === 1 || c === 0 || c === 4), String(codes));
    for (const later of ['2026-04-01T08:10:00+02:00', '2026-04-01T12:00:00+02:00']) {
      const r = await mailer(dir, ['run', '--json'], at(later));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).plans, [], later);
    }
    const april = ['anna@example.org', 'ben@example.org', 'dora@example.org', 'eva@example.org', 'lea@example.org'];
    assert.deepEqual(to(server), april, 'exactly the April customers, once each');
    const first = await simpleParser(server.messages[0].raw);
    assert.equal(first.subject, 'Ihre Matratze: Erinnerung April 2026');
    assert.match(first.text!, /es ist 4\/2026/);
    let mailings = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout);
    assert.deepEqual(mailings.map((m: any) => [m.mailing, m.plan, m.selected]), [[1, 'erinnerung', 6]]);
    const afterApril = JSON.parse((await mailer(dir, ['plan', 'list', '--json'], at('2026-04-01T12:00:00+02:00'))).stdout)[0];
    assert.deepEqual([afterApril.next, afterApril.lastMailing], ['2026-05-01T06:00:00.000Z', 1]);
    assert.match((await mailer(dir, ['mailings'])).stdout, /erinnerung/);

    // Anna and Eva open it (recorded through serve); Dora unsubscribes by hand; Cem was refused.
    const pixelOf = async (who: string) => {
      const raw = server.messages.find((m) => m.to[0] === who)!;
      return /\/o\/([A-Za-z0-9_-]+)\.gif/.exec((await simpleParser(raw.raw)).html as string)![1];
    };
    proc = await serve(dir, port);
    for (const who of ['anna@example.org', 'eva@example.org']) assert.equal((await fetch(`${base}/o/${await pixelOf(who)}.gif`)).status, 200);
    proc.child.kill('SIGTERM');
    await proc.done;
    proc = null;
    assert.equal((await mailer(dir, ['suppress', 'add', 'dora@example.org'])).code, 0);

    // The follow-up: 14 days after the mailing started, once.
    assert.deepEqual(JSON.parse((await mailer(dir, ['run', '--json'], at('2026-04-15T07:59:00+02:00'))).stdout).plans, []);
    const before = server.messages.length;
    // (08:01: the mailing started when the run at 08:00 reached it, a few milliseconds after.)
    const follow = await mailer(dir, ['run', '--json'], at('2026-04-15T08:01:00+02:00'));
    assert.equal(follow.code, 0, follow.stderr);
    const followed = JSON.parse(follow.stdout);
    assert.deepEqual(followed.plans.map((p: any) => [p.plan, p.period, p.followUp]), [['erinnerung', '2026-04', true]]);
    assert.deepEqual(to(server, before), ['ben@example.org', 'lea@example.org'], 'sent, not opened, not suppressed, not refused');
    assert.equal(followed.mailings[0].skipped, 1, 'Dora is suppressed');
    assert.equal((await simpleParser(server.messages[before].raw)).subject, 'Nochmals: Ihre Erinnerung April');
    const again = await mailer(dir, ['run', '--json'], at('2026-04-20T08:00:00+02:00'));
    assert.deepEqual([JSON.parse(again.stdout).plans, server.messages.length], [[], before + 2], 'made once');

    // 1 May: the May customers.
    const beforeMay = server.messages.length;
    const may = await mailer(dir, ['run', '--json'], at('2026-05-01T08:30:00+02:00'));
    assert.equal(may.code, 0, may.stderr);
    assert.deepEqual(to(server, beforeMay), ['fritz@example.org', 'gina@example.org']);
    assert.deepEqual(JSON.parse(may.stdout).missed, []);

    // No run from 1 May to 2 July: June is reported and not sent; July is still in its period.
    const beforeJuly = server.messages.length;
    const july = await mailer(dir, ['run', '--json'], at('2026-07-02T09:00:00+02:00'));
    assert.equal(july.code, 0, july.stderr);
    const julyResult = JSON.parse(july.stdout);
    assert.deepEqual(julyResult.missed.map((m: any) => [m.plan, m.period, m.followUp]),
      [['erinnerung', '2026-05', true], ['erinnerung', '2026-06', false]]);
    assert.match(july.stderr, /plan erinnerung: the period 2026-06 \(due 2026-06-01 08:00\) passed without a run; it is not sent late/);
    assert.deepEqual(julyResult.plans.map((p: any) => [p.period, p.followUp]), [['2026-07', false]]);
    assert.deepEqual(to(server, beforeJuly), ['ida@example.org', 'jan@example.org'], 'July\'s, and nobody of June');
    const reported = JSON.parse((await mailer(dir, ['run', '--json'], at('2026-07-02T10:00:00+02:00'))).stdout);
    assert.deepEqual([reported.missed, reported.plans], [[], []], 'a missed period is reported once');
    assert.ok(!server.messages.some((m) => m.to[0] === 'hans@example.org'));

    mailings = JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout);
    assert.deepEqual(mailings.map((m: any) => [m.mailing, m.plan]), [[4, 'erinnerung'], [3, 'erinnerung'], [2, 'erinnerung'], [1, 'erinnerung']]);
    const end = JSON.parse((await mailer(dir, ['plan', 'list', '--json'], at('2026-07-02T10:00:00+02:00'))).stdout)[0];
    assert.deepEqual([end.next, end.lastMailing], ['2026-08-01T06:00:00.000Z', 4]);

    // A mailing not made by a plan says so with null.
    writeFile(dir, 'einmal.txt', INVITATION);
    assert.equal((await mailer(dir, ['send', 'einmal.txt', '--member', '12', '-q'])).code, 0);
    assert.equal(JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout)[0].plan, null);
  } finally {
    if (proc) {
      proc.child.kill('SIGTERM');
      await proc.done;
    }
    await server.close();
  }
});

test('--on 31 is the last day of February (leap or not); a weekly plan stays at 08:00 local across the change to summer time; pause and resume', async () => {
  const server = await startSmtpServer();
  try {
    const list = async (dir: string, now: string) => JSON.parse((await mailer(dir, ['plan', 'list', '--json'], at(now))).stdout)[0];
    const run = async (dir: string, now: string) => {
      const r = await mailer(dir, ['run', '--json', '--smtp', server.url], at(now));
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const plan = async (dir: string, now: string, name: string, ...args: string[]) => {
      const r = await mailer(dir, ['plan', 'add', name, '--template', 'invitation.txt', ...args], at(now));
      assert.equal(r.code, 0, r.stderr);
    };

    const feb = await folderWithMembers(2);
    await plan(feb, '2027-02-01T00:00:00+01:00', 'ende', '--every', 'month', '--on', '31', '--at', '08:00');
    assert.equal((await list(feb, '2027-02-01T00:00:00+01:00')).next, '2027-02-28T07:00:00.000Z');
    assert.deepEqual((await run(feb, '2027-02-28T07:59:00+01:00')).plans, []);
    assert.deepEqual((await run(feb, '2027-02-28T08:00:00+01:00')).plans.map((p: any) => p.period), ['2027-02']);
    assert.equal((await list(feb, '2027-02-28T09:00:00+01:00')).next, '2027-03-31T06:00:00.000Z', '31 March, summer time');
    const leap = await folderWithMembers(1);
    await plan(leap, '2028-02-01T00:00:00+01:00', 'ende', '--every', 'month', '--on', '31', '--at', '08:00');
    assert.equal((await list(leap, '2028-02-01T00:00:00+01:00')).next, '2028-02-29T07:00:00.000Z');

    const weekly = await folderWithMembers(2);
    await plan(weekly, '2026-03-21T12:00:00+01:00', 'sonntag', '--every', 'week', '--on', 'sunday', '--at', '08:00');
    assert.equal((await list(weekly, '2026-03-21T12:00:00+01:00')).next, '2026-03-22T07:00:00.000Z', 'winter time: 08:00 is 07:00Z');
    assert.equal((await run(weekly, '2026-03-22T08:00:00+01:00')).plans.length, 1);
    assert.equal((await list(weekly, '2026-03-22T09:00:00+01:00')).next, '2026-03-29T06:00:00.000Z', 'summer time: 08:00 is 06:00Z');
    assert.deepEqual((await run(weekly, '2026-03-29T07:59:00+02:00')).plans, [], '07:59 local, though 08:59 by the old offset');
    assert.equal((await run(weekly, '2026-03-29T08:00:00+02:00')).plans.length, 1);
    assert.equal(server.messages.length, 2 + 2 + 2, 'February\'s, and two Sundays of the weekly plan');

    // Paused, it makes nothing; resumed, it is due at its next occurrence (the paused Sunday is not missed).
    assert.equal((await mailer(weekly, ['plan', 'pause', 'sonntag'], at('2026-03-30T12:00:00+02:00'))).code, 0);
    assert.deepEqual([(await list(weekly, '2026-03-30T12:00:00+02:00')).paused, (await list(weekly, '2026-03-30T12:00:00+02:00')).next], [true, null]);
    assert.deepEqual((await run(weekly, '2026-04-05T09:00:00+02:00')).plans, []);
    assert.equal((await mailer(weekly, ['plan', 'resume', 'sonntag'], at('2026-04-06T12:00:00+02:00'))).code, 0);
    assert.equal((await list(weekly, '2026-04-06T12:00:00+02:00')).next, '2026-04-12T06:00:00.000Z');
    const resumed = await run(weekly, '2026-04-12T08:00:00+02:00');
    assert.deepEqual([resumed.plans.length, resumed.missed], [1, []]);

    assert.equal((await mailer(weekly, ['plan', 'remove', 'sonntag'])).code, 0);
    assert.deepEqual(JSON.parse((await mailer(weekly, ['plan', 'list', '--json'])).stdout), []);
    assert.equal(JSON.parse((await mailer(weekly, ['mailings', '--json'])).stdout)[0].plan, 'sonntag', 'its mailings keep its name');
    assert.equal((await mailer(weekly, ['plan', 'remove', 'sonntag'])).code, 2);
  } finally {
    await server.close();
  }
});

test('{{month}} in English with "language": "en"; a template gone at run time is said, and made by the next run', async () => {
  const server = await startSmtpServer();
  try {
    const dir = tempDir();
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: server.url, language: 'en' }));
    writeFile(dir, 'customers.csv', membersCsv(['id', 'name', 'email', 'month'], [['1', 'Ann', 'ann@example.org', 'March'], ['2', 'Bob', 'bob@example.org', 'März']]));
    assert.equal((await mailer(dir, ['import', 'customers.csv'])).code, 0);
    writeFile(dir, 'reminder.txt', 'Subject: Your {{month}} reminder\nFrom: Shop <shop@example.org>\n\nHello {{name}}\n');
    assert.equal((await mailer(dir, ['plan', 'add', 'reminder', '--template', 'reminder.txt', '--where', 'month={{month}}', '--every', 'month', '--at', '09:00'], at('2026-02-10T10:00:00+01:00'))).code, 0);
    // The template file is read when the mailing is made: gone, the run says so and makes
    // nothing (exit 1); the next run in the period makes it.
    fs.renameSync(path.join(dir, 'reminder.txt'), path.join(dir, 'reminder.away'));
    const gone = await mailer(dir, ['run', '--json'], at('2026-03-01T09:00:00+01:00'));
    assert.equal(gone.code, 1, gone.stderr);
    assert.match(gone.stderr, /plan reminder: no mailing made for 2026-03: cannot read template .*reminder\.txt: no such file.*the next run tries again/);
    assert.deepEqual([JSON.parse(gone.stdout).plans, JSON.parse(gone.stdout).planErrors.length], [[], 1]);
    fs.renameSync(path.join(dir, 'reminder.away'), path.join(dir, 'reminder.txt'));
    assert.equal((await mailer(dir, ['run'], at('2026-03-01T09:10:00+01:00'))).code, 0);
    assert.deepEqual(to(server), ['ann@example.org']);
    assert.equal((await simpleParser(server.messages[0].raw)).subject, 'Your March reminder');
  } finally {
    await server.close();
  }
});
