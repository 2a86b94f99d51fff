import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';
import { MailerError } from '../../src/errors.js';

function databaseAt(version: number): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-migrate-')), 'mailer.db');
  const db = new Database(file);
  for (const sql of migrations.slice(0, version)) db.exec(sql);
  db.pragma(`user_version = ${version}`);
  db.exec(`
    INSERT INTO members (id, key, email, fields, created_at, updated_at) VALUES (1, '1', 'a@example.org', '{}', 0, 0);
    INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (1, 't', 't.txt', 'Subject: x\n\ny', 'running', 0);
    INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, created_at, updated_at)
      VALUES (1, 1, 1, 'a@example.org', 't', 'sending', 1, 0, 5);`);
  db.close();
  return file;
}

test('a database of schema version 4 is brought forward; a send it had in flight is queued and marked claimed', () => {
  const store = Store.open(databaseAt(4));
  try {
    assert.equal(store.db.pragma('user_version', { simple: true }), migrations.length);
    const row = store.db.prepare('SELECT status, claimed_at FROM sends WHERE id = 1').get();
    assert.deepEqual(row, { status: 'queued', claimed_at: 5 });
    // The next claim sees it was in hand when the old run died.
    const claimed = store.claimForDelivery(1, 'T'.repeat(22), 10);
    assert.equal(claimed?.send.maybeDuplicate, true);
  } finally {
    store.close();
  }
});

test('a database newer than this mailer is refused, not misread', () => {
  const file = databaseAt(migrations.length);
  const db = new Database(file);
  db.pragma(`user_version = ${migrations.length + 1}`);
  db.close();
  assert.throws(() => Store.open(file), (err: unknown) => err instanceof MailerError && /newer than this mailer knows/.test(err.message));
});
