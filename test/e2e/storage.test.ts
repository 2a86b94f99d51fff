import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { migrations } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';

const NEWSLETTER = `Subject: Neues aus der Region {{region}}
From: Verein e.V. <newsletter@verein.example>
Type: newsletter

Hallo {{name}},

das war los in der Region {{region}}: Sommerfest am 12. Juli, über 200 Gäste, danke an alle!
Die Mitgliederversammlung ist am 14. März 2027.
`;

/** Members whose every value is recognisable in bytes: none of them may be in a dictionary. */
const MEMBERS = Array.from({ length: 12 }, (_, i) => [`K${7000 + i}`, `Zyprian${i} Quellwasser${i}`, `zyprian${i}.quell@example.org`, `Oberwald${i}`]);

async function sentFolder(): Promise<string> {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email', 'region'], MEMBERS));
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: 'https://mail.verein.example', footer: 'footer.txt' }));
  writeFile(dir, 'footer.txt', 'Verein e.V. · Hauptstraße 1 · 12345 Musterstadt\n');
  writeFile(dir, 'newsletter.txt', NEWSLETTER);
  writeFile(dir, 'newsletter.html', '<p>Hallo {{name}},</p>\n<p>das war los in der Region <strong>{{region}}</strong>.</p>\n');
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  const sent = await mailer(dir, ['send', 'newsletter.txt', '-q']);
  assert.equal(sent.code, 0, sent.stderr);
  return dir;
}

const outboxFile = (dir: string, id: number) => fs.readFileSync(path.join(dir, 'outbox', `${id}.eml`));

async function showRaw(dir: string, id: number): Promise<Buffer> {
  const r = await mailer(dir, ['show', String(id), '--raw']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdoutBytes;
}

test('stored messages are compressed against a dictionary that holds no member\'s data; show --raw gives the bytes as sent', async () => {
  const dir = await sentFolder();
  const db = openDb(dir);
  const rows = db.prepare('SELECT send_id, raw FROM messages ORDER BY send_id').all() as { send_id: number; raw: Buffer }[];
  const dictionaries = db.prepare('SELECT mailing_id, dictionary FROM message_dictionaries').all() as { mailing_id: number; dictionary: Buffer }[];
  db.close();
  assert.equal(rows.length, MEMBERS.length);
  assert.equal(dictionaries.length, 1, 'one dictionary for the one mailing');
  const dictionary = dictionaries[0].dictionary.toString('latin1');
  for (const [key, name, email, region] of MEMBERS) {
    for (const value of [key, email, region, ...name.split(' ')]) assert.ok(!dictionary.includes(value), `the dictionary holds ${value}`);
  }
  assert.match(dictionary, /^Subject: Neues aus der Region region$/m, 'the template composed for a stand-in');
  let raw = 0;
  let stored = 0;
  for (const row of rows) {
    const sent = outboxFile(dir, row.send_id);
    assert.equal(row.raw[0], 0x01, 'marked: deflate with the mailing\'s dictionary');
    assert.deepEqual(zlib.inflateRawSync(row.raw.subarray(1), { dictionary: dictionaries[0].dictionary }), sent);
    assert.deepEqual(await showRaw(dir, row.send_id), sent, `show --raw ${row.send_id}`);
    raw += sent.length;
    stored += row.raw.length;
  }
  assert.ok(stored * 4 < raw, `stored ${stored} bytes for ${raw} sent`);
  // Each row is compressed on its own: one deleted (forget, prune) leaves the others readable.
  const rw = new Database(path.join(dir, 'mailer.db'));
  rw.prepare('DELETE FROM messages WHERE send_id = 1').run();
  rw.close();
  assert.deepEqual(await showRaw(dir, 2), outboxFile(dir, 2));
  assert.match((await mailer(dir, ['show', '1', '--raw'])).stderr, /send 1 has no message/);
});

test('mailer migrate compresses the rows an older build stored as sent, in batches, and a stopped run just goes on; both forms read alike meanwhile', async () => {
  const dir = await sentFolder();
  // As an older build left them: the bytes as sent, and no dictionary yet.
  const rw = new Database(path.join(dir, 'mailer.db'));
  const plain = rw.prepare('UPDATE messages SET raw = ? WHERE send_id = ?');
  for (let id = 1; id <= MEMBERS.length; id++) plain.run(outboxFile(dir, id), id);
  rw.prepare('DELETE FROM message_dictionaries').run();
  // A second mailing sent after the upgrade: compressed already, against its own dictionary.
  rw.close();
  const again = await mailer(dir, ['send', 'newsletter.txt', '--member', 'K7000', '-q']);
  assert.equal(again.code, 0, again.stderr);
  const newest = MEMBERS.length + 1;
  assert.deepEqual(await showRaw(dir, 3), outboxFile(dir, 3), 'a plain row reads as before');
  assert.deepEqual(await showRaw(dir, newest), outboxFile(dir, newest), 'a compressed row beside it');

  // A run stopped after its first batch (of three rows, here without a dictionary: the mark
  // says so): the next one takes the rest, and every row reads alike meanwhile.
  const store = Store.open(path.join(dir, 'mailer.db'));
  const first = store.sends.compressPlainMessages(0, 3, () => null);
  store.close();
  assert.deepEqual({ last: first.last, rows: first.rows }, { last: 3, rows: 3 });
  for (const id of [2, 4]) assert.deepEqual(await showRaw(dir, id), outboxFile(dir, id), `show --raw ${id} half-way`);

  const migrated = await mailer(dir, ['migrate', '--json']);
  assert.equal(migrated.code, 0, migrated.stderr);
  const r = JSON.parse(migrated.stdout);
  assert.equal(r.compressed, MEMBERS.length - 3);
  assert.ok(r.batches >= 1 && r.longestBatchMs < 1000, migrated.stdout);
  assert.ok(r.bytesAfter * 4 < r.bytesBefore, migrated.stdout);
  const db = openDb(dir);
  const marks = db.prepare('SELECT hex(substr(raw, 1, 1)) AS mark, count(*) AS n FROM messages GROUP BY 1').all();
  const dictionaries = (db.prepare('SELECT dictionary FROM message_dictionaries').all() as { dictionary: Buffer }[]).map((d) => d.dictionary.toString('latin1'));
  db.close();
  assert.deepEqual(marks, [{ mark: '01', n: newest - 3 }, { mark: '02', n: 3 }]);
  assert.equal(dictionaries.length, 2, 'the older mailing got its dictionary from its stored template');
  for (const d of dictionaries) for (const [, name, email] of MEMBERS) assert.ok(!d.includes(email) && !d.includes(name.split(' ')[1]));
  for (let id = 1; id <= newest; id++) assert.deepEqual(await showRaw(dir, id), outboxFile(dir, id), `show --raw ${id} after migrate`);
  // Nothing left: a second run changes nothing.
  assert.equal(JSON.parse((await mailer(dir, ['migrate', '--json'])).stdout).compressed, 0);
});

test('a new database reuses freed pages with auto_vacuum=INCREMENTAL; an older one gets it from migrate --vacuum, once', async () => {
  const fresh = await sentFolder();
  const db = openDb(fresh);
  assert.equal(db.pragma('auto_vacuum', { simple: true }), 2);
  db.close();

  // An older database: made without the pragma, as every build before this one made them.
  const dir = tempDir();
  const old = new Database(path.join(dir, 'mailer.db'));
  old.pragma('journal_mode = WAL');
  for (const sql of migrations.slice(0, migrations.length - 1)) old.exec(sql);
  old.pragma(`user_version = ${migrations.length - 1}`);
  old.close();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  const before = openDb(dir);
  assert.equal(before.pragma('auto_vacuum', { simple: true }), 0, 'opening an older database does not change it');
  before.close();
  const plainRun = await mailer(dir, ['migrate']);
  assert.match(plainRun.stdout, /migrate --vacuum` rebuilds it once/);
  const vacuumed = await mailer(dir, ['migrate', '--vacuum', '--json']);
  assert.equal(vacuumed.code, 0, vacuumed.stderr);
  assert.equal(JSON.parse(vacuumed.stdout).vacuumed, true);
  const after = openDb(dir);
  assert.equal(after.pragma('auto_vacuum', { simple: true }), 2);
  assert.equal((after.prepare('SELECT count(*) AS n FROM members').get() as { n: number }).n, 1);
  after.close();
  assert.equal(JSON.parse((await mailer(dir, ['migrate', '--vacuum', '--json'])).stdout).vacuumed, false, 'once only');
});
