import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';
import { forgetMember } from '../../src/members/forget.js';
import { prune } from '../../src/send/prune.js';
import { parseRetention, retentionHeader } from '../../src/config/when.js';

const SECRET_NAME = 'Kunigunde Ziegenbart';

/**
 * A database made by version 13 (no secure_delete), in which rows with the name were written
 * and deleted again: their bytes are left in free pages, where a later forget cannot reach them.
 */
function oldDatabaseWithLeftovers(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-erasure-')), 'mailer.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const sql of migrations.slice(0, 13)) db.exec(sql);
  db.pragma('user_version = 13');
  db.exec(`INSERT INTO members (id, key, email, name, fields, created_at, updated_at) VALUES (1, '1', 'k.z@example.org', '${SECRET_NAME}', '{}', 0, 0)`);
  // A page-full of copies elsewhere, deleted: what a page split or an old import leaves behind.
  const insert = db.prepare(`INSERT INTO segments (name, conditions, created_at) VALUES (?, ?, 0)`);
  for (let i = 0; i < 200; i++) insert.run(`s${i}`, `${SECRET_NAME} ${'x'.repeat(200)}`);
  db.exec('DELETE FROM segments');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return file;
}

const holds = (file: string) => [file, `${file}-wal`].some((f) => fs.existsSync(f) && fs.readFileSync(f).includes(Buffer.from(SECRET_NAME)));

test('a database made before secure_delete: the first forget vacuums it once, so free pages of before hold nothing either', () => {
  const file = oldDatabaseWithLeftovers();
  assert.ok(holds(file), 'the leftovers are there to begin with');
  const store = Store.open(file);
  try {
    assert.equal(store.db.pragma('secure_delete', { simple: true }), 1);
    const r = forgetMember(store, '1', { reason: 'test', now: 1, dryRun: false });
    assert.ok(!holds(file), 'no copy left');
    assert.notEqual(r.vacuumMs, null, 'vacuumed');
    // Only once.
    store.db.exec(`INSERT INTO members (id, key, email, name, fields, created_at, updated_at) VALUES (2, '2', 'b@example.org', 'B', '{}', 0, 0)`);
    assert.equal(forgetMember(store, '2', { reason: 'test', now: 2, dryRun: false }).vacuumMs, null);
  } finally {
    store.close();
  }
});

test('a new database needs no VACUUM: secure_delete is on from its creation', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-erasure-')), 'mailer.db');
  const store = Store.open(file);
  try {
    assert.equal(store.db.prepare('SELECT scrub_needed FROM erasure_secret').pluck().get(), 0);
  } finally {
    store.close();
  }
});

test('retention periods and the template line', () => {
  const rows: [string, number | null][] = [['90d', 90 * 86_400_000], ['2y', 730 * 86_400_000], ['6w', 42 * 86_400_000], ['36h', 36 * 3_600_000], ['0d', null], ['forever', null], ['90', null]];
  for (const [text, ms] of rows) assert.equal(parseRetention(text), ms, text);
  assert.equal(retentionHeader('Subject: x\nRetention: 30d\n\nRetention: 1d in the body'), '30d');
  assert.equal(retentionHeader('Subject: x\n\nRetention: 1d in the body'), null);
});

/** A new database with one member and one mailing of `type`, and a way to add that mailing's sends. */
function storeWithMailing(type: string, status: string) {
  const store = Store.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), `mailer-${type}-`)), 'mailer.db'));
  const db = store.db;
  db.exec(`INSERT INTO members (id, key, email, fields, created_at, updated_at) VALUES (1, '1', 'anna@example.org', '{}', 0, 0)`);
  db.prepare(`INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (1, ?, ?, ?, ?, 0)`).run(type, `${type}.txt`, `Subject: ${type}\n\nHallo`, status);
  const insertSend = db.prepare(`INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, created_at, updated_at) VALUES (?, 1, 1, 'anna@example.org', ?, ?, 1, ?, ?)`);
  return { store, db, addSend: (id: number, sendStatus: string, at: number) => insertSend.run(id, type, sendStatus, at, at) };
}

test('prune: a send still deferred when its window was pruned loses its message at the next prune, once it is sent', () => {
  const { store, db, addSend } = storeWithMailing('befund', 'running');
  try {
    const message = db.prepare(`INSERT INTO messages (send_id, raw) VALUES (?, 'Subject: Befund')`);
    const stored = () => (db.prepare('SELECT send_id FROM messages ORDER BY 1').all() as { send_id: number }[]).map((r) => r.send_id);
    // rows: id, status, created at
    for (const [id, status, at] of [[1, 'sent', 1000], [2, 'deferred', 2000], [3, 'sent', 3000]] as const) {
      addSend(id, status, at);
      if (status === 'sent') message.run(id);
    }
    const keep = { messages: 5000 };
    assert.equal(prune(store, keep, { now: 10_000, dryRun: false }).messages, 2);
    assert.deepEqual(stored(), [], 'the deferred one had no message yet');
    assert.equal(store.erasure.contentRemovedAt(2), null, 'show says nothing was removed of a send still deferred');
    // sent on a later try, after the prune
    db.prepare(`UPDATE sends SET status = 'sent', sent_at = 10500, updated_at = 10500 WHERE id = 2`).run();
    message.run(2);
    assert.equal(prune(store, keep, { now: 10_900, dryRun: true }).messages, 1, 'the dry run sees it too');
    assert.equal(prune(store, keep, { now: 11_000, dryRun: false }).messages, 1);
    assert.deepEqual(stored(), []);
    assert.equal(store.erasure.contentRemovedAt(2), 11_000, 'show names the prune that took it');
    assert.equal(store.erasure.contentRemovedAt(1), 10_000);
    assert.equal(prune(store, keep, { now: 12_000, dryRun: false }).messages, 0, 'and nothing more after it');

    // A failed send, tried again by retry after a prune passed it: the next prune takes it too.
    addSend(4, 'failed', 4000);
    assert.equal(prune(store, keep, { now: 13_000, dryRun: false }).messages, 0);
    store.erasure.reopenForPrune(4);
    db.prepare(`UPDATE sends SET status = 'sent', sent_at = 13500, updated_at = 13500 WHERE id = 4`).run();
    message.run(4);
    assert.equal(prune(store, keep, { now: 14_000, dryRun: false }).messages, 1);
    assert.deepEqual(stored(), []);
  } finally {
    store.close();
  }
});

test('migrate: a row that changes between the batch\'s read and its write keeps its new bytes, and is not counted', () => {
  const { store, db, addSend } = storeWithMailing('news', 'done');
  try {
    for (const id of [1, 2, 3]) {
      addSend(id, 'sent', 0);
      db.prepare(`INSERT INTO messages (send_id, raw) VALUES (?, ?)`).run(id, Buffer.from(`Subject: News ${id}\r\n\r\n${'Hallo Anna, das war los. '.repeat(20)}`));
    }
    // The dictionary is made after the rows were read and before they are written: the moment
    // another command could send one of them again.
    const batch = store.sends.compressPlainMessages(0, 10, () => {
      db.prepare(`UPDATE messages SET raw = ? WHERE send_id = 2`).run(Buffer.from('Subject: sent again\r\n\r\nHallo'));
      return Buffer.from('Subject: News\r\n\r\nHallo Anna, das war los. ');
    });
    assert.deepEqual({ last: batch.last, rows: batch.rows }, { last: 3, rows: 2 });
    const rows = db.prepare('SELECT send_id, raw FROM messages ORDER BY 1').all() as { send_id: number; raw: Buffer }[];
    assert.equal(rows[1].raw.toString(), 'Subject: sent again\r\n\r\nHallo', 'the newer bytes stay');
    assert.deepEqual(rows.map((r) => r.raw[0] < 0x20), [true, false, true]);
    assert.equal(store.sends.rawMessage(1)!.toString().slice(0, 15), 'Subject: News 1');
  } finally {
    store.close();
  }
});
