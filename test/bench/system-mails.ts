/**
 * system mails: while `mailer send` works off 20,000 bulk mails into smtp-sink, 20 system mails
 * are queued by other processes (`send --to`, one every 150 ms); each must be delivered by the
 * running send within 2 s of being queued. The figures are from the database: each system
 * send's sent_at minus its created_at, and whether the bulk mailing was still running then.
 */
import path from 'node:path';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import {
  MEMBER_HEADER, ensureTool, expectOk, freePort, isMain, mailer, median, memberLine, rng, runAlone,
  waitForPort, withTempDir, writeLines, type BenchOptions, type BenchResult, type Figure,
} from './lib.js';
import { CONCURRENCY, startSink, stopSink, TEMPLATE } from './send.js';

const MAILS = 20_000;
const SYSTEM_MAILS = 20;
const EVERY_MS = 150;

const ORDER = `Subject: Bestellung {{order.number}}
From: Shop <shop@example.org>
Type: order

Hallo {{order.name}}, danke für Ihre Bestellung {{order.number}}.
`;

export async function benchSystemMails({ scale, log }: BenchOptions): Promise<BenchResult> {
  const mails = Math.max(2000, Math.round(MAILS * scale));
  const sink = ensureTool('smtp-sink', 'postfix', log, 'postfix postfix/main_mailer_type select No configuration');
  const name = 'system mails: slowest delivery while a bulk send runs';
  if (!sink.path) return { figures: [{ name, value: null, unit: 'ms', detail: sink.reason }], notes: [] };
  return withTempDir('system', async (dir) => {
    const port = await freePort();
    const server = startSink(sink.path!, port);
    try {
      await waitForPort(port);
      const random = rng(7);
      await writeLines(path.join(dir, 'members.csv'), MEMBER_HEADER, mails, (i) => memberLine(i, random));
      fs.writeFileSync(path.join(dir, 'bench.txt'), TEMPLATE);
      fs.writeFileSync(path.join(dir, 'order.txt'), ORDER);
      const env = { ...process.env, NO_COLOR: '1', MAILER_SMTP_URL: `smtp://127.0.0.1:${port}`, MAILER_CONCURRENCY: String(CONCURRENCY) };
      expectOk('import', await mailer(['import', 'members.csv'], { cwd: dir, env }));
      log(`bulk send of ${mails} with ${SYSTEM_MAILS} system mails queued during it …`);
      const bulk = mailer(['send', 'bench.txt'], { cwd: dir, env });
      await waitForLock(path.join(dir, 'mailer.db'));
      const queued: Promise<unknown>[] = [];
      for (let i = 0; i < SYSTEM_MAILS; i++) {
        const data = path.join(dir, `order-${i}.json`);
        fs.writeFileSync(data, JSON.stringify({ order: { number: String(1000 + i), name: `Kunde ${i}` } }));
        queued.push(mailer(['send', 'order.txt', '--to', `kunde${i}@example.org`, '--data', data, '--key', `o-${i}`, '--json'], { cwd: dir, env }));
        await new Promise((r) => setTimeout(r, EVERY_MS));
      }
      const answers = (await Promise.all(queued)) as { stdout: string }[];
      const bulkRun = expectOk('bulk send', await bulk);
      const statuses = answers.map((a) => JSON.parse(a.stdout).status as string);
      const db = new Database(path.join(dir, 'mailer.db'), { readonly: true });
      const rows = db.prepare(`SELECT created_at, sent_at FROM sends WHERE data IS NOT NULL ORDER BY id`).all() as { created_at: number; sent_at: number | null }[];
      const bulkEnd = (db.prepare(`SELECT max(sent_at) AS t FROM sends WHERE data IS NULL`).get() as { t: number }).t;
      db.close();
      const waits = rows.map((r) => (r.sent_at === null ? Infinity : r.sent_at - r.created_at));
      const beforeEnd = rows.filter((r) => r.sent_at !== null && r.sent_at < bulkEnd).length;
      const rate = mails / (bulkRun.ms / 1000);
      const figures: Figure[] = [
        { name, value: Math.max(...waits), unit: 'ms', target: { op: '<=', value: 2000 }, detail: `median ${median(waits).toFixed(0)} ms` },
        { name: 'system mails: delivered by the running bulk send', value: beforeEnd, unit: `of ${SYSTEM_MAILS}`, target: { op: '>=', value: SYSTEM_MAILS } },
        { name: 'system mails: bulk send msg/s meanwhile', value: rate, unit: 'msg/s' },
      ];
      const notes = [`system mails: ${SYSTEM_MAILS} queued (${statuses.filter((s) => s === 'queued').length} answered queued) during a bulk send of ${mails}: ` +
        `waits ${waits.map((w) => w.toFixed(0)).join(', ')} ms; bulk ${(bulkRun.ms / 1000).toFixed(2)} s wall.`];
      return { figures, notes };
    } finally {
      await stopSink(server);
    }
  });
}

/** The bulk send holds the send lock: from then on a system mail is queued for it. */
async function waitForLock(file: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (fs.existsSync(file)) {
      try {
        const db = new Database(file, { readonly: true, timeout: 1000 });
        const held = db.prepare(`SELECT count(*) AS n FROM locks`).get() as { n: number };
        const queued = db.prepare(`SELECT count(*) AS n FROM sends WHERE status = 'sent'`).get() as { n: number };
        db.close();
        if (held.n > 0 && queued.n > 0) return;
      } catch { /* not made yet */ }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the bulk send did not start within 60 s');
}

if (isMain(import.meta.url)) await runAlone('system-mails', benchSystemMails);
