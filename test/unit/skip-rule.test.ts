import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store/store.js';
import { dryRun } from '../../src/send/mailing.js';
import { parseTemplate } from '../../src/send/template.js';
import { retrySends } from '../../src/send/retry.js';
import { resolveSettings } from '../../src/config/settings.js';
import type { MemberSelection } from '../../src/domain/types.js';

/**
 * A member with no address, an invalid one or a suppressed one is skipped with the same
 * category and reason wherever it is decided: when the mailing is queued, in the dry run, and
 * at the claim (the address having gone bad after the mailing was queued).
 */
test('no address, invalid address, suppressed: the same category and reason from enqueue, dry run, claim and retry', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-skip-rule-'));
  const store = Store.open(path.join(dir, 'mailer.db'));
  try {
    const add = store.db.prepare(`INSERT INTO members (key, email, name, fields, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, 0)`);
    for (const key of ['1', '2', '3', '4']) add.run(key, `m${key}@example.org`, `Member ${key}`);
    const selection: MemberSelection = { conditions: [], members: [] };
    const source = 'Subject: Hallo\nFrom: Verein <verein@example.org>\nType: info\n\nHallo {{name}}\n';
    const template = parseTemplate(source, { path: 't.txt', html: null, footer: null });
    const settings = { from: 'Verein <verein@example.org>' };
    const mailing = () => store.mailings.createMailing({ type: 'info', templatePath: 't.txt', template: source, htmlTemplate: null, footer: null, settings, test: false, status: 'running', now: 0 });

    // Queued while every address was good: the claim finds them gone bad.
    const early = mailing();
    assert.equal(store.mailings.enqueue(early, selection, { now: 0 }), 4);

    store.db.prepare(`UPDATE members SET email = NULL, email_problem = 'no-address' WHERE key = '2'`).run();
    store.db.prepare(`UPDATE members SET email = 'm3-at-example.org', email_problem = 'invalid-address' WHERE key = '3'`).run();
    store.triage.suppress('m4@example.org', 'complained', 0);

    const expected = [
      null,
      { category: 'no-address', reason: 'the member has no e-mail address' },
      { category: 'invalid-address', reason: 'the address m3-at-example.org is not a valid e-mail address' },
      { category: 'suppressed', reason: 'the address is suppressed: complained' },
    ];

    const late = mailing();
    store.mailings.enqueue(late, selection, { now: 1 });
    const enqueued = store.log.logSends({ mailings: [late.id], limit: 0 }).sort((a, b) => a.id - b.id)
      .map((s) => (s.status === 'skipped' ? { category: s.category, reason: s.reason } : (assert.equal(s.status, 'queued'), null)));
    assert.deepEqual(enqueued, expected, 'enqueue');

    const dry = dryRun(store, { template, selection, settings, now: 1 });
    const byMember = new Map(dry.skipped.map((s) => [s.member, { category: s.category, reason: s.reason }]));
    assert.deepEqual(['1', '2', '3', '4'].map((key) => byMember.get(key) ?? null), expected, 'dry run');

    const claims = store.log.logSends({ mailings: [early.id], limit: 0 }).sort((a, b) => a.id - b.id)
      .map((s) => store.sends.claimForDelivery(s.id, `token-${s.id}`, 2)!.skip);
    assert.deepEqual(claims, expected, 'claim');
    const recorded = store.log.logSends({ mailings: [early.id], statuses: ['skipped'], limit: 0 }).sort((a, b) => a.id - b.id);
    assert.deepEqual(recorded.map((s) => ({ category: s.category, reason: s.reason })), expected.slice(1), 'claim records the skip');

    // Retry leaves them out by the same rule (it counts them by category).
    store.db.prepare(`UPDATE sends SET status = 'failed', category = 'other', claimed_at = NULL WHERE mailing_id = ?`).run(early.id);
    const retry = await retrySends(store, async () => [], {
      failed: true, deferred: false, filter: { mailings: [early.id] }, includePermanent: false, dryRun: true,
      settings: resolveSettings({}, {}, dir), now: () => 3,
    });
    assert.deepEqual(retry.leftOut, { 'no-address': 1, 'invalid-address': 1, suppressed: 1 }, 'retry');
    assert.deepEqual(retry.candidates.map((c) => c.to), ['m1@example.org']);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an opt-out of the topic (or of all topics) skips with reason unsubscribed (topic) everywhere; a required mailing ignores it, not a suppression', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-skip-topic-'));
  const store = Store.open(path.join(dir, 'mailer.db'));
  try {
    const add = store.db.prepare(`INSERT INTO members (key, email, name, fields, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, 0)`);
    for (const key of ['1', '2', '3', '4']) add.run(key, `m${key}@example.org`, `Member ${key}`);
    const selection: MemberSelection = { conditions: [], members: [] };
    const settings = { from: 'Verein <verein@example.org>' };
    const kinds = {
      news: 'Subject: News\nFrom: Verein <verein@example.org>\nType: newsletter\n\nHallo {{name}}\n',
      meeting: 'Subject: Einladung\nFrom: Verein <verein@example.org>\nType: invitation\nTopic: newsletter\nRequired: yes\n\nHallo {{name}}\n',
    };
    const template = (kind: keyof typeof kinds) => parseTemplate(kinds[kind], { path: `${kind}.txt`, html: null, footer: null });
    const mailing = (kind: keyof typeof kinds) => {
      const t = template(kind);
      return store.mailings.createMailing({ type: t.type, topic: t.topic, required: t.required, templatePath: t.path, template: t.source, htmlTemplate: null, footer: null, settings, test: false, status: 'running', now: 0 });
    };
    const early = { news: mailing('news'), meeting: mailing('meeting') };
    for (const m of Object.values(early)) store.mailings.enqueue(m, selection, { now: 0 });

    store.triage.optOut('m2@example.org', 'newsletter', 'unsubscribed', 1);
    store.triage.optOut('m3@example.org', '*', 'unsubscribed', 1);
    store.triage.optOut('m1@example.org', 'survey', 'unsubscribed', 1);
    store.triage.suppress('m4@example.org', 'bounced: 5.1.1', 1);

    const suppressed = { category: 'suppressed', reason: 'the address is suppressed: bounced: 5.1.1' };
    const expected = {
      news: [null, { category: 'unsubscribed', reason: 'unsubscribed (newsletter)' }, { category: 'unsubscribed', reason: 'unsubscribed (all topics)' }, suppressed],
      meeting: [null, null, null, suppressed],
    };
    for (const kind of ['news', 'meeting'] as const) {
      const late = mailing(kind);
      store.mailings.enqueue(late, selection, { now: 2 });
      const enqueued = store.log.logSends({ mailings: [late.id], limit: 0 }).sort((a, b) => a.id - b.id)
        .map((s) => (s.status === 'skipped' ? { category: s.category, reason: s.reason } : null));
      assert.deepEqual(enqueued, expected[kind], `enqueue ${kind}`);

      const dry = dryRun(store, { template: template(kind), selection, settings, now: 2 });
      const byMember = new Map(dry.skipped.map((s) => [s.member, { category: s.category, reason: s.reason }]));
      assert.deepEqual(['1', '2', '3', '4'].map((key) => byMember.get(key) ?? null), expected[kind], `dry run ${kind}`);

      const claims = store.log.logSends({ mailings: [early[kind].id], limit: 0 }).sort((a, b) => a.id - b.id)
        .map((s) => store.sends.claimForDelivery(s.id, `token-${s.id}`, 3)!.skip);
      assert.deepEqual(claims, expected[kind], `claim ${kind}`);

      store.db.prepare(`UPDATE sends SET status = 'failed', category = 'other', claimed_at = NULL WHERE mailing_id = ?`).run(early[kind].id);
      const retry = await retrySends(store, async () => [], {
        failed: true, deferred: false, filter: { mailings: [early[kind].id] }, includePermanent: false, dryRun: true,
        settings: resolveSettings({}, {}, dir), now: () => 4,
      });
      assert.deepEqual(retry.leftOut, kind === 'news' ? { unsubscribed: 2, suppressed: 1 } : { suppressed: 1 }, `retry ${kind}`);
    }
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
