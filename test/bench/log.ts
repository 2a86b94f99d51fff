/**
 * log: the three questions of delivery triage — one member's mails, a type in the last week,
 * everything that failed — on a send log of 1,000,000 rows. Measured twice: in-process through
 * the app's Store (the query alone) and as a whole `mailer log` command (what a person waits for).
 *
 * Sending a million mails to build the log would take the benchmark hours, so only the schema
 * and the members come from the CLI; the sends are bulk-inserted with SQL in one transaction.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Store } from '../../src/store/store.js';
import { why } from '../../src/triage/why.js';
import { mailingStats } from '../../src/triage/stats.js';
import type { SendFilter } from '../../src/domain/types.js';
import {
  MEMBER_HEADER, expectOk, isMain, mailer, medianOf, memberLine, rng, runAlone, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const SENDS = 1_000_000;
const MEMBERS = 50_000;
const MAILINGS = 20;
const DAY = 86_400_000;
const SPAN = 90 * DAY;
const TYPES = ['invitation', 'newsletter', 'reminder', 'receipt', 'notice'];
const IN_PROCESS_RUNS = 20;
const CLI_RUNS = 5;

interface Shape {
  label: string;
  filter: SendFilter;
  cli: string[];
}

export async function benchLog({ scale, log }: BenchOptions): Promise<BenchResult> {
  const sends = Math.max(10_000, Math.round(SENDS * scale));
  const members = Math.max(1000, Math.round(MEMBERS * scale));
  return withTempDir('log', async (dir) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const db = path.join(dir, 'bench.db');
    const csv = path.join(dir, 'members.csv');
    const random = rng(3);
    await writeLines(csv, MEMBER_HEADER, members, (i) => memberLine(i, random));
    log(`mailer import of ${members} members (for the schema and member ids) …`);
    expectOk('mailer import', await mailer(['import', csv, '--db', db, '--json']));

    const now = Date.now();
    log(`inserting ${sends.toLocaleString('en-US')} sends …`);
    const built = fillSendLog(db, sends, now, random);
    notes.push(`log: ${sends.toLocaleString('en-US')} sends over ${members.toLocaleString('en-US')} members and ${MAILINGS} mailings, bulk-inserted in ${(built.ms / 1000).toFixed(1)} s; ` +
      `member ${built.member.key} has ${built.member.sends} sends, ${built.typeRecent} invitation sends in the last 7 days, ${built.failed} failed.`);

    const shapes: Shape[] = [
      { label: 'member', filter: { memberIds: [built.member.id] }, cli: ['--member', built.member.key] },
      { label: 'type+since 7d', filter: { types: ['invitation'], since: now - 7 * DAY }, cli: ['--type', 'invitation', '--since', '7d'] },
      { label: 'status failed', filter: { statuses: ['failed'] }, cli: ['--status', 'failed'] },
      // the other filters, each alone, and the rest of the combinations a triage session uses
      { label: 'newest 50 (no filter)', filter: {}, cli: [] },
      { label: 'email', filter: { emails: [built.member.email] }, cli: ['--email', built.member.email] },
      { label: 'mailing', filter: { mailings: [built.mailing] }, cli: ['--mailing', String(built.mailing)] },
      { label: 'status failed+deferred', filter: { statuses: ['failed', 'deferred'] }, cli: ['--status', 'failed', '--status', 'deferred'] },
      { label: 'until 30d ago', filter: { until: now - 30 * DAY }, cli: ['--until', new Date(now - 30 * DAY).toISOString().slice(0, 10)] },
      { label: 'mailing+status failed', filter: { mailings: [built.mailing], statuses: ['failed'] }, cli: ['--mailing', String(built.mailing), '--status', 'failed'] },
      { label: 'member+since 30d', filter: { memberIds: [built.member.id], since: now - 30 * DAY }, cli: ['--member', built.member.key, '--since', '30d'] },
    ];

    // In-process: the app's own Store, so the SQL measured is the SQL shipped. Its statements
    // are private; prepare is watched to get each shape's SQL and parameters for EXPLAIN.
    const store = Store.open(db);
    const seen = watchStatements(store.db);
    const slow: ({ shape: Shape } & Statement)[] = [];
    try {
      for (const shape of shapes) {
        let rows = 0;
        const { median, all } = await medianOf(IN_PROCESS_RUNS, () => {
          const t = performance.now();
          rows = store.log.logSends(shape.filter).length;
          return performance.now() - t;
        });
        if (rows === 0) throw new Error(`log ${shape.label}: no rows; the generated log does not fit the query`);
        figures.push({ name: `log in-process: ${shape.label}`, value: median, unit: 'ms', target: { op: '<=', value: 20 }, detail: `${rows} rows, min ${Math.min(...all).toFixed(1)} ms` });
        if (median > 20) slow.push({ shape, ...seen.statementOf(() => store.log.logSends(shape.filter)) });
      }

      // As a command: start-up, settings, member lookup, query, JSON out.
      for (const shape of shapes) {
        log(`mailer log ${shape.cli.join(' ')} ×${CLI_RUNS} …`);
        let rows = 0;
        const { median } = await medianOf(CLI_RUNS, async () => {
          const r = expectOk(`mailer log ${shape.cli.join(' ')}`, await mailer(['log', ...shape.cli, '--db', db, '--json'], { cwd: dir }));
          rows = (JSON.parse(r.stdout) as unknown[]).length;
          return r.ms;
        });
        figures.push({ name: `log command: ${shape.label}`, value: median, unit: 'ms', target: { op: '<=', value: 250 }, detail: `${rows} rows` });
        if (median > 250 && !slow.some((s) => s.shape === shape)) {
          // The command is slow but the query was not: the plan still tells whether SQL is to blame.
          slow.push({ shape, ...seen.statementOf(() => store.log.logSends(shape.filter)) });
        }
      }

      // why and stats: the member's screen, and one mailing's counts, in-process and as commands.
      const inProcess: [string, () => unknown][] = [
        ['why (member)', () => why(store, built.member.key)],
        ['stats --mailing (one mailing)', () => mailingStats(store, { mailings: [built.mailing] })],
        ['stats --since 7d', () => mailingStats(store, { since: now - 7 * DAY })],
      ];
      for (const [label, fn] of inProcess) {
        const { median } = await medianOf(IN_PROCESS_RUNS, () => {
          const t = performance.now();
          fn();
          return performance.now() - t;
        });
        figures.push({ name: `${label} in-process`, value: median, unit: 'ms', target: { op: '<=', value: 20 } });
      }
      for (const [label, args] of [['why', ['why', built.member.key]], ['stats --mailing', ['stats', '--mailing', String(built.mailing)]]] as [string, string[]][]) {
        log(`mailer ${args.join(' ')} ×${CLI_RUNS} …`);
        const { median } = await medianOf(CLI_RUNS, async () => expectOk(`mailer ${label}`, await mailer([...args, '--db', db, '--json'], { cwd: dir })).ms);
        figures.push({ name: `${label} command`, value: median, unit: 'ms', target: { op: '<=', value: 250 } });
      }

      for (const { shape, sql, params } of slow) {
        const plan = store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
        notes.push(`log: EXPLAIN QUERY PLAN for "${shape.label}" (slow):\n${sql.trim().replace(/\s+/g, ' ')}\n  params ${JSON.stringify(params)}\n${plan.map((p) => `  ${p.detail}`).join('\n')}`);
      }
    } finally {
      store.close();
    }
    return { figures, notes };
  });
}

/**
 * The log a year of a club's mailings leaves, compressed into 90 days: rows appended in time
 * order (ids rise with created_at, as the queue writes them), 2 % failed, 1 % deferred.
 */
export function fillSendLog(file: string, sends: number, now: number, random: () => number) {
  const t0 = performance.now();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('cache_size = -262144'); // 256 MB: building the seven indexes is the slow part
  const memberRows = db.prepare('SELECT id, key, email FROM members ORDER BY id').all() as { id: number; key: string; email: string }[];
  const start = now - SPAN;
  const mailingIds: number[] = [];
  const insertMailing = db.prepare(`
    INSERT INTO mailings (type, template_path, template, status, selected, created_at, finished_at)
    VALUES (?, 'bench.txt', 'Subject: Bench\nFrom: bench@example.org\n\nHallo {{name}}', 'done', ?, ?, ?)`);
  const insertSend = db.prepare(`
    INSERT INTO sends (mailing_id, member_id, email, type, test, status, category, reason, attempts, created_at, sent_at, updated_at)
    VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)`);
  const perMember = new Map<number, number>();
  let typeRecent = 0;
  let failed = 0;
  db.transaction(() => {
    for (let m = 0; m < MAILINGS; m++) {
      const at = start + Math.floor((m * SPAN) / MAILINGS);
      mailingIds.push(Number(insertMailing.run(TYPES[m % TYPES.length], Math.round(sends / MAILINGS), at, at + DAY).lastInsertRowid));
    }
    for (let i = 0; i < sends; i++) {
      const createdAt = start + Math.floor((i * SPAN) / sends);
      const m = Math.floor(random() * MAILINGS);
      const member = memberRows[Math.floor(random() * memberRows.length)];
      const type = TYPES[m % TYPES.length];
      const r = random();
      const [status, category, reason, attempts] =
        r < 0.02 ? ['failed', 'unknown-mailbox', '550 5.1.1 <x>: Recipient address rejected: User unknown', 1]
          : r < 0.03 ? ['deferred', 'greylisted', '451 4.7.1 Greylisted, try again later', 2]
            : ['sent', null, '250 2.0.0 Ok: queued', 1];
      if (status === 'failed') failed++;
      if (type === 'invitation' && createdAt >= now - 7 * DAY) typeRecent++;
      perMember.set(member.id, (perMember.get(member.id) ?? 0) + 1);
      insertSend.run(mailingIds[m], member.id, member.email, type, status, category, reason, attempts,
        createdAt, status === 'sent' ? createdAt + 2000 : null, createdAt + 2000);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  // A member in the middle of the list: a typical one, not the first row of any index.
  const target = memberRows[memberRows.length >> 1];
  return {
    ms: performance.now() - t0,
    mailing: mailingIds[mailingIds.length - 1],
    member: { id: target.id, key: target.key, email: target.email, sends: perMember.get(target.id) ?? 0 },
    typeRecent,
    failed,
  };
}

interface Statement { sql: string; params: unknown[] }

/** Wraps `db.prepare` so that the SQL and parameters a call ran can be asked for afterwards. */
function watchStatements(db: Database.Database): { statementOf(fn: () => unknown): Statement } {
  let last: Statement | null = null;
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    const all = statement.all.bind(statement);
    statement.all = ((...params: unknown[]) => {
      last = { sql, params };
      return all(...params);
    }) as typeof statement.all;
    return statement;
  }) as typeof db.prepare;
  return {
    statementOf(fn) {
      last = null;
      fn();
      if (!last) throw new Error('the call ran no statement through all(): the Store changed, adapt watchStatements');
      return last;
    },
  };
}

if (isMain(import.meta.url)) await runAlone('log', benchLog);
