/**
 * storage: what a send costs on disk, on a log of 1,000,000 sends of examples/newsletter.txt
 * (+ .html, the footer, examples/mailer.json: the measurement), and whether space freed
 * by deleting old sends is used again.
 *
 * The members and one mailing come from the CLI; the sends are inserted with SQL, and each
 * one's message is rendered and composed by the app's own code for its member and recorded
 * through the Store's recordSent (attempt, message compressed as shipped), in transactions of
 * a few thousand: sending a million mails for real would take hours. 3 % are recorded as
 * failed or deferred instead, without a message.
 *
 * Then the oldest half is deleted (as `prune` does: attempts, messages, sends), and as many
 * sends again are added: the file should take them in the pages the old ones freed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Store } from '../../src/store/store.js';
import { composeFor, dictionaryMessage, mailingContext, mailingTemplate, type MailingContext } from '../../src/send/mailing.js';
import { memberView, render } from '../../src/send/template.js';
import { LinkSigner } from '../../src/domain/token.js';
import { sendDetail, storedMessage } from '../../src/triage/inspect.js';
import {
  MEMBER_HEADER, ROOT, expectOk, isMain, mailer, medianOf, memberLine, rng, runAlone, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const SENDS = 1_000_000;
const MEMBERS = 50_000;
const MAILINGS = 20;
const DAY = 86_400_000;
const SPAN = 365 * DAY;
const CHUNK = 5000;

interface Member { id: number; key: string; name: string; email: string; fields: string }

export async function benchStorage({ scale, log }: BenchOptions): Promise<BenchResult> {
  const sends = Math.max(20_000, Math.round(SENDS * scale));
  const members = Math.max(1000, Math.round(MEMBERS * scale));
  return withTempDir('storage', async (dir) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const db = path.join(dir, 'mailer.db');
    const examples = path.join(ROOT, 'examples');
    for (const f of ['newsletter.txt', 'newsletter.html', 'footer.txt']) fs.copyFileSync(path.join(examples, f), path.join(dir, f));
    const settings = JSON.parse(fs.readFileSync(path.join(examples, 'mailer.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'mailer.json'), JSON.stringify({ ...settings, footer: 'footer.txt' }));
    const random = rng(5);
    // The example's fields (region, erinnerungsmonat) as the newsletter uses them.
    await writeLines(path.join(dir, 'members.csv'), MEMBER_HEADER, members, (i) => memberLine(i, random));
    log(`mailer import of ${members} members, one newsletter mailing …`);
    expectOk('mailer import', await mailer(['import', 'members.csv', '--json'], { cwd: dir }));
    expectOk('mailer send', await mailer(['send', 'newsletter.txt', '--member', '100000', '--json'], { cwd: dir }));

    const store = Store.open(db);
    try {
      // The mailing the CLI made, nineteen times more (its template and settings as stored).
      for (let m = 1; m < MAILINGS; m++) {
        store.db.prepare(`INSERT INTO mailings (type, topic, required, sender, template_path, template, html_template, footer, settings, test, status, selected, created_at)
          SELECT type, topic, required, sender, template_path, template, html_template, footer, settings, test, 'done', selected, created_at FROM mailings WHERE id = 1`).run();
      }
      const memberRows = store.db.prepare('SELECT id, key, name, email, fields FROM members ORDER BY id').all() as Member[];
      const filler = new Filler(store, memberRows, rng(6));
      const base = fileBytes(store, db);

      log(`${sends.toLocaleString('en-US')} sends, each message composed and recorded …`);
      const built = filler.fill(sends, log);
      const full = fileBytes(store, db);
      const perSend = (full - base) / sends;
      const messagesBytes = tableBytes(store, 'messages');
      const live = liveSends(store);
      notes.push(`storage: ${live.toLocaleString('en-US')} sends (${built.withMessage.toLocaleString('en-US')} with a message, ${MAILINGS} mailings, ${members.toLocaleString('en-US')} members) ` +
        `built in ${(built.ms / 1000).toFixed(0)} s; raw message ${Math.round(built.rawBytes / built.withMessage)} bytes on average, stored ${Math.round(built.storedBytes / built.withMessage)}; ` +
        `file ${(full / 1e6).toFixed(1)} MB (${(base / 1e6).toFixed(1)} MB before the sends); per table and index (dbstat, bytes/send): ${breakdown(store, live)}.`);
      figures.push(
        { name: 'storage: file bytes/send (after a checkpoint)', value: full / live, unit: 'B', target: { op: '<=', value: 900 }, detail: `${(full / 1e6).toFixed(0)} MB / ${live} sends` },
        { name: 'storage: of it the sends alone (file growth / sends)', value: perSend, unit: 'B' },
        { name: 'storage: messages table bytes/send (dbstat)', value: messagesBytes / live, unit: 'B', target: { op: '<=', value: 150 }, detail: `raw ${Math.round(built.rawBytes / built.withMessage)} B/message` },
      );

      // show: the message read back and parsed (show), and the bytes alone (show --raw).
      const ids = Array.from({ length: 20 }, () => built.sentIds[Math.floor(random() * built.sentIds.length)]);
      for (const [label, fn] of [['show <id>', (id: number) => sendDetail(store, id)], ['show --raw <id>', (id: number) => storedMessage(store, id)]] as const) {
        let i = 0;
        const { median } = await medianOf(ids.length, async () => {
          const t = performance.now();
          await fn(ids[i++ % ids.length]);
          return performance.now() - t;
        });
        figures.push({ name: `storage: ${label} in-process`, value: median, unit: 'ms', target: { op: '<=', value: 20 } });
      }

      // Space reuse: the oldest half deleted as prune deletes it, then as many sends again.
      const half = Math.floor(sends / 2);
      log(`deleting the oldest ${half.toLocaleString('en-US')} sends, then ${half.toLocaleString('en-US')} new ones …`);
      const t0 = performance.now();
      const pruned = prune(store, half);
      const pruneMs = performance.now() - t0;
      const afterPrune = fileBytes(store, db);
      const free = store.db.pragma('freelist_count', { simple: true }) as number;
      filler.fill(half, log);
      const afterRefill = fileBytes(store, db);
      const growth = afterRefill - afterPrune;
      const newFile = perSend * half;
      figures.push({
        name: `storage: growth by ${half.toLocaleString('en-US')} sends after deleting as many, / a new file's`, value: (100 * growth) / newFile, unit: '%',
        target: { op: '<=', value: 10 }, detail: `${(growth / 1e6).toFixed(1)} MB vs ${(newFile / 1e6).toFixed(1)} MB`,
      });
      notes.push(`storage: deleting ${pruned.toLocaleString('en-US')} sends took ${(pruneMs / 1000).toFixed(1)} s and freed ${free.toLocaleString('en-US')} pages ` +
        `(auto_vacuum ${store.autoVacuum()}, the file stays ${(afterPrune / 1e6).toFixed(1)} MB); ${half.toLocaleString('en-US')} new sends then grew it by ${(growth / 1e6).toFixed(1)} MB ` +
        `(${(afterRefill / 1e6).toFixed(1)} MB), where a new file grows by ${(newFile / 1e6).toFixed(1)} MB; ${store.db.pragma('freelist_count', { simple: true })} pages still free.`);
    } finally {
      store.close();
    }
    return { figures, notes };
  });
}

/** Sends appended in time order, each one's message composed for its member as a run does. */
class Filler {
  private readonly contexts = new Map<number, MailingContext>();
  private readonly signer: LinkSigner;
  private readonly mailings: number[];
  private next = 0;
  private readonly insert;

  constructor(private readonly store: Store, private readonly members: Member[], private readonly random: () => number) {
    this.signer = new LinkSigner(store.triage.linkSecret());
    this.mailings = (store.db.prepare('SELECT id FROM mailings ORDER BY id').all() as { id: number }[]).map((r) => r.id);
    for (const id of this.mailings) {
      const mailing = store.mailings.mailing(id)!;
      const ctx = mailingContext(mailingTemplate(mailing), mailing.settings, mailing.test, this.signer.mailingBoundary(id));
      this.contexts.set(id, ctx);
      store.sends.ensureDictionary(id, () => dictionaryMessage(ctx, false));
    }
    this.insert = store.db.prepare(`INSERT INTO sends (mailing_id, member_id, email, type, status, attempts, created_at, updated_at)
      VALUES (?, ?, ?, 'newsletter', 'queued', 1, ?, ?)`);
  }

  fill(count: number, log: (line: string) => void) {
    const t0 = performance.now();
    const start = Date.now() - SPAN;
    let rawBytes = 0;
    let withMessage = 0;
    const sentIds: number[] = [];
    const lengthOf = this.store.db.prepare('SELECT length(raw) AS n FROM messages WHERE send_id = ?').pluck();
    let storedBytes = 0;
    for (let done = 0; done < count; done += CHUNK) {
      this.store.transaction(() => {
        for (let i = done; i < Math.min(count, done + CHUNK); i++) {
          const n = this.next++;
          const at = start + Math.floor((n * SPAN) / (2 * SENDS));
          const mailing = this.mailings[Math.floor((n * this.mailings.length) / (2 * SENDS)) % this.mailings.length];
          const member = this.members[Math.floor(this.random() * this.members.length)];
          const id = Number(this.insert.run(mailing, member.id, member.email, at, at).lastInsertRowid);
          const r = this.random();
          if (r < 0.03) {
            this.store.sends.recordUnsent({
              id, email: member.email, server: 'mx.example.org', responseCode: 550, enhancedCode: '5.1.1',
              response: '550 5.1.1 <x>: Recipient address rejected: User unknown', category: 'unknown-mailbox',
              permanent: true, status: r < 0.02 ? 'failed' : 'deferred', retryAt: r < 0.02 ? null : at + DAY, now: at + 2000,
            });
            continue;
          }
          const ctx = this.contexts.get(mailing)!;
          const view = memberView({ id: member.id, key: member.key, email: member.email, name: member.name, fields: JSON.parse(member.fields), emailProblem: null }, member.email, 'T'.repeat(22));
          const rendered = render(ctx.template, view, { allowEmpty: true });
          if (!rendered.ok) throw new Error(rendered.reason);
          const composed = composeFor(ctx, rendered.message, { name: member.name, address: member.email }, id, (s) => this.signer.mailLinks(s), 10 << 20);
          if (!composed.ok) throw new Error(composed.skip.reason);
          this.store.sends.recordSent({ id, email: member.email, server: 'mx.example.org', messageId: composed.messageId, raw: composed.raw, response: '250 2.0.0 Ok: queued as 4B7C21234', now: at + 2000 });
          rawBytes += composed.raw.length;
          withMessage++;
          if (withMessage % 97 === 0) storedBytes += 97 * (lengthOf.get(id) as number);
          if (sentIds.length < 10_000) sentIds.push(id);
        }
      });
      if ((done / CHUNK) % 40 === 0) log(`  ${done.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    return { ms: performance.now() - t0, rawBytes, storedBytes, withMessage, sentIds };
  }
}

/** The file's size with everything checkpointed into it. */
function fileBytes(store: Store, file: string): number {
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  return fs.statSync(file).size;
}

function tableBytes(store: Store, name: string): number {
  return (store.db.prepare('SELECT coalesce(sum(pgsize), 0) AS n FROM dbstat WHERE name = ?').get(name) as { n: number }).n;
}

function liveSends(store: Store): number {
  return (store.db.prepare('SELECT count(*) AS n FROM sends').get() as { n: number }).n;
}

/** Bytes per send of each table and index, largest first. */
function breakdown(store: Store, sends: number): string {
  const rows = store.db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as { name: string; bytes: number }[];
  return rows.filter((r) => r.bytes / sends >= 1).map((r) => `${r.name} ${Math.round(r.bytes / sends)}`).join(', ');
}

/** The oldest `count` sends with what hangs on them, in batches of short transactions (as prune does). */
function prune(store: Store, count: number): number {
  const ids = store.db.prepare('SELECT id FROM sends ORDER BY id LIMIT 1 OFFSET ?').pluck();
  const last = ids.get(count - 1) as number;
  let deleted = 0;
  // Without the foreign-key check: sends.retarget_of and retargeted_to refer to sends and have
  // no index, so each deleted send would scan the whole table twice (20,000 sends: 274 s).
  store.db.pragma('foreign_keys = OFF');
  for (let from = 0; from < last; from += 10_000) {
    const to = Math.min(last, from + 10_000);
    store.transaction(() => {
      for (const table of ['attempts', 'messages']) store.db.prepare(`DELETE FROM ${table} WHERE send_id > ? AND send_id <= ?`).run(from, to);
      deleted += store.db.prepare('DELETE FROM sends WHERE id > ? AND id <= ?').run(from, to).changes;
    });
  }
  store.db.pragma('foreign_keys = ON');
  return deleted;
}

if (isMain(import.meta.url)) await runAlone('storage', benchStorage);
