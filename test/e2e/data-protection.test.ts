import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { mailer, membersCsv, openDb, startServe, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer } from '../support/smtp.js';
import { dsnFor } from '../support/bounces.js';

const PUBLIC = 'https://verein.example/m';
const ONE_CLICK = { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' };
const DAY = 86_400_000;

// Values distinctive enough that finding one in the database files can only be the member's.
const NAME = 'Annegret Quastenflosser';
const OLD = 'annegret.quasten@example.org';
const NEW = 'a.quastenflosser@beispiel.example';
const CITY = 'Wolkenkuckucksheim';
const ORDER = 'Strandkorb-Bestellung-QX7731';

const NEWS = `Subject: Neuigkeiten für {{name}}
From: Verein e.V. <news@verein.example>
Type: newsletter

Hallo {{name}} in {{ort}},
Ihr Link: https://vote.example/register/{{token}}
`;
const ORDER_MAIL = `Subject: Ihre Bestellung {{order.number}}
From: Shop <shop@verein.example>
Type: bestellung

Hallo {{name}}, Ihre Bestellung {{order.number}} ist da.
`;


/** Every file of the database (mailer.db, -wal, -shm) and which of the needles its bytes hold. */
function foundIn(dir: string, needles: string[]): string[] {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('mailer.db'));
  assert.ok(files.includes('mailer.db'));
  const found: string[] = [];
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(dir, f));
    for (const n of needles) {
      // As UTF-8, and as SQLite may hold it in an index: the same bytes; also lower-cased.
      for (const form of new Set([n, n.toLowerCase()])) if (bytes.includes(Buffer.from(form, 'utf8'))) found.push(`${f}: ${form}`);
    }
  }
  return found;
}

test('forget after a send, a failure, a bounce, an open and an unsubscribe: log, show, why, token verify and export say so, and no byte of it is left in mailer.db*, while serve holds the database open', async () => {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: PUBLIC }));
  const csv = (email: string) => membersCsv(['id', 'name', 'email', 'ort'], [['1', NAME, email, CITY], ['2', 'Ben', 'ben@example.org', 'Berlin']]);
  writeFile(dir, 'members.csv', csv(OLD));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'news.txt', NEWS);
  writeFile(dir, 'news.html', '<html><body><p>Hallo {{name}}</p></body></html>\n');
  writeFile(dir, 'bestellung.txt', ORDER_MAIL);
  writeFile(dir, 'order.json', JSON.stringify({ order: { number: ORDER } }));
  // The first address is refused, the server quoting it: the reply is stored with the attempt.
  const smtp = await startSmtpServer({ reject: { [OLD]: `550 5.1.1 <${OLD}>: Recipient address rejected: User unknown` } });
  let serve: Awaited<ReturnType<typeof startServe>> | null = null;
  try {
    assert.equal((await mailer(dir, ['send', 'news.txt', '--smtp', smtp.url, '-q'])).code, 1);
    // The member gives a new address: the old one stays in the history.
    writeFile(dir, 'members.csv', csv(NEW));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    assert.equal((await mailer(dir, ['send', 'news.txt', '--smtp', smtp.url, '--member', '1', '-q'])).code, 0);
    const sys = await mailer(dir, ['send', 'bestellung.txt', '--to', NEW, '--data', 'order.json', '--smtp', smtp.url, '--json']);
    assert.equal(sys.code, 0, sys.stderr);
    const sends = JSON.parse((await mailer(dir, ['log', '--member', '1', '--json'])).stdout) as any[];
    assert.equal(sends.length, 3);
    const newsSend = sends.find((s) => s.type === 'newsletter' && s.status === 'sent');
    const mail = smtp.messages.find((m) => m.to[0] === NEW && m.raw.toString().includes('Neuigkeiten'))!;
    const parsed = await simpleParser(mail.raw);
    const token = /register\/([A-Za-z0-9_-]+)/.exec(parsed.text!)![1];
    const pixel = new RegExp(`${PUBLIC}/o/([A-Za-z0-9_-]+)\\.gif`).exec(parsed.html as string)![1];
    const unsubscribe = new RegExp(`^List-Unsubscribe: <${PUBLIC}/u/([A-Za-z0-9_-]+)>`, 'm').exec(mail.raw.toString())![1];

    serve = await startServe(dir);
    assert.equal((await fetch(`${serve.base}/o/${pixel}.gif`)).status, 200);
    assert.equal((await fetch(`${serve.base}/u/${unsubscribe}`, ONE_CLICK)).status, 200);
    writeFile(dir, 'bounce.eml', dsnFor(NEW, newsSend.id));
    assert.equal((await mailer(dir, ['bounces', 'import', 'bounce.eml'])).code, 0);

    const statsBefore = JSON.parse((await mailer(dir, ['stats', '--json'])).stdout);
    assert.equal(statsBefore.find((s: any) => s.type === 'newsletter' && s.mailing === newsSend.mailing).opened, 1);
    const sendsBefore = JSON.parse((await mailer(dir, ['log', '--member', '1', '--json'])).stdout) as any[];
    const needles = [NAME, OLD, NEW, CITY, ORDER, token];
    // The check can fail: before forget, every one of them is in the files.
    const before = foundIn(dir, needles);
    for (const n of needles) assert.ok(before.some((f) => f.endsWith(n) || f.endsWith(n.toLowerCase())), `${n} is in the database before forget`);

    const dry = await mailer(dir, ['forget', '1', '--reason', 'Antrag vom 30.11.', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(JSON.parse(dry.stdout), { member: '1', addresses: 2, sends: 3, messages: 2, tokens: 3, events: 2, files: 0, dryRun: true });
    assert.equal(foundIn(dir, needles).length, before.length, 'a dry run changes nothing');

    const forget = await mailer(dir, ['forget', '1', '--reason', 'Antrag vom 30.11.', '--json']);
    assert.equal(forget.code, 0, forget.stderr);
    assert.deepEqual(JSON.parse(forget.stdout), { member: '1', addresses: 2, sends: 3, messages: 2, tokens: 3, events: 2, files: 0, dryRun: false });
    assert.doesNotMatch(forget.stderr, /warning/, forget.stderr);

    // serve is still running, with the database open: nothing is in any file, WAL included.
    assert.ok(!serve.exited);
    assert.deepEqual(foundIn(dir, needles), []);

    // What stays: each send's status, times, category and mailing.
    const after = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
    const kept = after.filter((s) => sendsBefore.some((b) => b.id === s.id));
    assert.deepEqual(kept.map((s) => [s.id, s.status, s.category, s.mailing, s.createdAt, s.email, s.reason]),
      sendsBefore.map((s) => [s.id, s.status, s.category, s.mailing, s.createdAt, null, null]));
    assert.equal(sendsBefore.find((s) => s.id === newsSend.id).status, 'bounced');
    assert.deepEqual(JSON.parse((await mailer(dir, ['stats', '--json'])).stdout), statsBefore, 'stats count the same');

    const show = await mailer(dir, ['show', String(newsSend.id)]);
    assert.match(show.stdout, /member erased on \d{4}-\d\d-\d\d \(Antrag vom 30\.11\.\)/);
    assert.match(show.stdout, /no message stored: the member was erased/);
    const raw = await mailer(dir, ['show', String(newsSend.id), '--raw']);
    assert.equal(raw.code, 2);
    assert.match(raw.stderr, /its member was erased/);
    const why = await mailer(dir, ['why', '1']);
    assert.equal(why.code, 0, why.stderr);
    assert.match(why.stdout, new RegExp(`erased on ${new Date().toISOString().slice(0, 10)} \\(Antrag vom 30\\.11\\.\\)`));
    assert.match((await mailer(dir, ['why', NEW])).stdout, /erased on/);
    const verify = await mailer(dir, ['token', 'verify', token]);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, /^unknown/);
    const exported = await mailer(dir, ['export', '1']);
    assert.equal(exported.code, 2);
    assert.match(exported.stderr, /was erased on/);
    // The links of the erased member's mail record nothing any more.
    assert.equal((await fetch(`${serve.base}/o/${pixel}.gif`)).status, 200);
    assert.match(await (await fetch(`${serve.base}/u/${unsubscribe}`)).text(), /<html/);
    const db = openDb(dir);
    assert.equal((db.prepare('SELECT count(*) AS n FROM events').get() as any).n, 0);
    db.close();

    // The suppression (hard bounce) holds under the keyed hash; the address is not shown.
    const listed = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout) as any[];
    assert.ok(listed.length >= 2 && listed.every((s) => s.email.startsWith('erased:')), JSON.stringify(listed));

    // The same file again: the member is flagged, not made anew.
    const again = await mailer(dir, ['import', 'members.csv', '--json']);
    assert.equal(again.code, 1);
    assert.deepEqual(JSON.parse(again.stdout).rejected, [{ line: 2, reason: 'forgotten' }]);
    assert.deepEqual(foundIn(dir, needles), []);
    const include = await mailer(dir, ['import', 'members.csv', '--include-forgotten', '--json']);
    assert.equal(include.code, 0, include.stderr);
    assert.equal(JSON.parse(include.stdout).inserted, 1);
    // Back in the list, and still suppressed: the bounce of before holds.
    const next = await mailer(dir, ['send', 'news.txt', '--smtp', smtp.url, '--member', '1', '--json']);
    assert.equal(JSON.parse(next.stdout).skipped, 1, next.stdout);
    assert.match(JSON.parse((await mailer(dir, ['log', '--member', '1', '--limit', '1', '--json'])).stdout)[0].reason, /suppressed/);
    // Of a member still erased, the suppression is found by the address too (Ben is not erased: a plain one).
    assert.equal((await mailer(dir, ['forget', '1', '--reason', 'second request'])).code, 0);
    const removed = await mailer(dir, ['suppress', 'remove', NEW]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.doesNotMatch(removed.stdout + removed.stderr, /erased:/);
  } finally {
    serve?.child.kill();
    await smtp.close();
  }
});

test('prune: sends 100 and 10 days old; messages older than retention.messages (or a template\'s Retention:) go, counts stay; mailer run prunes the log', async () => {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'news.txt', 'Subject: News\nFrom: V <v@verein.example>\n\nHallo {{name}}\n');
  writeFile(dir, 'befund.txt', 'Subject: Befund\nFrom: Praxis <p@praxis.example>\nRetention: 7d\n\nHallo {{name}}\n');
  const at = (daysAgo: number) => ({ MAILER_NOW: new Date(Date.now() - daysAgo * DAY).toISOString() });
  assert.equal((await mailer(dir, ['send', 'news.txt', '-q'], at(100))).code, 0);
  assert.equal((await mailer(dir, ['send', 'news.txt', '-q'], at(10))).code, 0);
  assert.equal((await mailer(dir, ['send', 'befund.txt', '-q'], at(10))).code, 0);
  const r = (await mailer(dir, ['send', 'befund.txt', '-q', '--dry-run']));
  assert.equal(r.code, 0);
  const befund = fs.readFileSync(path.join(dir, 'outbox', '5.eml'), 'utf8');
  assert.doesNotMatch(befund, /^Retention:/m, 'Retention: is an instruction to mailer, not a header');
  const stats = async () => JSON.parse((await mailer(dir, ['stats', '--json'])).stdout);
  const mailings = async () => JSON.parse((await mailer(dir, ['mailings', '--json'])).stdout).map((m: any) => [m.id, m.sent, m.selected]);
  const statsBefore = await stats();
  const mailingsBefore = await mailings();

  writeFile(dir, 'mailer.json', JSON.stringify({ retention: { messages: '90d' } }));
  const dry = await mailer(dir, ['prune', '--dry-run', '--json']);
  assert.deepEqual(JSON.parse(dry.stdout), { messages: 4, sends: 0, mailings: 2, dryRun: true });
  const stored = () => {
    const db = openDb(dir);
    const ids = (db.prepare('SELECT send_id FROM messages ORDER BY send_id').all() as any[]).map((x) => x.send_id);
    db.close();
    return ids;
  };
  assert.deepEqual(stored(), [1, 2, 3, 4, 5, 6]);
  const pruned = await mailer(dir, ['prune', '--json']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.deepEqual(JSON.parse(pruned.stdout), { messages: 4, sends: 0, mailings: 2, dryRun: false });
  // Exactly the 100-day-old news and the 10-day-old Befund (Retention: 7d) are gone.
  assert.deepEqual(stored(), [3, 4]);
  const old = await mailer(dir, ['show', '1']);
  assert.match(old.stdout, new RegExp(`content was removed on ${new Date().toISOString().slice(0, 10)}`));
  assert.match((await mailer(dir, ['show', '1', '--json'])).stdout, /"contentRemovedAt": "\d{4}-/);
  assert.match((await mailer(dir, ['show', '3'])).stdout, /the message as it left/);
  assert.equal((await mailer(dir, ['show', '1', '--raw'])).code, 2);
  assert.deepEqual(await stats(), statsBefore);
  assert.deepEqual(JSON.parse((await mailer(dir, ['prune', '--json'])).stdout).messages, 0, 'a second prune finds nothing');

  // The log: mailer run prunes when retention is set; the rows go, the counts stay.
  writeFile(dir, 'mailer.json', JSON.stringify({ retention: { messages: '90d', log: '30d' } }));
  const run = await mailer(dir, ['run', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout).pruned, { messages: 0, sends: 2 });
  const log = JSON.parse((await mailer(dir, ['log', '--json'])).stdout).map((s: any) => s.id).sort();
  assert.deepEqual(log, [3, 4, 5, 6]);
  assert.deepEqual(await stats(), statsBefore, 'stats: the same counts after the rows were pruned');
  assert.deepEqual(await mailings(), mailingsBefore);

  writeFile(dir, 'mailer.json', JSON.stringify({ retention: { messages: 'forever' } }));
  const bad = await mailer(dir, ['prune']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /retention\.messages" must be a period such as "90d"/);
});

test('export: one JSON document with everything, the file 0600 under umask 022; forget removes the outbox files of the member\'s mails', async () => {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email', 'ort'], [['1', 'Anna', 'anna@example.org', 'Halle'], ['2', 'Ben', 'ben@example.org', 'Köln']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'news.txt', 'Subject: News\nFrom: V <v@verein.example>\n\nHallo {{name}} in {{ort}}\n');
  assert.equal((await mailer(dir, ['send', 'news.txt', '-q'])).code, 0);
  const previous = process.umask(0o022);
  try {
    const r = await mailer(dir, ['export', 'anna@example.org', '--out', 'anna.json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.statSync(path.join(dir, 'anna.json')).mode & 0o777, 0o600);
    // A file that was there, readable by all, is made anew.
    writeFile(dir, 'ben.json', 'old');
    fs.chmodSync(path.join(dir, 'ben.json'), 0o644);
    assert.equal((await mailer(dir, ['export', '2', '--out', 'ben.json'])).code, 0);
    assert.equal(fs.statSync(path.join(dir, 'ben.json')).mode & 0o777, 0o600);
    for (const f of fs.readdirSync(dir).filter((x) => x.startsWith('mailer.db'))) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  } finally {
    process.umask(previous);
  }
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'anna.json'), 'utf8'));
  assert.deepEqual(doc.member, { id: '1', name: 'Anna', email: 'anna@example.org', problem: null, fields: { id: '1', ort: 'Halle' } });
  assert.equal(doc.sends.length, 1);
  assert.match(doc.sends[0].message, /Hallo Anna in Halle/);
  assert.equal(doc.sends[0].attempts[0].outcome, 'sent');
  assert.deepEqual(JSON.parse((await mailer(dir, ['export', '1'])).stdout).member, doc.member, 'without --out, on stdout');

  assert.ok(fs.existsSync(path.join(dir, 'outbox', '1.eml')));
  const f = await mailer(dir, ['forget', 'anna@example.org', '--reason', 'asked by phone']);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /member 1: erased .*1 outbox file/);
  assert.ok(!fs.existsSync(path.join(dir, 'outbox', '1.eml')), "the member's outbox file is gone");
  assert.ok(fs.existsSync(path.join(dir, 'outbox', '2.eml')), "another member's stays");
  const twice = await mailer(dir, ['forget', '1', '--reason', 'again']);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /was erased on .* \(asked by phone\)/);
});
