/**
 * privacy: `forget` of one member and `prune` by retention on the send log of 1,000,000 sends
 * the log benchmark builds (with stored messages added: 200,000 of about 1 KB, and every one of
 * the member's). forget must stay within 1 s as a whole command, with no VACUUM of the file:
 * secure_delete (on every connection since the database was made) zeroes what it deletes, and
 * a wal_checkpoint(TRUNCATE) takes the WAL's older copies away.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { fillSendLog } from './log.js';
import { Store } from '../../src/store/store.js';
import { forgetMember } from '../../src/members/forget.js';
import { prune } from '../../src/send/prune.js';
import {
  MEMBER_HEADER, expectOk, isMain, mailer, memberLine, rng, runAlone, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const SENDS = 1_000_000;
const MEMBERS = 50_000;
const MESSAGES = 200_000;

export async function benchPrivacy({ scale, log }: BenchOptions): Promise<BenchResult> {
  const sends = Math.max(10_000, Math.round(SENDS * scale));
  const members = Math.max(1000, Math.round(MEMBERS * scale));
  const messages = Math.max(2000, Math.round(MESSAGES * scale));
  return withTempDir('privacy', async (dir) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const db = path.join(dir, 'bench.db');
    const csv = path.join(dir, 'members.csv');
    const random = rng(5);
    await writeLines(csv, MEMBER_HEADER, members, (i) => memberLine(i, random));
    expectOk('mailer import', await mailer(['import', csv, '--db', db, '--json']));
    log(`inserting ${sends.toLocaleString('en-US')} sends and ${messages.toLocaleString('en-US')} messages …`);
    const built = fillSendLog(db, sends, Date.now(), random);
    addMessages(db, messages, built.member.id);
    const size = fs.statSync(db).size;
    notes.push(`privacy: ${sends.toLocaleString('en-US')} sends, ${messages.toLocaleString('en-US')} stored messages (plus the member's), database ${(size / 1e6).toFixed(0)} MB; member ${built.member.key} has ${built.member.sends} sends.`);

    log(`mailer forget ${built.member.key} …`);
    const f = expectOk('mailer forget', await mailer(['forget', built.member.key, '--reason', 'bench', '--db', db, '--json'], { cwd: dir }));
    const erased = JSON.parse(f.stdout);
    figures.push({ name: 'forget one member (command)', value: f.ms, unit: 'ms', target: { op: '<=', value: 1000 }, detail: `${erased.sends} sends, ${erased.messages} messages; no VACUUM` });
    const wal = fs.existsSync(`${db}-wal`) ? fs.statSync(`${db}-wal`).size : 0;
    notes.push(`privacy: after forget the WAL is ${wal} bytes; the database file ${(fs.statSync(db).size / 1e6).toFixed(0)} MB (not rewritten).`);

    // In-process as well: the work alone, without node's start-up (which a loaded machine
    // stretches most). A second member, one of the 200,000 messages' sends among theirs.
    const store = Store.open(db);
    try {
      const other = store.db.prepare('SELECT m.key FROM members m JOIN sends s ON s.member_id = m.id JOIN messages g ON g.send_id = s.id WHERE m.key != ? LIMIT 1').get(built.member.key) as { key: string };
      const t = performance.now();
      const r = forgetMember(store, other.key, { reason: 'bench', now: Date.now(), dryRun: false });
      figures.push({ name: 'forget one member (in-process)', value: performance.now() - t, unit: 'ms', target: { op: '<=', value: 1000 }, detail: `${r.sends} sends, ${r.messages} messages, WAL emptied: ${r.walEmptied}, VACUUM: ${r.vacuumMs === null ? 'none' : `${r.vacuumMs} ms`}` });
      const cpu = process.cpuUsage();
      const t2 = performance.now();
      const dry = prune(store, { messages: 45 * 86_400_000, log: 60 * 86_400_000 }, { now: Date.now(), dryRun: true });
      const used = process.cpuUsage(cpu);
      figures.push({ name: 'prune --dry-run (in-process)', value: performance.now() - t2, unit: 'ms', detail: `${dry.messages} messages, ${dry.sends} send rows would go; CPU ${((used.user + used.system) / 1000).toFixed(0)} ms` });
    } finally {
      store.close();
    }

    const config = path.join(dir, 'mailer.json');
    fs.writeFileSync(config, JSON.stringify({ retention: { messages: '45d' } }));
    log('mailer prune (messages 45d) …');
    const p1 = expectOk('mailer prune', await mailer(['prune', '--db', db, '--config', config, '--json'], { cwd: dir }));
    figures.push({ name: 'prune messages older than 45d (command)', value: p1.ms, unit: 'ms', detail: `${JSON.parse(p1.stdout).messages} messages` });
    fs.writeFileSync(config, JSON.stringify({ retention: { messages: '45d', log: '60d' } }));
    log('mailer prune (log 60d) …');
    const p2 = expectOk('mailer prune', await mailer(['prune', '--db', db, '--config', config, '--json'], { cwd: dir }));
    figures.push({ name: 'prune send rows older than 60d (command)', value: p2.ms, unit: 'ms', detail: `${JSON.parse(p2.stdout).sends} send rows` });
    const again = expectOk('mailer prune', await mailer(['prune', '--db', db, '--config', config, '--json'], { cwd: dir }));
    figures.push({ name: 'prune again, nothing to do (command)', value: again.ms, unit: 'ms', target: { op: '<=', value: 1000 } });
    return { figures, notes };
  });
}

/** A message of about 1 KB for the member's sends and for `n` others, as the send path stores them. */
function addMessages(file: string, n: number, memberId: number): void {
  const db = new Database(file);
  db.pragma('secure_delete = ON');
  const body = Buffer.from(`Subject: Bench\r\nFrom: bench@example.org\r\n\r\n${'Hallo, dies ist eine Nachricht. '.repeat(30)}\r\n`);
  const insert = db.prepare('INSERT OR REPLACE INTO messages (send_id, raw) VALUES (?, ?)');
  const max = (db.prepare('SELECT max(id) AS n FROM sends').get() as { n: number }).n;
  db.transaction(() => {
    for (const r of db.prepare('SELECT id FROM sends WHERE member_id = ?').all(memberId) as { id: number }[]) insert.run(r.id, body);
    for (let i = 0; i < n; i++) insert.run(1 + Math.floor((i * max) / n), body);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

if (isMain(import.meta.url)) await runAlone('privacy', benchPrivacy);
