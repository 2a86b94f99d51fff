import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INVITATION, mailer, membersCsv, tempDir, writeFile } from '../support/cli.js';
import Database from 'better-sqlite3';
import path from 'node:path';

async function history() {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [
    ['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org'], ['3', 'Cem', 'cem@example.org'],
  ]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  writeFile(dir, 'reminder.txt', 'Subject: Erinnerung\nFrom: V <v@verein.example>\nType: reminder\n\nHallo {{name}}\n');
  assert.equal((await mailer(dir, ['send', 'invitation.txt'])).code, 0);
  assert.equal((await mailer(dir, ['send', 'reminder.txt', '--member', '2'])).code, 0);
  // Age the invitation by ten days, as if it had gone out then.
  const db = new Database(path.join(dir, 'mailer.db'));
  db.prepare(`UPDATE sends SET created_at = created_at - 10 * 86400000 WHERE type = 'invitation'`).run();
  db.close();
  return dir;
}

test('log filters combine: member, email, type, mailing, status, since, until, limit', async () => {
  const dir = await history();
  const all = JSON.parse((await mailer(dir, ['log', '--json'])).stdout) as any[];
  assert.equal(all.length, 4);
  assert.deepEqual(all.map((s) => s.type), ['reminder', 'invitation', 'invitation', 'invitation'], 'newest first');
  assert.deepEqual(Object.keys(all[0]).slice(0, 12), ['id', 'mailing', 'member', 'email', 'type', 'status', 'reason', 'category', 'attempts', 'createdAt', 'sentAt', 'messageId']);

  const q = async (...args: string[]) => {
    const r = await mailer(dir, ['log', ...args, '--json']);
    assert.equal(r.code, 0, `log ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as any[];
  };
  assert.deepEqual((await q('--member', '2')).map((s) => s.type), ['reminder', 'invitation']);
  assert.deepEqual((await q('--member', 'ben@example.org', '--type', 'invitation')).map((s) => s.member), ['2']);
  assert.deepEqual((await q('--email', 'cem@example.org')).map((s) => s.member), ['3']);
  assert.equal((await q('--mailing', '2')).length, 1);
  assert.equal((await q('--status', 'sent')).length, 4);
  assert.equal((await q('--status', 'failed')).length, 0);
  assert.equal((await q('--since', '7d')).length, 1);
  assert.equal((await q('--until', '7d')).length, 3);
  assert.equal((await q('--type', 'invitation', '--since', '36h')).length, 0);
  assert.equal((await q('--limit', '2')).length, 2);
  // several values of one filter are read range by range and merged: same rows, same order
  assert.deepEqual((await q('--type', 'invitation', '--type', 'reminder')).map((s) => s.id), all.map((s) => s.id));
  assert.deepEqual((await q('--type', 'reminder', '--type', 'invitation', '--limit', '2')).map((s) => s.id), all.slice(0, 2).map((s) => s.id));
  assert.deepEqual((await q('--member', '3', '--member', '2', '--type', 'invitation')).map((s) => s.member).sort(), ['2', '3']);
  assert.deepEqual((await q('--status', 'sent', '--status', 'failed', '--status', 'sent')).map((s) => s.id), all.map((s) => s.id),
    'a value given twice: each send once');
  assert.equal((await q('--email', 'cem@example.org', '--email', 'CEM@example.org')).length, 1, 'an address in other case is the same address');
  assert.deepEqual((await q('--member', '2', '--member', 'ben@example.org')).map((s) => s.id), (await q('--member', '2')).map((s) => s.id),
    'one member named twice: each send once');
  assert.deepEqual((await q('--status', 'failed', '--status', 'sent', '--mailing', '1')).map((s) => s.id), all.filter((s) => s.mailing === 1).map((s) => s.id));
  const today = new Date();
  const ymd = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, '0')}-${String(today.getDate()).padStart(2, '0')}`;
  assert.equal((await q('--since', ymd, '--until', ymd)).length, 1, 'a date alone includes that whole day');
});

test('log prints a table by default and CSV with --csv', async () => {
  const dir = await history();
  const table = await mailer(dir, ['log', '--type', 'reminder']);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /id\s+time\s+member\s+address\s+type\s+mailing\s+status\s+reason/);
  assert.match(table.stdout, /ben@example\.org\s+reminder\s+2\s+sent/);
  const csv = await mailer(dir, ['log', '--csv', '--limit', '0']);
  const lines = csv.stdout.trim().split('\r\n');
  assert.equal(lines[0], 'id,mailing,member,email,type,status,reason,category,attempts,createdAt,sentAt,messageId,test');
  assert.equal(lines.length, 5);
});

test('bad filter values exit 2 naming the value', async () => {
  const dir = await history();
  const cases: [string[], RegExp][] = [
    [['--since', 'yesterday'], /--since "yesterday" is not a date or a duration/],
    [['--status', 'lost'], /unknown status "lost"/],
    [['--member', 'nobody@example.org'], /no member with id or address "nobody@example.org"/],
    [['--mailing', 'x'], /--mailing takes a number/],
    [['--limit', '-1'], /--limit must be a whole number/],
  ];
  for (const [args, message] of cases) {
    const r = await mailer(dir, ['log', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
});

test('a member found by an address they had before', async () => {
  const dir = await history();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['2', 'Ben', 'ben.neu@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  const sends = JSON.parse((await mailer(dir, ['log', '--member', 'ben@example.org', '--json'])).stdout) as any[];
  assert.equal(sends.length, 2);
});
