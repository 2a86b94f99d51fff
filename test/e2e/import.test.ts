import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EXAMPLES, mailer, openDb, startMailer, tempDir, writeFile } from '../support/cli.js';

test('imports the Windows-1252 example list: umlauts intact, member without address flagged', async () => {
  const dir = tempDir();
  const r = await mailer(dir, ['import', path.join(EXAMPLES, 'members.csv'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result, { read: 12, inserted: 12, updated: 0, unchanged: 0, withoutEmail: 1, invalidEmail: 0, rejected: [] });
  const db = openDb(dir);
  const anna = db.prepare(`SELECT * FROM members WHERE key = '1001'`).get() as any;
  assert.equal(anna.name, 'Anna Müller');
  assert.equal(JSON.parse(anna.fields).region, 'Nord');
  assert.equal(JSON.parse(anna.fields).erinnerungsmonat, 'April');
  const brigitte = db.prepare(`SELECT * FROM members WHERE key = '1004'`).get() as any;
  assert.equal(brigitte.email, null);
  assert.equal(brigitte.email_problem, 'no-address');
  // a first import builds the e-mail index after the rows: it is there, and finds by address
  const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM members WHERE email = 'anna.mueller@example.org'`).all() as any[];
  assert.match(plan.map((p) => p.detail).join(' '), /USING (COVERING )?INDEX members_email/);
  // a first import writes under a rollback journal, and leaves the database in WAL mode again
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
});

test('a first import while another connection has the database open keeps the WAL, and does not wait for it', async () => {
  const dir = tempDir();
  assert.equal((await mailer(dir, ['mailings'])).code, 0, 'creates the database');
  const reader = new Database(path.join(dir, 'mailer.db'));
  try {
    assert.equal((reader.prepare('SELECT count(*) AS n FROM members').get() as any).n, 0);
    const started = Date.now();
    const r = await mailer(dir, ['import', path.join(EXAMPLES, 'members.csv'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    // Leaving the WAL needs the database alone; the import must see at once that it is not,
    // not wait out mailer's 5 s busy timeout before it falls back.
    assert.ok(Date.now() - started < 4000, `the import took ${Date.now() - started} ms`);
    assert.equal(reader.pragma('journal_mode', { simple: true }), 'wal');
    assert.ok(fs.statSync(path.join(dir, 'mailer.db-wal')).size > 0, 'the rows went through the WAL');
    assert.equal((reader.prepare('SELECT count(*) AS n FROM members').get() as any).n, 12);
  } finally {
    reader.close();
  }
});

/** A database in `dir`, and a connection of the test's own to hold it with. */
async function heldDatabase(): Promise<{ dir: string; holder: Database.Database }> {
  const dir = tempDir();
  assert.equal((await mailer(dir, ['mailings'])).code, 0, 'creates the database');
  return { dir, holder: new Database(path.join(dir, 'mailer.db')) };
}

test('a command started during a first import waits for it, and then runs', async () => {
  const { dir, holder } = await heldDatabase();
  try {
    // What a first import does before its page cache spills: a rollback journal, the write
    // lock reserved. SQLite refuses another connection's switch to WAL at once then.
    assert.equal(holder.pragma('journal_mode = DELETE', { simple: true }), 'delete');
    holder.exec('BEGIN IMMEDIATE');
    holder.exec(`INSERT INTO members (key, fields, created_at, updated_at) VALUES ('1', '{}', 0, 0)`);
    const log = mailer(dir, ['log', '--member', '1']);
    await new Promise((resolve) => setTimeout(resolve, 800));
    holder.exec('COMMIT');
    holder.pragma('journal_mode = WAL');
    const r = await log;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /no sends match/);
  } finally {
    holder.close();
  }
});

test('commands that find the database held for over 5 s say so and what to do (exit 4), and end', { timeout: 30_000 }, async () => {
  // A first import's hold once its cache spills: a rollback journal and the exclusive lock.
  const first = await heldDatabase();
  // Any write transaction in WAL mode: an import waits for it at BEGIN.
  const other = await heldDatabase();
  try {
    assert.equal(first.holder.pragma('journal_mode = DELETE', { simple: true }), 'delete');
    first.holder.exec('BEGIN EXCLUSIVE');
    other.holder.exec('BEGIN IMMEDIATE');
    const [log, imported] = await Promise.all([
      mailer(first.dir, ['log']),
      mailer(other.dir, ['import', path.join(EXAMPLES, 'members.csv')]),
    ]);
    for (const r of [log, imported]) {
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /mailer\.db is busy: another mailer command \(an import, say\) has been writing it for more than 5 s/);
      assert.match(r.stderr, /try again when that command has finished/);
    }
    first.holder.exec('ROLLBACK');
    other.holder.exec('ROLLBACK');
    assert.equal((other.holder.prepare('SELECT count(*) AS n FROM members').get() as any).n, 0, 'the import changed nothing');
  } finally {
    first.holder.close();
    other.holder.close();
  }
});

test('a second import of the same file changes nothing; a changed address keeps the old one in history', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', 'id,name,email,region\n1,Anna,anna@example.org,Nord\n2,Ben,ben@example.org,Süd\n');
  assert.equal((await mailer(dir, ['import', file])).code, 0);
  const again = JSON.parse((await mailer(dir, ['import', file, '--json'])).stdout);
  assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, 2]);
  writeFile(dir, 'm.csv', 'id,name,email\n1,Anna,anna.neu@example.org\n3,Cem,cem@example.org\n');
  const changed = JSON.parse((await mailer(dir, ['import', file, '--json'])).stdout);
  assert.deepEqual([changed.inserted, changed.updated, changed.unchanged], [1, 1, 0]);
  const why = JSON.parse((await mailer(dir, ['why', '1', '--json'])).stdout);
  assert.deepEqual(why.addresses.map((a: any) => [a.email, a.replacedAt !== null]), [['anna@example.org', true], ['anna.neu@example.org', false]]);
  const db = openDb(dir);
  // members not in the file are untouched, and a column missing from the file keeps its value
  const ben = db.prepare(`SELECT email FROM members WHERE key = '2'`).get() as any;
  assert.equal(ben.email, 'ben@example.org');
  const anna = db.prepare(`SELECT fields FROM members WHERE key = '1'`).get() as any;
  assert.equal(JSON.parse(anna.fields).region, 'Nord');
  db.close();
});

test('a member id twice in one file: the later row wins, and the earlier address goes to the history', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', 'id;name;email;region\n1;Anna;anna@example.org;Nord\n2;Ben;ben@example.org;Süd\n1;Anna B.;anna.b@example.org;West\n');
  const r = await mailer(dir, ['import', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { read: 3, inserted: 2, updated: 1, unchanged: 0, withoutEmail: 0, invalidEmail: 0, rejected: [] });
  const db = openDb(dir);
  assert.deepEqual(db.prepare(`SELECT key, name, email, json_extract(fields, '$.region') AS region FROM members ORDER BY id`).all(), [
    { key: '1', name: 'Anna B.', email: 'anna.b@example.org', region: 'West' },
    { key: '2', name: 'Ben', email: 'ben@example.org', region: 'Süd' },
  ]);
  assert.deepEqual(db.prepare('SELECT email FROM addresses').all(), [{ email: 'anna@example.org' }]);
  db.close();
});

test('rows that cannot be members are rejected with their line; all others are imported (exit 1)', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', [
    'id;name;email;region',
    '1;Anna;anna@example.org;Nord',
    '2;Ben;ben@example.org',            // line 3: too few fields
    ';Nobody;nobody@example.org;Ost',   // line 4: no key
    '5;"Eva;eva@example.org;West',     // line 5: quote never closed… swallows the rest
  ].join('\n') + '\n');
  const r = await mailer(dir, ['import', file, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.inserted, 1);
  const lines = result.rejected.map((x: any) => x.line);
  assert.ok(lines.includes(3), JSON.stringify(result.rejected));
  assert.ok(lines.includes(4), JSON.stringify(result.rejected));
  assert.match(result.rejected.find((x: any) => x.line === 3).reason, /3 fields, but the header has 4/);
  assert.match(result.rejected.find((x: any) => x.line === 4).reason, /no member id/);
  assert.ok(result.rejected.some((x: any) => x.line >= 5 && /quote/.test(x.reason)), `the unclosed quote is reported: ${JSON.stringify(result.rejected)}`);
  const human = await mailer(dir, ['import', file]);
  assert.match(human.stdout, /rejected .*m\.csv:3: 3 fields/);
});

test('an invalid address is imported and flagged; the e-mail is the key when there is no id column', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', 'E-Mail\tName\nanna@example.org\tAnna\nnot-an-address\tBen\n');
  const r = await mailer(dir, ['import', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.inserted, 2);
  assert.equal(result.invalidEmail, 1);
  const db = openDb(dir);
  const ben = db.prepare(`SELECT key, email_problem FROM members WHERE name = 'Ben'`).get() as any;
  assert.deepEqual(ben, { key: 'not-an-address', email_problem: 'invalid-address' });
  db.close();
});

test('a file that cannot be read changes nothing (exit 2) and says what to do', async () => {
  const dir = tempDir();
  const missing = await mailer(dir, ['import', 'nope.csv']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.csv: no such file/);
  assert.doesNotMatch(missing.stderr, /at .*\.js:\d+/, 'no stack trace');

  const noEmail = writeFile(dir, 'x.csv', 'id;name\n1;Anna\n');
  const r = await mailer(dir, ['import', noEmail]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no e-mail column/);
  assert.match(r.stderr, /--email-column/);

  // valid UTF-8 for the first 64 KiB, then a Windows-1252 byte: the whole import is rolled back
  const good = 'id;name;email\n' + Array.from({ length: 3000 }, (_, i) => `${i};Name ${i} Müller;m${i}@example.org`).join('\n') + '\n';
  const mixed = Buffer.concat([Buffer.from(good, 'utf8'), Buffer.from('9999;J\xfcrgen;j@example.org\n', 'latin1')]);
  const mixedFile = writeFile(dir, 'mixed.csv', mixed);
  const m = await mailer(dir, ['import', mixedFile]);
  assert.equal(m.code, 2, m.stderr);
  assert.match(m.stderr, /not valid UTF-8/);
  assert.match(m.stderr, /--encoding windows-1252/);
  const db = openDb(dir);
  assert.equal((db.prepare('SELECT count(*) AS n FROM members').get() as any).n, 0);
  assert.ok(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'members_email'`).get(),
    'the first import dropped the e-mail index to build it at the end; the rollback brought it back');
  db.close();

  // Plain ASCII for the first 64 KiB, then Windows-1252: detected on the way, not refused.
  const ascii = 'id;name;email\n' + Array.from({ length: 3000 }, (_, i) => `a${i};Name ${i};a${i}@example.org`).join('\n') + '\n';
  const late = writeFile(dir, 'late.csv', Buffer.concat([Buffer.from(ascii, 'utf8'), Buffer.from('a9999;J\xfcrgen;j@example.org\n', 'latin1')]));
  const lateResult = await mailer(dir, ['import', late, '--json']);
  assert.equal(lateResult.code, 0, lateResult.stderr);
  assert.equal(JSON.parse(lateResult.stdout).inserted, 3001);
  const juergen = openDb(dir);
  assert.equal((juergen.prepare(`SELECT name FROM members WHERE key = 'a9999'`).get() as any).name, 'Jürgen');
  juergen.close();

  const forced = await mailer(dir, ['import', mixedFile, '--encoding', 'windows-1252', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(JSON.parse(forced.stdout).inserted, 3001);
  assert.equal((await mailer(dir, ['import', mixedFile, '--encoding', 'windows-1252', '--json'])).code, 0);
});

test('--key, --email-column and --name-column name differing headers', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', 'Nr;Vorname;Adresse\n7;Anna;anna@example.org\n');
  const r = await mailer(dir, ['import', file, '--key', 'Nr', '--email-column', 'Adresse', '--name-column', 'Vorname', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const db = openDb(dir);
  assert.deepEqual(db.prepare('SELECT key, name, email FROM members').get(), { key: '7', name: 'Anna', email: 'anna@example.org' });
  db.close();
  const other = writeFile(dir, 'other.csv', 'Nr;Vorname;Adresse\n7;Anita;anita@example.org\n8;Bert;bert@example.org\n');
  const bad = await mailer(dir, ['import', other, '--key', 'Mitgliedsnummer', '--email-column', 'Adresse']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no column "Mitgliedsnummer"/);
  assert.ok(fs.existsSync(path.join(dir, 'mailer.db')));
  const after = openDb(dir);
  assert.deepEqual(after.prepare('SELECT key, name, email FROM members').all(), [{ key: '7', name: 'Anna', email: 'anna@example.org' }],
    'a refused import changed nothing');
  after.close();
});

/**
 * Starts an import of 300,000 rows and sends `signal` once rows are being written (the
 * database or its write-ahead log grows), long before the commit; then checks nothing was changed and the next
 * import brings in everything.
 */
async function interruptImport(signal: NodeJS.Signals): Promise<void> {
  const dir = tempDir();
  const rows = 300_000;
  const lines = ['id;name;email'];
  for (let i = 0; i < rows; i++) lines.push(`${i};Name ${i};m${(i * 7919) % rows}.${i}@example.org`);
  const file = writeFile(dir, 'big.csv', lines.join('\n') + '\n');
  assert.equal((await mailer(dir, ['mailings'])).code, 0, 'creates the database');
  const written = () => ['mailer.db', 'mailer.db-wal'].reduce((sum, name) => sum + (fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.size ?? 0), 0);
  const before = written();
  const run = startMailer(dir, ['import', file]);
  const deadline = Date.now() + 20_000;
  while (written() - before < 2_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(Date.now() < deadline, 'the import never started writing rows');
  run.child.kill(signal);
  const stopped = await run.done;
  assert.notEqual(stopped.code, 0, `the import was stopped by ${signal} before it finished`);

  // Read-write, as the next mailer command opens it: a first import writes under a rollback
  // journal, and the hot journal it leaves is rolled back by the next connection that writes.
  const db = new Database(path.join(dir, 'mailer.db'));
  assert.equal((db.prepare('SELECT count(*) AS n FROM members').get() as any).n, 0);
  assert.ok(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'members_email'`).get(), 'the e-mail index is there');
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  db.close();

  const again = await mailer(dir, ['import', file, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).inserted, rows);
}

test('an import killed half-way changes nothing, and the next one imports everything', () => interruptImport('SIGKILL'));

test('Ctrl-C stops an import at once (only a send waits for the work in hand), and changes nothing', () => interruptImport('SIGINT'));
