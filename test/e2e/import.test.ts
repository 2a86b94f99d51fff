import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import iconv from 'iconv-lite';
import { EXAMPLES, mailer, openDb, startMailer, tempDir, writeFile } from '../support/cli.js';

test('imports the Windows-1252 example list: umlauts intact, member without address flagged', async () => {
  const dir = tempDir();
  const r = await mailer(dir, ['import', path.join(EXAMPLES, 'members.csv'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result, { read: 12, inserted: 12, updated: 0, unchanged: 0, withoutEmail: 1, invalidEmail: 0, rejected: [], warned: 0, warnings: [] });
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
  assert.deepEqual(JSON.parse(r.stdout), { read: 3, inserted: 2, updated: 1, unchanged: 0, withoutEmail: 0, invalidEmail: 0, rejected: [], warned: 0, warnings: [] });
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
  // the line itself, not the one the reader had got to
  assert.match(m.stderr, /mixed\.csv mixes encodings: line 2 is UTF-8 \("Name 0 Müller"\), line 3002 is not valid UTF-8 \("Jürgen" if read as Windows-1252\)/);
  assert.doesNotMatch(m.stderr, /near/);
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

test('--delimiter takes any one character, tab spelled out; more than one character is a usage error (exit 2) that says so', async () => {
  const dir = tempDir();
  const pipe = writeFile(dir, 'pipe.csv', 'id|name|email\n1|Anna|anna@example.org\n2|Ben|ben@example.org\n');
  const r = await mailer(dir, ['import', pipe, '--delimiter', '|', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).inserted, 2);
  const human = await mailer(dir, ['import', pipe, '--delimiter', '|']);
  assert.match(human.stderr, /pipe\.csv: utf-8, delimiter "\|"/);

  const tabbed = writeFile(dir, 'tab.csv', 'id\tname\temail\n3\tCem\tcem@example.org\n');
  for (const spelled of ['tab', '\\t', '\t']) {
    const t = await mailer(dir, ['import', tabbed, '--delimiter', spelled, '--json']);
    assert.equal(t.code, 0, `${JSON.stringify(spelled)}: ${t.stderr}`);
  }

  for (const [value, why] of [['||', /--delimiter "\|\|" is 2 characters: the delimiter is one character/], ['', /is empty/], ['"', /quote/]] as const) {
    const bad = await mailer(dir, ['import', pipe, '--delimiter', value]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, why);
  }
  const db = openDb(dir);
  assert.equal((db.prepare('SELECT count(*) AS n FROM members').get() as any).n, 3, 'a refused --delimiter changed nothing');
  db.close();
});

test('internationalised addresses: an IDN domain is valid; a non-ASCII name before the @ is imported, with a note that it needs SMTPUTF8', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', 'id;name;email\n1;Buchladen;info@bücher.de\n2;Jürgen;jürgen@example.de\n3;Kaputt;jürgen..x@example.de\n');
  const r = await mailer(dir, ['import', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.inserted, 3);
  assert.equal(result.invalidEmail, 1, 'only the really invalid one is flagged');
  assert.deepEqual(result.warnings, [{ line: 3, reason: 'member 2: jürgen@example.de is imported, but non-ASCII before the @ needs a server with SMTPUTF8' }]);
  const db = openDb(dir);
  assert.deepEqual(db.prepare('SELECT key, email, email_problem AS problem FROM members ORDER BY key').all(), [
    { key: '1', email: 'info@bücher.de', problem: null },
    { key: '2', email: 'jürgen@example.de', problem: null },
    { key: '3', email: 'jürgen..x@example.de', problem: 'invalid-address' },
  ]);
  db.close();
  const human = await mailer(dir, ['import', file]);
  assert.match(human.stdout, /m\.csv:3 {2}member 2: jürgen@example\.de is imported, but non-ASCII before the @ needs a server with SMTPUTF8/);
  assert.doesNotMatch(human.stdout, /"jürgen" is not a valid name/);
  assert.match(human.stdout, /m\.csv:4 {2}member 3: invalid address jürgen\.\.x@example\.de: "jürgen\.\.x" is not a valid name before the @/);
});

test('control characters never reach a member or the terminal: removed, with a warning naming line and column', async () => {
  const dir = tempDir();
  const file = writeFile(dir, 'm.csv', [
    'id;na\0me;email;note',
    '1;Al\0ice;alice@example.org;ok',
    '2;\x1b[31mRed\x1b[0m;red@example.org;"\x1b]0;title\x07bell\x07"',
    '3;"Two\nLines";two@example.org;"keeps\nits line break"',
    '4;Dora;do\0ra@example.org;\u009b2Jplain',
    '5;Eva;eva@example.org;fine',
  ].join('\n') + '\n');
  const r = await mailer(dir, ['import', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.inserted, 5);
  assert.equal(result.invalidEmail, 0, 'dora\'s address is valid once the NUL is gone');
  assert.deepEqual(result.warnings, [
    { line: 1, reason: 'control characters in the header: column 2 "name" (NUL removed)' },
    { line: 2, reason: 'control characters in "name" (NUL removed)' },
    { line: 3, reason: 'control characters in "name" (escape sequence removed), "note" (escape sequence removed, control character U+0007 removed)' },
    { line: 4, reason: 'control characters in "name" (line break made a space)' },
    { line: 7, reason: 'control characters in "email" (NUL removed), "note" (escape sequence removed)' },
  ]);
  const db = openDb(dir);
  assert.deepEqual(db.prepare(`SELECT key, name, email, json_extract(fields, '$.note') AS note FROM members ORDER BY key`).all(), [
    { key: '1', name: 'Alice', email: 'alice@example.org', note: 'ok' },
    { key: '2', name: 'Red', email: 'red@example.org', note: 'bell' },
    { key: '3', name: 'Two Lines', email: 'two@example.org', note: 'keeps\nits line break' },
    { key: '4', name: 'Dora', email: 'dora@example.org', note: 'plain' },
    { key: '5', name: 'Eva', email: 'eva@example.org', note: 'fine' },
  ]);
  assert.deepEqual(db.prepare('SELECT name FROM member_fields ORDER BY name').all(), [{ name: 'id' }, { name: 'note' }]);
  db.close();
  const human = await mailer(dir, ['import', file]);
  assert.match(human.stdout, /imported with a warning: 5\n {2}.*m\.csv:1 {2}control characters in the header/);
  assert.doesNotMatch(human.stdout + human.stderr, /[\0\x07\x1b\x9b]/, 'nothing of it on the terminal');

  // In a tab-delimited file the tabs are delimiters; a quoted one is data in a free-text field.
  const tabbed = writeFile(dir, 't.csv', 'id\tname\temail\tnote\n6\t"Fritz\tFrei"\tfritz@example.org\t"a\tb"\n');
  const t = await mailer(dir, ['import', tabbed, '--json']);
  assert.equal(t.code, 0, t.stderr);
  assert.deepEqual(JSON.parse(t.stdout).warnings, [{ line: 2, reason: 'control characters in "name" (tab made a space)' }]);
  const after = openDb(dir);
  assert.deepEqual(after.prepare(`SELECT name, json_extract(fields, '$.note') AS note FROM members WHERE key = '6'`).get(), { name: 'Fritz Frei', note: 'a\tb' });
  after.close();
});

test('wide and fat files are imported in bounded memory: 2,000 columns × 2,000 rows, 150 rows of a 900 KB field', { timeout: 180_000 }, async () => {
  const dir = tempDir();
  const columns = 2000;
  const header = ['id', 'email', ...Array.from({ length: columns - 2 }, (_, c) => `col${c}`)];
  const wide = fs.openSync(path.join(dir, 'wide.csv'), 'w');
  fs.writeSync(wide, header.join(';') + '\n');
  for (let r = 0; r < 2000; r++) {
    fs.writeSync(wide, [r, `m${r}@example.org`, ...Array.from({ length: columns - 2 }, (_, c) => `v${r}.${c}`)].join(';') + '\n');
  }
  fs.closeSync(wide);
  const w = await mailer(dir, ['import', 'wide.csv', '--json']);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(JSON.parse(w.stdout).inserted, 2000);

  const fat = fs.openSync(path.join(dir, 'fat.csv'), 'w');
  fs.writeSync(fat, 'id;email;note\n');
  const big = 'x'.repeat(900_000);
  // every other one quoted, with a line break inside: the quote-aware path too
  for (let r = 0; r < 150; r++) fs.writeSync(fat, `f${r};f${r}@example.org;${r % 2 ? `"${big}\n${r}"` : big + r}\n`);
  fs.closeSync(fat);
  const f = await mailer(dir, ['import', 'fat.csv', '--json']);
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(JSON.parse(f.stdout).rejected, []);
  assert.equal(JSON.parse(f.stdout).inserted, 150);

  const db = openDb(dir);
  assert.equal((db.prepare(`SELECT json_extract(fields, '$.col1997') AS v FROM members WHERE key = '1999'`).get() as any).v, 'v1999.1997');
  assert.deepEqual(db.prepare(`SELECT length(json_extract(fields, '$.note')) AS n FROM members WHERE key IN ('f0', 'f1') ORDER BY key`).all(), [{ n: 900_001 }, { n: 900_002 }]);
  db.close();

  // Past the limit, the refusal names the file, the line and the limit.
  fs.writeFileSync(path.join(dir, 'huge.csv'), `id;email;note\n1;a@example.org;x\n2;b@example.org;${'y'.repeat(1_200_000)}\n`);
  const h = await mailer(dir, ['import', 'huge.csv']);
  assert.equal(h.code, 2, h.stderr);
  assert.match(h.stderr, /huge\.csv:3: line 3 is longer than 1 MB without a line break/);
});

test('not CSV: an Excel file renamed is refused (exit 2, nothing changed); UTF-16 with its BOM is read', async () => {
  const dir = tempDir();
  // what an .xlsx starts with: a ZIP entry "[Content_Types].xml"
  const xlsx = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00, 0x08, 0x00]), Buffer.alloc(16, 0x11), Buffer.from([0x13, 0x00, 0x00, 0x00]),
    Buffer.from('[Content_Types].xml'), Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 37) % 256))]);
  const x = await mailer(dir, ['import', writeFile(dir, 'members.csv', xlsx)]);
  assert.equal(x.code, 2, x.stderr);
  assert.match(x.stderr, /members\.csv: this is an Excel file \(\.xlsx\): save it as CSV \(UTF-8 or Windows\); nothing was imported/);
  assert.doesNotMatch(x.stderr, /PK|the columns are/);
  const legacy = await mailer(dir, ['import', writeFile(dir, 'old.csv', Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(512)]))]);
  assert.equal(legacy.code, 2);
  assert.match(legacy.stderr, /this is an Excel file \(\.xls\): save it as CSV/);

  // Excel's "Unicode text": UTF-16 LE with a BOM, tab-delimited, CRLF
  const text = 'id\tname\temail\r\n1\tJürgen Groß\tj@example.org\r\n2\t\u{1F600} Emoji\te@example.org\r\n';
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  const r = await mailer(dir, ['import', writeFile(dir, 'unicode.txt', le)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /unicode\.txt: utf-16le, delimiter tab/);
  const be = await mailer(dir, ['import', writeFile(dir, 'be.csv', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text.replace(/1\t/, '3\t').replace(/2\t/, '4\t'), 'utf16le').swap16()])), '--json']);
  assert.equal(be.code, 0, be.stderr);
  assert.equal(JSON.parse(be.stdout).inserted, 2);
  const db = openDb(dir);
  assert.deepEqual(db.prepare('SELECT key, name, email FROM members ORDER BY key').all(), [
    { key: '1', name: 'Jürgen Groß', email: 'j@example.org' },
    { key: '2', name: '\u{1F600} Emoji', email: 'e@example.org' },
    { key: '3', name: 'Jürgen Groß', email: 'j@example.org' },
    { key: '4', name: '\u{1F600} Emoji', email: 'e@example.org' },
  ]);
  db.close();
});

test('a UTF-8 line among Windows-1252 ones is refused (exit 2), naming both lines, in the first 64 KB or further down', async () => {
  const dir = tempDir();
  const win = (s: string) => iconv.encode(s, 'win1252');
  const early = writeFile(dir, 'early.csv', Buffer.concat([win('id;name;email\n1;Müller;m@example.org\n'), Buffer.from('2;Jürgen;j@example.org\n'), win('3;Schröder;s@example.org\n')]));
  const e = await mailer(dir, ['import', early]);
  assert.equal(e.code, 2, e.stderr);
  assert.match(e.stderr, /early\.csv mixes encodings: line 2 is Windows-1252 \("Müller"\), line 3 is UTF-8 \("Jürgen"\); nothing was imported/);
  assert.doesNotMatch(e.stderr, /JÃ¼rgen|near/);

  // Windows-1252 from the start, the UTF-8 line past the first 64 KB
  const rows = Array.from({ length: 3000 }, (_, i) => `${i};Name ${i} Müller;m${i}@example.org\n`).join('');
  const late = writeFile(dir, 'late.csv', Buffer.concat([win('id;name;email\n' + rows), Buffer.from('9999;Jürgen;j@example.org\n')]));
  const l = await mailer(dir, ['import', late]);
  assert.equal(l.code, 2, l.stderr);
  assert.match(l.stderr, /late\.csv mixes encodings: line 2 is Windows-1252 \("Name 0 Müller"\), line 3002 is UTF-8 \("Jürgen"\)/);

  // ASCII for the first 64 KB, then Windows-1252, then UTF-8
  const ascii = Array.from({ length: 3000 }, (_, i) => `a${i};Name ${i};a${i}@example.org\n`).join('');
  const third = writeFile(dir, 'third.csv', Buffer.concat([Buffer.from('id;name;email\n' + ascii), win('x1;Jörg;x1@example.org\n'), Buffer.from('x2;Jürgen;x2@example.org\n')]));
  const t = await mailer(dir, ['import', third]);
  assert.equal(t.code, 2, t.stderr);
  assert.match(t.stderr, /third\.csv mixes encodings: line 3002 is Windows-1252 \("Jörg"\), line 3003 is UTF-8 \("Jürgen"\)/);

  const db = openDb(dir);
  assert.equal((db.prepare('SELECT count(*) AS n FROM members').get() as any).n, 0, 'nothing was imported');
  db.close();
  // given the encoding, the file is read as it says
  const forced = await mailer(dir, ['import', early, '--encoding', 'windows-1252', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
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
