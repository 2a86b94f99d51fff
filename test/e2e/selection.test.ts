import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INVITATION, folderWithRows, mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer } from '../support/smtp.js';

const withMembers = folderWithRows;

/** The member ids a dry run would send to, with these selection flags. */
async function wouldSend(dir: string, flags: string[]): Promise<string[]> {
  const r = await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--json', ...flags]);
  assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout).recipients.map((w: { member: string }) => w.member);
}

/** `send --at` takes local time to the minute. */
function localMinute(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const CLUB = [
  ['1', 'Anna', 'anna@example.org', '12,50', '2015', 'Nord'],
  ['2', 'Ben', 'ben@example.org', '30', '2021', 'Süd'],
  ['3', 'Cem', 'cem@example.org', '', '2009', 'Nord'],
  ['4', 'Dora', 'dora@example.org', 'frei', '', 'West'],
  ['10', 'Emil', 'emil@example.org', '8', '2018', 'Nord'],
];
const CLUB_HEADER = ['id', 'name', 'email', 'beitrag', 'mitglied_seit', 'region'];

test('--where < and > on CSV fields and fixed columns: numbers as numbers (12,50 too), else text; empty fields not selected', async () => {
  const dir = await withMembers(CLUB_HEADER, CLUB);
  const rows: [string[], string[]][] = [
    [['--where', 'beitrag>10'], ['1', '2']],
    [['--where', 'beitrag<20'], ['1', '10']],
    [['--where', 'beitrag<12,6'], ['1', '10']],
    [['--where', 'beitrag>12.5'], ['2']],
    [['--where', 'mitglied_seit<2016'], ['1', '3']],
    [['--where', 'mitglied_seit>2016', '--where', 'region=Nord'], ['10']],
    [['--where', 'beitrag>10', '--where', 'mitglied_seit<2020', '--where', 'region~nor'], ['1']],
    // a value that is no number compares as text; fields that are empty are left out
    [['--where', 'beitrag>e'], ['4']],
    [['--where', 'region<P'], ['1', '3', '10']],
    // the fixed columns: id compares as a number (10 > 2), name and email as text
    [['--where', 'id>2'], ['3', '4', '10']],
    [['--where', 'id<3'], ['1', '2']],
    [['--where', 'name<C'], ['1', '2']],
    [['--where', 'email>d'], ['4', '10']],
    [['--where', 'id>1', '--where', 'beitrag<31', '--where', 'name!=Emil'], ['2']],
    // the other ops on both kinds of field
    [['--where', 'beitrag='], ['3']],
    [['--where', 'beitrag!=30', '--where', 'region=Nord'], ['1', '3', '10']],
    [['--where', 'mitglied_seit~20'], ['1', '2', '3', '10']],
    [['--where', 'id=10'], ['10']],
    [['--where', 'email~EXAMPLE.org', '--where', 'name!=Anna'], ['2', '3', '4', '10']],
  ];
  for (const [flags, expected] of rows) assert.deepEqual(await wouldSend(dir, flags), expected, flags.join(' '));

  // The same conditions saved as a segment select the same members, alone and with more --where.
  const saved = await mailer(dir, ['segment', 'save', 'zahler', '--where', 'beitrag>10', '--where', 'mitglied_seit<2020']);
  assert.equal(saved.code, 0, saved.stderr);
  assert.deepEqual(await wouldSend(dir, ['--segment', 'zahler']), ['1']);
  assert.deepEqual(await wouldSend(dir, ['--segment', 'zahler', '--where', 'id>1']), []);
  assert.equal((await mailer(dir, ['segment', 'save', 'neu', '--where', 'mitglied_seit>2016'])).code, 0);
  assert.deepEqual(await wouldSend(dir, ['--segment', 'neu', '--where', 'beitrag<20']), ['10']);

  // A real send takes the same members, and so does a test send.
  const sent = await mailer(dir, ['send', 'invitation.txt', '--segment', 'neu', '--json']);
  assert.equal(sent.code, 0, sent.stderr);
  assert.deepEqual([JSON.parse(sent.stdout).selected, JSON.parse(sent.stdout).sent], [2, 2]);
  const direct = await mailer(dir, ['send', 'invitation.txt', '--where', 'beitrag<20', '--where', 'id>1', '--json']);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(JSON.parse(direct.stdout).sent, 1);
  const db = openDb(dir);
  const byMailing = db.prepare(`SELECT s.mailing_id AS mailing, group_concat(m.key) AS keys FROM sends s JOIN members m ON m.id = s.member_id
    GROUP BY s.mailing_id ORDER BY s.mailing_id`).all();
  db.close();
  assert.deepEqual(byMailing, [{ mailing: 1, keys: '2,10' }, { mailing: 2, keys: '10' }]);
  const testSend = await mailer(dir, ['send', 'invitation.txt', '--test', '--test-to', 'me@example.org', '--where', 'beitrag>10', '--json']);
  assert.equal(testSend.code, 0, testSend.stderr);
  assert.equal(JSON.parse(testSend.stdout).sent, 2);
});

test('a queued mailing goes to the address a member has when it is sent: corrected, removed and suppressed since are honoured', async () => {
  const server = await startSmtpServer();
  try {
    const header = ['id', 'name', 'email'];
    const dir = await withMembers(header, [
      ['1', 'Anna', 'anna@old.example'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org'], ['4', 'Dora', 'dora@example.org'],
    ]);
    const at = localMinute(new Date(Date.now() + 10 * 60_000));
    const scheduled = await mailer(dir, ['send', 'invitation.txt', '--at', at, '--json']);
    assert.equal(scheduled.code, 0, scheduled.stderr);
    assert.equal(JSON.parse(scheduled.stdout).queued, 4);

    // After it was queued: Anna's address is corrected, Ben's removed, Cem's suppressed.
    writeFile(dir, 'fix.csv', membersCsv(header, [['1', 'Anna', 'anna@new.example'], ['2', 'Ben', '']]));
    const fix = await mailer(dir, ['import', 'fix.csv']);
    assert.ok(fix.code <= 1, fix.stderr);
    assert.equal((await mailer(dir, ['suppress', 'add', 'cem@example.org'])).code, 0);

    const run = await mailer(dir, ['run', '--smtp', server.url, '--json'], { MAILER_NOW: new Date(Date.now() + 20 * 60_000).toISOString() });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(server.messages.flatMap((m) => m.to).sort(), ['anna@new.example', 'dora@example.org']);
    const [summary] = JSON.parse(run.stdout).mailings;
    assert.deepEqual([summary.sent, summary.skipped, summary.byReason], [2, 2, { 'no-address': 1, suppressed: 1 }]);

    const db = openDb(dir);
    const sends = db.prepare(`SELECT m.key, s.email, s.status, s.category, s.reason FROM sends s JOIN members m ON m.id = s.member_id ORDER BY m.key`).all();
    db.close();
    assert.deepEqual(sends, [
      { key: '1', email: 'anna@new.example', status: 'sent', category: null, reason: (sends[0] as any).reason },
      { key: '2', email: 'ben@example.org', status: 'skipped', category: 'no-address', reason: 'the member has no e-mail address' },
      { key: '3', email: 'cem@example.org', status: 'skipped', category: 'suppressed', reason: (sends[2] as any).reason },
      { key: '4', email: 'dora@example.org', status: 'sent', category: null, reason: (sends[3] as any).reason },
    ]);
    assert.match((sends[2] as any).reason, /^the address is suppressed: /);
    // The mail's To: is the new address too, and its token is bound to it.
    assert.match(server.messages.find((m) => m.to.includes('anna@new.example'))!.raw.toString(), /^To: Anna <anna@new\.example>\r$/m);
  } finally {
    await server.close();
  }
});

test('a run already under way mails the address as it is when each send is claimed', async () => {
  const server = await startSmtpServer();
  try {
    const header = ['id', 'name', 'email'];
    const dir = await withMembers(header, [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@old.example'], ['3', 'Cem', 'cem@example.org']]);
    // The first run stops after one mail (--limit); the rest of it is queued with the old addresses.
    const first = await mailer(dir, ['send', 'invitation.txt', '--limit', '1', '--smtp', server.url, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const mailing = JSON.parse(first.stdout).mailing;
    writeFile(dir, 'fix.csv', membersCsv(header, [['2', 'Ben', 'ben@new.example'], ['3', 'Cem', 'not-an-address']]));
    assert.ok((await mailer(dir, ['import', 'fix.csv'])).code <= 1);
    const rest = await mailer(dir, ['send', '--resume', String(mailing), '--smtp', server.url, '--json']);
    assert.equal(rest.code, 0, rest.stderr);
    assert.deepEqual(server.messages.flatMap((m) => m.to), ['anna@example.org', 'ben@new.example']);
    assert.deepEqual(JSON.parse(rest.stdout).byReason, { 'invalid-address': 1 });
    const log = JSON.parse((await mailer(dir, ['log', '--mailing', String(mailing), '--status', 'skipped', '--json'])).stdout);
    assert.match(JSON.stringify(log), /the address not-an-address is not a valid e-mail address/);
  } finally {
    await server.close();
  }
});

test('a mail over maxMessageBytes is skipped as too-large (measured as encoded), listed, and the run exits 1', async () => {
  const server = await startSmtpServer();
  try {
    const header = ['id', 'name', 'email', 'notiz'];
    const dir = await withMembers(header, [
      ['1', 'Anna', 'anna@example.org', 'kurz'],
      // far over the limit as text already
      ['2', 'Ben', 'ben@example.org', 'x'.repeat(6000)],
      // 3,000 bytes of text, under the limit; base64 makes them 4,000: over only as encoded
      ['3', 'Cem', 'cem@example.org', 'ü'.repeat(1500)],
    ]);
    writeFile(dir, 'mailer.json', JSON.stringify({ maxMessageBytes: 4000 }));
    writeFile(dir, 'note.txt', 'Subject: Notiz\nFrom: V <v@verein.example>\n\nHallo {{name}}: {{notiz}}\n');

    const dry = await mailer(dir, ['send', 'note.txt', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.deepEqual(planned.recipients.map((r: any) => r.member), ['1']);
    assert.deepEqual(planned.skippedMembers.map((s: any) => [s.member, s.category]), [['2', 'too-large'], ['3', 'too-large']]);

    const r = await mailer(dir, ['send', 'note.txt', '--smtp', server.url]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(server.messages.flatMap((m) => m.to), ['anna@example.org']);
    assert.match(r.stdout, /too-large 2/);
    assert.match(r.stdout, /ben@example\.org\s*│?\s*skipped\s*│?\s*the message is at least \d+ bytes encoded, over maxMessageBytes 4000/);
    assert.match(r.stdout, /cem@example\.org\s*│?\s*skipped\s*│?\s*the message is \d+ bytes encoded, over maxMessageBytes 4000/);

    // Scheduled and sent by `mailer run`: the same rule, exit 1, the members named.
    const later = localMinute(new Date(Date.now() + 10 * 60_000));
    assert.equal((await mailer(dir, ['send', 'note.txt', '--member', '2', '--member', '1', '--at', later])).code, 0);
    const run = await mailer(dir, ['run', '--smtp', server.url], { MAILER_NOW: new Date(Date.now() + 20 * 60_000).toISOString() });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /1 skipped as too large: member 2 \(send \d+\)/);
    assert.equal(server.messages.length, 2);

    // Raised in the settings, the same mails go out.
    writeFile(dir, 'mailer.json', JSON.stringify({ maxMessageBytes: 100_000 }));
    const raised = await mailer(dir, ['send', 'note.txt', '--smtp', server.url, '--json']);
    assert.equal(raised.code, 0, raised.stderr);
    assert.equal(JSON.parse(raised.stdout).sent, 3);
  } finally {
    await server.close();
  }
});

test('the dry run measures the Reply-To the send puts in: the template\'s, else (rendered empty) the replyTo setting', async () => {
  const server = await startSmtpServer();
  try {
    const dir = await withMembers(['id', 'name', 'email', 'kontakt'], [
      ['1', 'Anna', 'anna@example.org', 'kasse@verein.example'],
      ['2', 'Ben', 'ben@example.org', ''],
    ]);
    // A long one, so that the mail with it and the mail without it are far apart in size.
    const replyTo = `${'Vorstand und Geschaeftsstelle '.repeat(15).trim()} <vorstand@verein.example>`;
    const settings = (maxMessageBytes: number) => writeFile(dir, 'mailer.json', JSON.stringify({ replyTo, maxMessageBytes }));
    writeFile(dir, 'kontakt.txt', 'Subject: Hallo {{name}}\nFrom: V <v@verein.example>\nReply-To: {{kontakt}}\n\nHallo {{name}}\n');
    const replyToOf = (raw: Buffer) => /^Reply-To: (.*)$/m.exec(raw.toString().replace(/\r\n[ \t]+/g, ' '))?.[1] ?? null;

    settings(100_000);
    const sent = await mailer(dir, ['send', 'kontakt.txt', '--allow-empty', '--smtp', server.url]);
    assert.equal(sent.code, 0, sent.stderr);
    const anna = server.messages.find((m) => m.to.includes('anna@example.org'))!;
    const ben = server.messages.find((m) => m.to.includes('ben@example.org'))!;
    assert.equal(replyToOf(anna.raw), 'kasse@verein.example');
    assert.match(replyToOf(ben.raw) ?? 'none', /^Vorstand und .* <vorstand@verein\.example>$/);

    // Under Ben's size by less than the setting's Reply-To takes: only with it is Ben's mail over.
    const limit = ben.raw.length - 200;
    assert.ok(anna.raw.length < limit);
    settings(limit);
    const dry = await mailer(dir, ['send', 'kontakt.txt', '--allow-empty', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout);
    assert.deepEqual(planned.recipients.map((r: any) => r.member), ['1']);
    assert.deepEqual(planned.skippedMembers.map((s: any) => [s.member, s.category]), [['2', 'too-large']]);
    const before = server.messages.length;
    const run = await mailer(dir, ['send', 'kontakt.txt', '--allow-empty', '--smtp', server.url, '--json']);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(server.messages.slice(before).flatMap((m) => m.to), ['anna@example.org']);
    assert.deepEqual(JSON.parse(run.stdout).byReason, { 'too-large': 1 });
  } finally {
    await server.close();
  }
});

test('a Mustache partial {{> file}} is refused before anything is sent, naming it and the template', async () => {
  const dir = await withMembers(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org']]);
  writeFile(dir, 'kopf.txt', 'Subject: Kopf\n\nKopfzeile\n');
  writeFile(dir, 'partial.txt', 'Subject: Hallo {{name}}\nFrom: V <v@verein.example>\n\n{{> kopf}}\nHallo {{name}}\n');
  for (const args of [['send', 'partial.txt'], ['send', 'partial.txt', '--dry-run'], ['send', 'partial.txt', '--test', '--test-to', 'me@example.org']]) {
    const r = await mailer(dir, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /partial\.txt: the placeholder \{\{> kopf\}\} includes another template/);
  }
  writeFile(dir, 'plain.txt', 'Subject: Hallo\nFrom: V <v@verein.example>\n\nHallo\n');
  writeFile(dir, 'plain.html', '<p>{{#name}}{{>fuss}}{{/name}}</p>');
  const html = await mailer(dir, ['send', 'plain.txt']);
  assert.equal(html.code, 2, html.stderr);
  assert.match(html.stderr, /plain\.html: the placeholder \{\{> fuss\}\}/);
  const db = openDb(dir);
  assert.equal((db.prepare('SELECT count(*) AS n FROM mailings').get() as any).n, 0);
  db.close();
});
