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
    const claimed = store.sends.claimForDelivery(1, 'T'.repeat(22), 10);
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

test('the upgrade to counted events folds each send\'s opens into one row with the first, the last and how many', () => {
  const version = migrations.findIndex((m) => m.includes('ADD COLUMN times'));
  assert.ok(version > 0);
  const file = databaseAt(version);
  const db = new Database(file);
  db.exec(`INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, created_at, updated_at)
      VALUES (2, 1, 1, 'a@example.org', 't', 'sent', 1, 0, 5);
    INSERT INTO events (send_id, kind, at) VALUES (1, 'open', 30), (1, 'open', 10), (1, 'unsubscribe', 40), (1, 'open', 20), (2, 'open', 50);`);
  db.close();
  const store = Store.open(file);
  try {
    assert.deepEqual(store.triage.events(1), [
      { kind: 'open', at: 10, lastAt: 30, times: 3 },
      { kind: 'unsubscribe', at: 40, lastAt: 40, times: 1 },
    ]);
    assert.deepEqual(store.triage.events(2), [{ kind: 'open', at: 50, lastAt: 50, times: 1 }]);
    store.triage.addEvent(1, 'open', 60);
    store.triage.addEvent(2, 'unsubscribe', 70);
    assert.deepEqual(store.triage.events(1)[0], { kind: 'open', at: 10, lastAt: 60, times: 4 });
    assert.equal((store.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 4);
  } finally {
    store.close();
  }
});

test('every database gets its own link secret; the upgrade remembers which sends went out with the old links', () => {
  const version = migrations.findIndex((m) => m.includes('CREATE TABLE link_secret'));
  const file = databaseAt(version);
  const db = new Database(file);
  db.exec(`UPDATE sends SET status = 'sent', token = 'legacy-token-of-send-1', sent_at = 7 WHERE id = 1;
    INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, token, created_at, updated_at)
      VALUES (2, 1, 1, 'a@example.org', 't', 'deferred', 1, 'legacy-token-of-send-2', 0, 5);`);
  db.close();
  const store = Store.open(file);
  const fresh = Store.open(databaseAt(migrations.length));
  try {
    const secret = store.triage.linkSecret();
    assert.equal(secret.length, 32);
    assert.notDeepEqual(secret, fresh.triage.linkSecret());
    assert.equal(store.triage.linkedSend({ legacyToken: 'legacy-token-of-send-1' })?.id, 1);
    assert.equal(store.triage.linkedSend({ legacyToken: 'legacy-token-of-send-2' }), undefined, 'not handed over before the upgrade');
    assert.equal(store.triage.linkedSend({ legacyToken: 'T'.repeat(22) }), undefined);
  } finally {
    store.close();
    fresh.close();
  }
});
