/**
 * scale: the send log of years — 10,000,000 sends over two years — and every question asked of
 * it: each `log` filter shape, `why`, `stats --mailing`, `stats --since 30d`, `show`, and the
 * prune of the oldest 1,000,000 sends; each in-process (the app's Store, the SQL shipped) and
 * the commands' peak RSS; and the file size.
 *
 * The database is built synthetically straight through the store (its schema, prepared INSERTs
 * in big transactions), not by sending: members, mailings every day or two over 730 days, the
 * statuses, categories, attempts, bounces, opens and unsubscribes a real log has. Building ten
 * million rows takes many minutes, so the file is kept in a cache folder and reused while the
 * schema version and the size are the same:
 *
 *   BENCH_SENDS=10000000 node dist/test/bench/scale.js          (the default size)
 *   BENCH_SENDS=2000000  node dist/test/bench/scale.js          a smaller log, same shapes
 *   BENCH_CACHE=/var/tmp/mailer-bench  (default: <tmpdir>/mailer-bench-cache)
 *
 * The stored messages are not generated (their size is issue 21's other half): one send in a
 * thousand has one, so `show` has something to read; the file size reported is without them.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Store } from '../../src/store/store.js';
import { migrations } from '../../src/store/schema.js';
import { why } from '../../src/triage/why.js';
import { mailingStats } from '../../src/triage/stats.js';
import { sendDetail } from '../../src/triage/inspect.js';
import { forgetMember } from '../../src/members/forget.js';
import type { SendFilter } from '../../src/domain/types.js';
import {
  expectOk, isMain, mailer, median, medianOf, rng, runAlone, type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const DAY = 86_400_000;
const SPAN_DAYS = 730;
const TYPES = ['newsletter', 'reminder', 'invitation', 'receipt', 'notice'];
const IN_PROCESS_RUNS = 15;
const CLI_RUNS = 3;
const TARGET_MS = 20;
const PRUNE = 1_000_000;
/** Changed when the generated data changes, so a cached file of the old one is not reused. */
const GENERATOR = 'scale-2';

/** The statuses a two-year log ends with; the last mailing is still going. */
const OUTCOMES: { p: number; status: string; category: string | null; reason: string }[] = [
  { p: 0.015, status: 'skipped', category: 'unsubscribed', reason: 'unsubscribed (newsletter)' },
  { p: 0.005, status: 'skipped', category: 'no-address', reason: 'the member has no e-mail address' },
  { p: 0.012, status: 'failed', category: 'unknown-mailbox', reason: '550 5.1.1 <x>: Recipient address rejected: User unknown' },
  { p: 0.003, status: 'failed', category: 'mailbox-full', reason: '552 5.2.2 Mailbox full (gave up after 5 attempts)' },
  { p: 0.008, status: 'bounced', category: 'unknown-mailbox', reason: 'bounced: 5.1.1 user unknown' },
];

interface Built {
  file: string;
  sends: number;
  members: number;
  mailings: number;
  buildMs: number | null;
  now: number;
  member: { id: number; key: string; email: string };
  mailing: number;
  showSend: number;
  pruneUpTo: number;
}

export async function benchScale({ scale, log }: BenchOptions): Promise<BenchResult> {
  const sends = Math.max(20_000, Math.round(Number(process.env.BENCH_SENDS ?? 10_000_000) * scale));
  const figures: Figure[] = [];
  const notes: string[] = [];
  const built = buildCached(sends, log);
  notes.push(`scale: ${sends.toLocaleString('en-US')} sends, ${built.members.toLocaleString('en-US')} members, ${built.mailings} mailings over ${SPAN_DAYS} days` +
    (built.buildMs === null ? ` (cached file ${built.file})` : `, built in ${(built.buildMs / 1000).toFixed(0)} s into ${built.file}`));
  const size = fs.statSync(built.file).size;
  figures.push({ name: 'scale: file size', value: size / 2 ** 20, unit: 'MB', detail: `${(size / sends).toFixed(0)} bytes per send, messages not generated` });
  figures.push({ name: 'scale: file bytes per send (no messages)', value: size / sends, unit: 'B' });

  const { now, member, mailing } = built;
  const shapes: [string, SendFilter][] = [
    ['newest 50 (no filter)', {}],
    ['--member', { memberIds: [member.id] }],
    ['--email', { emails: [member.email] }],
    ['--type', { types: ['invitation'] }],
    ['--type --since 7d', { types: ['invitation'], since: now - 7 * DAY }],
    ['--status failed', { statuses: ['failed'] }],
    ['--status deferred', { statuses: ['deferred'] }],
    ['--status failed --status deferred', { statuses: ['failed', 'deferred'] }],
    ['--status queued', { statuses: ['queued'] }],
    ['--reason mailbox-full', { categories: ['mailbox-full'] }],
    ['--mailing', { mailings: [mailing] }],
    ['--mailing (old one)', { mailings: [Math.max(1, Math.floor(built.mailings / 3))] }],
    ['--mailing --status failed', { mailings: [mailing], statuses: ['failed'] }],
    ['--mailing --status bounced (old one)', { mailings: [Math.max(1, Math.floor(built.mailings / 3))], statuses: ['bounced'] }],
    ['--mailing --reason unknown-mailbox', { mailings: [mailing], categories: ['unknown-mailbox'] }],
    ['--since 30d', { since: now - 30 * DAY }],
    ['--until 1y ago', { until: now - 365 * DAY }],
    ['--since 60d --until 30d', { since: now - 60 * DAY, until: now - 30 * DAY }],
    ['--status failed --since 7d', { statuses: ['failed'], since: now - 7 * DAY }],
    ['--type --status failed', { types: ['reminder'], statuses: ['failed'] }],
    ['--member --since 30d', { memberIds: [member.id], since: now - 30 * DAY }],
    ['--member --status sent', { memberIds: [member.id], statuses: ['sent'] }],
    ['--email --mailing', { emails: [member.email], mailings: [mailing] }],
  ];

  const store = Store.open(built.file);
  const plans: string[] = [];
  try {
    const timed = async (label: string, fn: () => unknown, detail?: (r: unknown) => string) => {
      let result: unknown;
      const { median: ms, all } = await medianOf(IN_PROCESS_RUNS, async () => {
        const t = performance.now();
        result = await fn();
        return performance.now() - t;
      });
      figures.push({ name: `scale in-process: ${label}`, value: ms, unit: 'ms', target: { op: '<=', value: TARGET_MS }, detail: `${detail ? detail(result) : ''} max ${Math.max(...all).toFixed(1)} ms` });
      return ms;
    };
    const explain = (label: string, fn: () => unknown) => {
      for (const { sql, params } of statementsOf(store, fn)) {
        const plan = store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[];
        plans.push(`${label}: ${sql.trim().replace(/\s+/g, ' ').slice(0, 400)}\n${plan.map((p) => `    ${p.detail}`).join('\n')}`);
      }
    };
    for (const [label, filter] of shapes) {
      const run = () => store.log.logSends(filter);
      await timed(`log ${label}`, run, (r) => `${(r as unknown[]).length} rows;`);
      explain(`log ${label}`, run);
    }
    const others: [string, () => unknown][] = [
      ['why (member)', () => why(store, member.key)],
      ['stats --mailing', () => mailingStats(store, { mailings: [mailing] })],
      ['stats --since 30d', () => mailingStats(store, { since: now - 30 * DAY })],
      ['stats --since 7d --type newsletter', () => mailingStats(store, { since: now - 7 * DAY, types: ['newsletter'] })],
      ['mailings (list of 20)', () => store.mailings.list(20)],
      ['show', () => sendDetail(store, built.showSend)],
    ];
    for (const [label, fn] of others) {
      await timed(label, fn);
      explain(label, fn);
    }

    // Prune's work, through the store's connection, in one transaction that is rolled back so
    // the cached file stays as built: the rate is what matters, and a prune in batches does
    // the same deletes in the same index order.
    const pruneStatements = [
      'DELETE FROM attempts WHERE send_id <= ?',
      'DELETE FROM events WHERE send_id <= ?',
      'DELETE FROM bounces WHERE send_id <= ?',
      'DELETE FROM attachments WHERE send_id <= ?',
      'DELETE FROM messages WHERE send_id <= ?',
      'DELETE FROM sends WHERE id <= ?',
    ].map((sql) => store.db.prepare(sql));
    const pruned = Math.min(PRUNE, built.pruneUpTo);
    log(`prune: deleting the oldest ${pruned.toLocaleString('en-US')} sends (rolled back afterwards) …`);
    const t = performance.now();
    store.db.exec('BEGIN IMMEDIATE');
    let deleted = 0;
    try {
      for (const statement of pruneStatements) deleted = statement.run(built.pruneUpTo).changes;
    } finally {
      const ms = performance.now() - t;
      store.db.exec('ROLLBACK');
      figures.push({ name: `scale: prune of the oldest ${pruned.toLocaleString('en-US')} sends`, value: ms / 1000, unit: 's', detail: `${deleted.toLocaleString('en-US')} sends deleted` });
      figures.push({ name: 'scale: prune rate', value: deleted / (ms / 1000), unit: 'sends/s' });
    }

    // forget of one member, for real and committed (secure_delete, then the WAL checkpointed):
    // each run takes the newest member not erased yet, so the cached file serves again. The
    // rolled-back prune left its pages in the WAL: checkpointed first, or forget's own
    // checkpoint would be timed copying them (1.3 s at 2,000,000 sends, against 30–40 ms).
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const victim = store.db.prepare(`SELECT key FROM members WHERE email IS NOT NULL AND key NOT LIKE 'forgotten:%' ORDER BY id DESC LIMIT 1`).pluck().get() as string;
    const startedForget = performance.now();
    const erased = forgetMember(store, victim, { reason: 'bench', now: Date.now(), dryRun: false });
    figures.push({
      name: 'scale in-process: forget one member', value: performance.now() - startedForget, unit: 'ms', target: { op: '<=', value: 1000 },
      detail: `member ${victim}: ${erased.sends} sends, ${erased.addresses} addresses; WAL emptied: ${erased.walEmptied}`,
    });
  } finally {
    store.close();
  }

  // The commands as a person runs them: start-up included; their peak RSS.
  const commands: [string, string[]][] = [
    ['log --member', ['log', '--member', member.key]],
    ['log --since 30d', ['log', '--since', '30d']],
    ['log --status failed --limit 0 --csv', ['log', '--status', 'failed', '--since', '30d', '--limit', '0', '--csv']],
    ['why', ['why', member.key]],
    ['stats --mailing', ['stats', '--mailing', String(mailing)]],
    ['stats --since 30d', ['stats', '--since', '30d']],
    ['show', ['show', String(built.showSend)]],
  ];
  const rss: number[] = [];
  for (const [label, args] of commands) {
    log(`mailer ${args.join(' ')} ×${CLI_RUNS} …`);
    const ms: number[] = [];
    for (let i = 0; i < CLI_RUNS; i++) {
      const r = expectOk(`mailer ${label}`, await mailer([...args, '--db', built.file], { peakRss: true, cwd: os.tmpdir(), env: { ...process.env, NO_COLOR: '1', MAILER_NOW: new Date(now).toISOString() } }));
      ms.push(r.ms);
      if (r.peakRssMb) rss.push(r.peakRssMb);
    }
    figures.push({ name: `scale command: ${label}`, value: median(ms), unit: 'ms', detail: 'start-up included' });
  }
  figures.push({ name: 'scale: peak RSS of the commands', value: rss.length ? Math.max(...rss) : null, unit: 'MB', target: { op: '<=', value: 200 } });
  notes.push(`scale: EXPLAIN QUERY PLAN of every query:\n${plans.join('\n')}`);
  return { figures, notes };
}

/** The cached database of this size and schema version, built first when there is none. */
function buildCached(sends: number, log: (line: string) => void): Built {
  const dir = process.env.BENCH_CACHE ?? path.join(os.tmpdir(), 'mailer-bench-cache');
  fs.mkdirSync(dir, { recursive: true });
  // Keyed by the schema's text and this generator's version: a changed schema builds anew.
  const schema = createHash('sha256').update(migrations.join('\n')).update(GENERATOR).digest('hex').slice(0, 10);
  const file = path.join(dir, `scale-${sends}-${schema}.db`);
  const meta = `${file}.json`;
  if (fs.existsSync(file) && fs.existsSync(meta)) return { ...JSON.parse(fs.readFileSync(meta, 'utf8')), buildMs: null };
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  log(`building ${sends.toLocaleString('en-US')} sends into ${file} (once; later runs reuse it) …`);
  const built = build(file, sends, log);
  fs.writeFileSync(meta, JSON.stringify({ ...built, buildMs: undefined }));
  return built;
}

function build(file: string, sends: number, log: (line: string) => void): Built {
  const t0 = performance.now();
  const random = rng(21);
  const store = Store.open(file);
  const db = store.db;
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  // A mailing to about 20,000 (a tenth of the members at ten million sends), every day or two.
  const mailings = Math.max(20, Math.round(sends / 20_000));
  const avgMailing = sends / mailings;
  const members = Math.max(Math.round(2 * avgMailing), Math.round(sends / 50));
  const now = Date.UTC(2026, 11, 1, 9);
  const start = now - SPAN_DAYS * DAY;

  const insertMember = db.prepare(`INSERT INTO members (id, key, email, name, fields, email_since, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertMailing = db.prepare(`INSERT INTO mailings (id, type, topic, template_path, template, settings, status, selected, created_at, finished_at)
    VALUES (?, ?, ?, ?, 'Subject: Hallo {{name}}\nFrom: Praxis <praxis@example.org>\n\nHallo {{name}}', '{}', ?, ?, ?, ?)`);
  const insertSend = db.prepare(`INSERT INTO sends (id, mailing_id, member_id, email, type, status, category, reason, attempts, token, message_id,
      created_at, sent_at, updated_at, retry_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertAttempt = db.prepare(`INSERT INTO attempts (send_id, at, email, server, outcome, response_code, response, category, permanent)
    VALUES (?, ?, ?, 'smtp.example.org:587', ?, ?, ?, ?, ?)`);
  const insertEvent = db.prepare(`INSERT INTO events (send_id, kind, at, last_at, times) VALUES (?, ?, ?, ?, ?)`);
  const insertBounce = db.prepare(`INSERT INTO bounces (fingerprint, send_id, matched_by, recipient, action, status_code, diagnostic, category, permanent, source, at)
    VALUES (?, ?, 'message-id', ?, 'failed', '5.1.1', 'user unknown', 'unknown-mailbox', 1, 'bounces.mbox', ?)`);
  const insertMessage = db.prepare('INSERT INTO messages (send_id, raw) VALUES (?, ?)');

  const emails: string[] = [];
  db.transaction(() => {
    for (let i = 1; i <= members; i++) {
      const email = `member.${i}@example${i % 97}.org`;
      emails.push(email);
      insertMember.run(i, String(100_000 + i), email, `Member ${i}`, `{"region":"R${i % 5}"}`, start, start, start);
    }
  })();

  // Mailing sizes around the average, summing to `sends`.
  const sizes: number[] = [];
  let left = sends;
  for (let m = 0; m < mailings; m++) {
    const size = m === mailings - 1 ? left : Math.min(left - (mailings - m - 1), Math.max(1, Math.round(avgMailing * (0.3 + 1.4 * random()))));
    sizes.push(Math.min(size, members));
    left -= sizes[m];
  }
  // Whatever the cap left over goes to the mailings with room.
  for (let m = 0; left > 0 && m < mailings; m++) {
    const more = Math.min(left, members - sizes[m]);
    sizes[m] += more;
    left -= more;
  }

  let id = 0;
  let lastReport = performance.now();
  const target = { member: Math.floor(members / 2) };
  let showSend = 0;
  for (let m = 0; m < mailings; m++) {
    const mailingId = m + 1;
    const createdAt = start + Math.floor((m * SPAN_DAYS * DAY) / mailings) + Math.floor(random() * 3_600_000);
    const last = m === mailings - 1;
    const type = TYPES[m % TYPES.length];
    const recent = now - createdAt < 3 * DAY;
    const offset = Math.floor(random() * members);
    // A stride coprime with the member count walks a different subset in a different order.
    let stride = 1 + Math.floor(random() * (members - 1));
    while (gcd(stride, members) !== 1) stride++;
    db.transaction(() => {
      insertMailing.run(mailingId, type, type, `${type}.txt`, last ? 'running' : 'done', sizes[m], createdAt, last ? null : createdAt + DAY);
      for (let i = 0; i < sizes[m]; i++) {
        id++;
        const memberId = 1 + ((offset + i * stride) % members);
        const email = emails[memberId - 1];
        const sentAt = createdAt + 1000 + i * 5;
        let r = random();
        let outcome = null as (typeof OUTCOMES)[number] | null;
        for (const o of OUTCOMES) {
          if (r < o.p) { outcome = o; break; }
          r -= o.p;
        }
        if (last && i > sizes[m] * 0.9) {
          insertSend.run(id, mailingId, memberId, email, type, 'queued', null, null, 0, null, null, createdAt, null, createdAt, null);
          continue;
        }
        if (recent && !outcome && random() < 0.01) {
          insertSend.run(id, mailingId, memberId, email, type, 'deferred', 'greylisted', '451 4.7.1 Greylisted, try again later', 1,
            tokenOf(id, random), `<${id}.${hex(random)}@example.org>`, createdAt, null, sentAt, sentAt + 15 * 60_000);
          insertAttempt.run(id, sentAt, email, 'deferred', 451, '451 4.7.1 Greylisted, try again later', 'greylisted', 0);
          continue;
        }
        if (outcome?.status === 'skipped') {
          insertSend.run(id, mailingId, memberId, email, type, 'skipped', outcome.category, outcome.reason, 0, null, null, createdAt, null, createdAt, null);
          continue;
        }
        const attempts = outcome?.category === 'mailbox-full' ? 5 : 1;
        const status = outcome?.status ?? 'sent';
        const handedOver = status === 'sent' || status === 'bounced';
        insertSend.run(id, mailingId, memberId, email, type, status, outcome?.category ?? null, outcome?.reason ?? '250 2.0.0 Ok: queued as 4XyZ', attempts,
          tokenOf(id, random), `<${id}.${hex(random)}@example.org>`, createdAt, handedOver ? sentAt : null, sentAt, null);
        for (let a = 0; a < attempts; a++) {
          const failedNow = status === 'failed';
          insertAttempt.run(id, sentAt + a * 3_600_000, email, failedNow ? (a === attempts - 1 ? 'failed' : 'deferred') : 'sent',
            failedNow ? 550 : 250, failedNow ? outcome!.reason : '250 2.0.0 Ok: queued as 4XyZ', outcome?.category ?? null, failedNow ? 1 : null);
        }
        if (status === 'bounced') insertBounce.run(`fp-${id}`, id, email, sentAt + 60_000);
        if (handedOver && random() < 0.3) {
          const at = sentAt + Math.floor(random() * 2 * DAY);
          insertEvent.run(id, 'open', at, at + Math.floor(random() * DAY), 1 + Math.floor(random() * 3));
        }
        if (handedOver && random() < 0.003) insertEvent.run(id, 'unsubscribe', sentAt + DAY, sentAt + DAY, 1);
        if (id % 1000 === 0) insertMessage.run(id, Buffer.from(`Subject: Hallo Member ${memberId}\r\nFrom: Praxis <praxis@example.org>\r\nTo: ${email}\r\n\r\nHallo\r\n`));
        if (memberId === target.member && id % 1000 === 0) showSend = id;
      }
    })();
    if (performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      log(`  ${id.toLocaleString('en-US')} of ${sends.toLocaleString('en-US')} sends, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  if (showSend === 0) showSend = Math.floor(id / 2000) * 1000;
  // The oldest million (a tenth of the log at ten million; a tenth of a smaller one).
  const pruneUpTo = Math.min(PRUNE, Math.floor(id / 10));
  db.pragma('wal_checkpoint(TRUNCATE)');
  store.close();
  const member = { id: target.member, key: String(100_000 + target.member), email: emails[target.member - 1] };
  return { file, sends: id, members, mailings, buildMs: performance.now() - t0, now, member, mailing: mailings, showSend, pruneUpTo };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function tokenOf(id: number, random: () => number): string {
  let s = id.toString(36);
  for (let i = 0; i < 23; i++) s += B64[Math.floor(random() * 64)];
  return s;
}
function hex(random: () => number): string {
  return Math.floor(random() * 2 ** 48).toString(16).padStart(12, '0');
}

interface Statement { sql: string; params: unknown[] }

/** The statements a call ran through the store's prepared statements (all and get), with their parameters. */
function statementsOf(store: Store, fn: () => unknown): Statement[] {
  const seen: Statement[] = [];
  const db = store.db;
  const prepare = db.prepare;
  const proto = Object.getPrototypeOf(db.prepare('SELECT 1')) as Record<string, (...a: unknown[]) => unknown>;
  const originals = { all: proto.all, get: proto.get, iterate: proto.iterate };
  for (const name of ['all', 'get', 'iterate'] as const) {
    proto[name] = function (this: { source: string; reader: boolean }, ...params: unknown[]) {
      if (this.reader) seen.push({ sql: this.source, params });
      return originals[name].apply(this, params);
    };
  }
  try {
    fn();
  } finally {
    Object.assign(proto, originals);
    db.prepare = prepare;
  }
  // One plan per distinct statement.
  const unique = new Map<string, Statement>();
  for (const s of seen) if (!unique.has(s.sql)) unique.set(s.sql, s);
  return [...unique.values()];
}

if (isMain(import.meta.url)) await runAlone('scale', benchScale);
