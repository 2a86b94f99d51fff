import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/store.js';
import { migrations } from '../../src/store/schema.js';
import Database from 'better-sqlite3';

/** The counts the triggers keep (schema 17) against the sends themselves, after every kind of write. */

function freshStore(): Store {
  return Store.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-counts-')), 'mailer.db'));
}

function seed(store: Store, members: number, sends: { mailing: number; status: string; category?: string }[]): void {
  const db = store.db;
  for (let i = 1; i <= members; i++) {
    db.prepare(`INSERT INTO members (id, key, email, fields, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, 0)`).run(i, String(i), `m${i}@example.org`);
  }
  for (const id of new Set(sends.map((s) => s.mailing))) {
    db.prepare(`INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (?, 'news', 't.txt', 'Subject: x\n\ny', 'done', 0)`).run(id);
  }
  sends.forEach((s, i) => db.prepare(`INSERT INTO sends (mailing_id, member_id, email, type, status, category, attempts, created_at, updated_at)
    VALUES (?, ?, ?, 'news', ?, ?, 1, ?, ?)`).run(s.mailing, 1 + (i % members), `m${1 + (i % members)}@example.org`, s.status, s.category ?? null, i, i));
}

/** What stats reads, against a count of the sends and events themselves. */
function assertCountsTrue(store: Store): void {
  const kept = store.db.prepare(`SELECT mailing_id, status, nullif(category, '') AS category, n FROM mailing_counts WHERE n > 0 ORDER BY 1, 2, 3`).all();
  const real = store.db.prepare(`SELECT mailing_id, status, category, count(*) AS n FROM sends GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`).all();
  assert.deepEqual(kept, real);
  const keptEvents = store.db.prepare(`SELECT mailing_id, kind, n FROM mailing_events WHERE n > 0 ORDER BY 1, 2`).all();
  const realEvents = store.db.prepare(`SELECT s.mailing_id, e.kind, count(DISTINCT e.send_id) AS n FROM events e JOIN sends s ON s.id = e.send_id GROUP BY 1, 2 ORDER BY 1, 2`).all();
  assert.deepEqual(keptEvents, realEvents);
}

test('mailing counts follow every write: queue, claim, sent, deferred, bounced, retarget, cancel, events, delete', () => {
  const store = freshStore();
  try {
    seed(store, 5, [...Array(8)].map((_, i) => ({ mailing: 1 + (i % 2), status: 'queued' })));
    assertCountsTrue(store);
    const claimed = store.sends.claimForDelivery(1, 'T1'.padEnd(22, 'x'), 10)!;
    assert.ok(claimed);
    store.sends.recordSent({ id: 1, email: 'm1@example.org', server: 's', messageId: '<1@x>', raw: Buffer.from('x'), response: '250 ok', now: 11 });
    store.sends.recordUnsent({ id: 2, email: 'm2@example.org', server: 's', responseCode: 451, enhancedCode: null, response: '451 later', category: 'greylisted', permanent: false, status: 'deferred', retryAt: 99, now: 12 });
    store.sends.recordUnsent({ id: 3, email: 'm3@example.org', server: 's', responseCode: 550, enhancedCode: null, response: '550 no', category: 'unknown-mailbox', permanent: true, status: 'failed', retryAt: null, now: 12 });
    store.sends.markSkipped(4, 'suppressed', 'the address is suppressed', 13);
    assertCountsTrue(store);
    store.triage.recordBounce({ fingerprint: 'f1', sendId: 1, matchedBy: 'message-id', recipient: 'm1@example.org', action: 'failed', statusCode: '5.1.1', diagnostic: 'gone', category: 'unknown-mailbox', permanent: true, source: 'b', at: 20 }, 20);
    store.triage.addEvent(1, 'open', 21);
    store.triage.addEvent(1, 'open', 22);
    store.triage.addEvent(5, 'unsubscribe', 23);
    assertCountsTrue(store);
    const send = store.sends.send(2)!;
    store.sends.retarget(send, 'new@example.org', 'typo', 30);
    store.sends.cancelSends(2, null, 31, false);
    assertCountsTrue(store);
    store.db.prepare('DELETE FROM events WHERE send_id = 5').run();
    store.db.prepare('DELETE FROM attempts WHERE send_id = 8').run();
    store.db.prepare('DELETE FROM sends WHERE id = 8').run();
    assertCountsTrue(store);
  } finally {
    store.close();
  }
});

test('the upgrade to schema 17 counts the sends and events a database already has', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-counts-')), 'mailer.db');
  const version = migrations.findIndex((m) => m.includes('CREATE TABLE mailing_counts'));
  assert.ok(version > 0);
  const db = new Database(file);
  for (const sql of migrations.slice(0, version)) db.exec(sql);
  db.pragma(`user_version = ${version}`);
  db.exec(`INSERT INTO members (id, key, email, fields, created_at, updated_at) VALUES (1, '1', 'a@example.org', '{}', 0, 0);
    INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (1, 't', 't.txt', 'x', 'done', 0), (2, 't', 't.txt', 'x', 'done', 0);
    INSERT INTO sends (id, mailing_id, member_id, email, type, status, category, attempts, created_at, updated_at) VALUES
      (1, 1, 1, 'a@example.org', 't', 'sent', NULL, 1, 0, 0), (2, 1, 1, 'a@example.org', 't', 'sent', NULL, 1, 0, 0),
      (3, 1, 1, 'a@example.org', 't', 'failed', 'unknown-mailbox', 1, 0, 0), (4, 2, 1, 'a@example.org', 't', 'skipped', 'no-address', 0, 0, 0);
    INSERT INTO events (send_id, kind, at, last_at, times) VALUES (1, 'open', 1, 1, 3), (2, 'open', 1, 1, 1);`);
  db.close();
  const store = Store.open(file);
  try {
    assertCountsTrue(store);
    assert.deepEqual(store.mailings.mailingCounts(1).sort((a, b) => a.status.localeCompare(b.status)),
      [{ status: 'failed', category: 'unknown-mailbox', n: 1 }, { status: 'sent', category: null, n: 2 }]);
    assert.deepEqual(store.log.stats([1]).events, [{ mailing: 1, kind: 'open', n: 2 }]);
  } finally {
    store.close();
  }
});

test('log with a member or an address is driven by its index, a mailing and a rare status by the exact range', () => {
  const store = freshStore();
  try {
    // One mailing of 3,000: nearly all sent, three failed; the member has one send in it.
    seed(store, 1000, [...Array(3000)].map((_, i) => ({ mailing: 1, status: i % 1000 === 7 ? 'failed' : 'sent', category: i % 1000 === 7 ? 'unknown-mailbox' : undefined })));
    const plans: string[] = [];
    const prepare = store.db.prepare.bind(store.db);
    store.db.prepare = ((sql: string) => {
      if (/FROM sends s/.test(sql) && !sql.startsWith('EXPLAIN')) {
        plans.push((prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...Array((sql.match(/\?/g) ?? []).length).fill(1)) as { detail: string }[]).map((p) => p.detail).join('; '));
      }
      return prepare(sql);
    }) as typeof store.db.prepare;
    const failed = store.log.logSends({ mailings: [1], statuses: ['failed'] });
    assert.equal(failed.length, 3);
    assert.match(plans.pop()!, /sends_queue \(mailing_id=\? AND status=\?\)/);
    const sent = store.log.logSends({ mailings: [1], statuses: ['sent'] });
    assert.equal(sent.length, 50);
    assert.match(plans.pop()!, /sends_mailing/, 'many matches: the mailing is walked newest first, not all sorted');
    const mine = store.log.logSends({ emails: ['m8@example.org'], mailings: [1] });
    assert.equal(mine.length, 3);
    assert.match(plans.pop()!, /sends_email/);
    const member = store.log.logSends({ memberIds: [8], statuses: ['failed'], mailings: [1] });
    assert.deepEqual(member.map((s) => s.id), [2008, 1008, 8]);
    assert.match(plans.pop()!, /sends_member/);
  } finally {
    store.close();
  }
});
