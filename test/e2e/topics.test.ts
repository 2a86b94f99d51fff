import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { mailer, membersCsv, openDb, startServe, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer, type TestServer } from '../support/smtp.js';
import { migrations } from '../../src/store/schema.js';
import { dsnFor } from '../support/bounces.js';

const PUBLIC = 'https://verein.example/m';
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const ONE_CLICK = { method: 'POST', headers: FORM, body: 'List-Unsubscribe=One-Click' };
const XSS = '<img src=x onerror=alert(1)>';

const serve = (dir: string) => startServe(dir);

const NEWS = `Subject: Neuigkeiten
From: Verein e.V. <news@verein.example>
Type: newsletter

Hallo {{name}},
abmelden: {{unsubscribe_url}}
`;
const NEWS_HTML = '<html><body><p>Hallo {{name}}</p></body></html>\n';
const INVITATION = `Subject: Einladung zur Mitgliederversammlung
From: Verein e.V. <vorstand@verein.example>
Type: invitation
Required: yes

Hallo {{name}}, Ihr Link: https://vote.example/register/{{token}}
`;
const SURVEY = `Subject: Umfrage
From: Verein e.V. <news@verein.example>
Type: umfrage-2026
Topic: survey

Hallo {{name}}
`;

/** What one send delivered: the recipients, and the raw mail of each. */
async function send(dir: string, smtp: TestServer, template: string, extra: string[] = []) {
  const before = smtp.messages.length;
  const r = await mailer(dir, ['send', template, '--smtp', smtp.url, '--json', ...extra]);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  const summary = JSON.parse(r.stdout);
  const mails = smtp.messages.slice(before);
  const skipped = JSON.parse((await mailer(dir, ['log', '--mailing', String(summary.mailing), '--status', 'skipped', '--json'])).stdout)
    .map((s: any) => [s.email, s.category, s.reason]).sort();
  return { summary, to: mails.map((m) => m.to[0]).sort(), mails, skipped };
}


test('topics: a newsletter opt-out by one click stops the newsletter only; required mails and other topics still go; a hard bounce stops all, listed as skipped', async () => {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: PUBLIC }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email', 'sprache'], [
    ['1', 'Anna', 'anna@example.org', 'en'],
    ['2', 'Ben', 'ben@example.org', ''],
    ['3', 'Cem', 'cem@example.org', 'de'],
    ['4', XSS, 'dora@example.org', ''],
  ]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'news.txt', NEWS);
  writeFile(dir, 'news.html', NEWS_HTML);
  writeFile(dir, 'invitation.txt', INVITATION);
  writeFile(dir, 'invitation.html', '<html><body><p>Hallo {{name}}</p></body></html>\n');
  writeFile(dir, 'survey.txt', SURVEY);
  const smtp = await startSmtpServer();
  let proc: Awaited<ReturnType<typeof serve>> | null = null;
  try {
    const first = await send(dir, smtp, 'news.txt');
    assert.deepEqual(first.to, ['anna@example.org', 'ben@example.org', 'cem@example.org', 'dora@example.org']);
    const linkOf = (to: string) => {
      const raw = first.mails.find((m) => m.to[0] === to)!.raw.toString();
      const header = new RegExp(`^List-Unsubscribe: <${PUBLIC}/u/([A-Za-z0-9_-]+)>`, 'm').exec(raw)![1];
      // The visible link in the text is the same page.
      assert.ok(raw.includes(`${PUBLIC}/u/${header}`), 'the text shows {{unsubscribe_url}}');
      return header;
    };
    const links = Object.fromEntries(['anna', 'ben', 'cem', 'dora'].map((n) => [n, linkOf(`${n}@example.org`)]));
    assert.doesNotMatch(first.mails[0].raw.toString(), /^(Topic|Required|Type):/m, 'instructions to mailer are no headers of the mail');

    // Cem's mail bounces hard: his address is suppressed for every mail.
    const cem = JSON.parse((await mailer(dir, ['log', '--email', 'cem@example.org', '--json'])).stdout)[0];
    writeFile(dir, 'bounce.eml', dsnFor('cem@example.org', cem.id));
    assert.equal((await mailer(dir, ['bounces', 'import', 'bounce.eml'])).code, 0);

    proc = await serve(dir);
    const base = proc.base;
    const page = async (who: string) => {
      const r = await fetch(`${base}/u/${links[who]}`);
      return { r, html: await r.text() };
    };
    // Pages: a GET changes nothing, however often it comes.
    const anna = await page('anna');
    const ben = await page('ben');
    const dora = await page('dora');
    await fetch(`${base}/u/${links.anna}`, { method: 'HEAD' });
    const listed = async (topic?: string) => JSON.parse((await mailer(dir, ['suppress', 'list', '--json', ...(topic ? ['--topic', topic] : [])])).stdout)
      .map((s: any) => [s.email, s.topic, s.reason.replace(/\(send \d+\)/, '(send N)')]);
    assert.deepEqual(await listed(), [['cem@example.org', null, 'bounced: 550 5.1.1 <cem@example.org>: User unknown (send N)']]);

    assert.equal(anna.r.status, 200);
    assert.match(anna.html, /<html lang="en">/);
    assert.equal(anna.r.headers.get('content-language'), 'en');
    assert.match(anna.html, /Unsubscribe from “newsletter”/);
    assert.match(anna.html, /Unsubscribe from all topics/);
    assert.match(anna.html, /Verein e\.V\. sends mails to Anna &lt;anna@example\.org&gt;/);
    assert.match(ben.html, /<html lang="de">/);
    assert.equal(ben.r.headers.get('content-language'), 'de');
    assert.match(ben.html, /Vom Thema „newsletter“ abmelden/);
    assert.match(ben.html, /Verein e\.V\. schickt Mails an Ben/);
    for (const { r } of [anna, ben, dora]) {
      assert.match(r.headers.get('content-security-policy') ?? '', /^default-src 'none'/);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    }
    assert.ok(!dora.html.includes(XSS) && !dora.html.includes('<img'), dora.html);
    assert.ok(dora.html.includes('&#60;img src=x onerror=alert(1)&#62;'), dora.html);

    // Unknown, forged and malformed links: the same page, byte for byte.
    const forged = links.anna.slice(0, -1) + (links.anna.endsWith('A') ? 'B' : 'A');
    const notFound = await Promise.all(['AAAAAAAAAAAAAAAAAAAAAA', forged, 'x', '%3Cscript%3E', 'a'.repeat(150)].map(async (v) => {
      const r = await fetch(`${base}/u/${v}`);
      return [r.status, await r.text()];
    }));
    for (const n of notFound) assert.deepEqual(n, notFound[0]);
    assert.equal(notFound[0][0], 404);
    assert.match(String(notFound[0][1]), /<html lang="de">.*Link unbekannt/s);

    // A body of 1 MB is refused, and the server carries on.
    const big = await fetch(`${base}/u/${links.ben}`, { method: 'POST', headers: FORM, body: `List-Unsubscribe=One-Click&x=${'x'.repeat(1024 * 1024)}` });
    assert.equal(big.status, 413);
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.equal(proc.exited, false);
    assert.deepEqual((await listed()).map((l: string[]) => l[0]), ['cem@example.org'], 'nothing changed yet');

    // Anna's mail program unsubscribes by one click (RFC 8058): the newsletter's topic.
    const click = await fetch(`${base}/u/${links.anna}`, ONE_CLICK);
    assert.equal(click.status, 200);
    assert.match(await click.text(), /anna@example\.org gets no more mails about “newsletter” from Verein e\.V\./);
    // Ben presses "all topics" on the page.
    const confirm = /name="confirm" value="([^"]+)"/.exec(ben.html)![1];
    const all = await fetch(`${base}/u/${links.ben}`, { method: 'POST', headers: FORM, body: `confirm=${encodeURIComponent(confirm)}&scope=all` });
    assert.equal(all.status, 200);
    assert.match(await all.text(), /ben@example\.org erhält von Verein e\.V\. keine Mails mehr, die man abbestellen kann/);
    assert.deepEqual((await listed()).map((l: string[]) => l.slice(0, 2)).sort(), [['anna@example.org', 'newsletter'], ['ben@example.org', '*'], ['cem@example.org', null]]);
    assert.deepEqual(await listed('newsletter'), [['anna@example.org', 'newsletter', 'unsubscribed']]);

    // The invitation to the general meeting is required: Anna and Ben get it, Cem (bounced) is skipped.
    const invitation = await send(dir, smtp, 'invitation.txt');
    assert.deepEqual(invitation.to, ['anna@example.org', 'ben@example.org', 'dora@example.org']);
    assert.deepEqual(invitation.skipped.map((s: string[]) => s.slice(0, 2)), [['cem@example.org', 'suppressed']]);
    assert.deepEqual(invitation.summary.byReason, { suppressed: 1 });
    for (const m of invitation.mails) {
      const raw = m.raw.toString();
      assert.doesNotMatch(raw, /^List-Unsubscribe/im, 'a required mail has no List-Unsubscribe');
      assert.doesNotMatch(raw, /^(Required|Topic):/m);
      assert.doesNotMatch((await simpleParser(m.raw)).html as string, /\/o\/[^"]+\.gif/, 'and no pixel');
    }

    // The survey is another topic: Anna gets it; Ben opted out of all topics.
    const survey = await send(dir, smtp, 'survey.txt');
    assert.deepEqual(survey.to, ['anna@example.org', 'dora@example.org']);
    assert.deepEqual(survey.skipped, [
      ['ben@example.org', 'unsubscribed', 'unsubscribed (all topics)'],
      ['cem@example.org', 'suppressed', `the address is suppressed: bounced: 550 5.1.1 <cem@example.org>: User unknown (send ${cem.id})`],
    ]);
    assert.match(survey.mails[0].raw.toString(), /^List-Unsubscribe: /m);

    // The next newsletter: the dry run and the run skip Anna, naming the topic.
    const dry = JSON.parse((await mailer(dir, ['send', 'news.txt', '--dry-run', '--json'])).stdout);
    assert.deepEqual(dry.skippedMembers.map((s: any) => [s.email, s.category, s.reason]).filter((s: string[]) => s[0] !== 'cem@example.org'),
      [['anna@example.org', 'unsubscribed', 'unsubscribed (newsletter)'], ['ben@example.org', 'unsubscribed', 'unsubscribed (all topics)']]);
    const dryText = await mailer(dir, ['send', 'news.txt', '--dry-run']);
    assert.match(dryText.stdout, /unsubscribed \(newsletter\)/);
    assert.deepEqual(dry.byReason, { unsubscribed: 2, suppressed: 1 });
    const second = await send(dir, smtp, 'news.txt');
    assert.deepEqual(second.to, ['dora@example.org']);
    assert.deepEqual(second.summary.byReason, { unsubscribed: 2, suppressed: 1 });
    assert.deepEqual(second.skipped.map((s: string[]) => s.slice(0, 3)).filter((s: string[]) => s[0] !== 'cem@example.org'),
      [['anna@example.org', 'unsubscribed', 'unsubscribed (newsletter)'], ['ben@example.org', 'unsubscribed', 'unsubscribed (all topics)']]);

    // why and stats name the topic.
    const why = await mailer(dir, ['why', 'anna@example.org']);
    assert.match(why.stdout, /opted out of the topic "newsletter"/);
    assert.match(why.stdout, /mailer suppress remove anna@example\.org --topic "newsletter"/);
    assert.deepEqual(JSON.parse((await mailer(dir, ['why', 'ben@example.org', '--json'])).stdout).optOuts.map((o: any) => o.topic), ['*']);
    const stats = await mailer(dir, ['stats', '--mailing', String(second.summary.mailing)]);
    assert.match(stats.stdout, /unsubscribed \(newsletter\) 2/);
    assert.match(stats.stdout, /opted out by topic: \* \(all topics\) 1, newsletter 1|opted out by topic: all topics 1, newsletter 1/);
    const statsJson = JSON.parse((await mailer(dir, ['stats', '--mailing', String(invitation.summary.mailing), '--json'])).stdout)[0];
    assert.deepEqual([statsJson.topic, statsJson.required, statsJson.skippedByReason], ['invitation', true, { suppressed: 1 }]);
  } finally {
    if (proc) {
      proc.child.kill('SIGTERM');
      await proc.done;
    }
    await smtp.close();
  }
});

test('topics: suppress add|remove|list --topic by hand; {{unsubscribe_url}} is refused without publicUrl and in a required mail', async () => {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: PUBLIC }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org'], ['2', 'Ben', 'ben@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  const added = await mailer(dir, ['suppress', 'add', 'Anna@Example.org', '--topic', 'survey', '--reason', 'asked by phone', '--json']);
  assert.equal(added.code, 0, added.stderr);
  assert.deepEqual(JSON.parse(added.stdout), { email: 'anna@example.org', topic: 'survey', reason: 'asked by phone', suppressed: true });
  assert.deepEqual(JSON.parse((await mailer(dir, ['suppress', 'list', '--topic', 'survey', '--json'])).stdout).map((s: any) => [s.email, s.topic, s.reason]),
    [['anna@example.org', 'survey', 'asked by phone']]);
  assert.deepEqual(JSON.parse((await mailer(dir, ['suppress', 'list', '--topic', 'newsletter', '--json'])).stdout), []);
  assert.match((await mailer(dir, ['suppress', 'list'])).stdout, /anna@example\.org {2}topic "survey"/);
  writeFile(dir, 'survey.txt', SURVEY);
  const dry = JSON.parse((await mailer(dir, ['send', 'survey.txt', '--dry-run', '--json'])).stdout);
  assert.deepEqual(dry.skippedMembers.map((s: any) => [s.email, s.reason]), [['anna@example.org', 'unsubscribed (survey)']]);
  // Not address-wide: removing without --topic says what there is instead.
  const wrong = await mailer(dir, ['suppress', 'remove', 'anna@example.org']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /opted out of "survey"/);
  assert.equal((await mailer(dir, ['suppress', 'remove', 'anna@example.org', '--topic', 'survey'])).code, 0);
  assert.deepEqual(JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout), []);
  assert.equal((await mailer(dir, ['suppress', 'add', 'ben@example.org', '--topic', '', '--reason', 'x'])).code, 2);

  // {{unsubscribe_url}} in a required mail, or without publicUrl: refused before anything is sent.
  writeFile(dir, 'required.txt', INVITATION.replace('Ihr Link', 'abmelden: {{unsubscribe_url}}, Ihr Link'));
  const required = await mailer(dir, ['send', 'required.txt']);
  assert.equal(required.code, 2);
  assert.match(required.stderr, /required\.txt: \{\{unsubscribe_url\}\} in a mail with "Required: yes"/);
  writeFile(dir, 'other.json', '{}');
  writeFile(dir, 'news.txt', NEWS);
  const noUrl = await mailer(dir, ['send', 'news.txt', '--config', 'other.json']);
  assert.equal(noUrl.code, 2);
  assert.match(noUrl.stderr, /news\.txt: \{\{unsubscribe_url\}\} needs "publicUrl"/);
  assert.equal((await mailer(dir, ['mailings', '--json'])).stdout.includes('"id"'), false, 'no mailing was recorded');
  assert.match((await mailer(dir, ['suppress', '--help'])).stdout, /--topic/);
  assert.match((await mailer(dir, ['suppress', 'add', '--help'])).stdout, /--topic <topic>/);
});

test('topics: a database from before topics opens with its suppressions address-wide and its unsubscribes as recorded', async () => {
  const dir = tempDir();
  const before = migrations.findIndex((m) => m.includes('CREATE TABLE optouts'));
  assert.ok(before > 0);
  const db = new Database(path.join(dir, 'mailer.db'));
  for (const sql of migrations.slice(0, before)) db.exec(sql);
  db.pragma(`user_version = ${before}`);
  db.exec(`
    INSERT INTO members (id, key, email, name, fields, created_at, updated_at) VALUES
      (1, '1', 'anna@example.org', 'Anna', '{}', 0, 0), (2, '2', 'ben@example.org', 'Ben', '{}', 0, 0), (3, '3', 'cem@example.org', 'Cem', '{}', 0, 0);
    INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (1, 'news', 'n.txt', 'Subject: x\n\ny', 'done', 0);
    INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, created_at, sent_at, updated_at) VALUES
      (1, 1, 1, 'anna@example.org', 'news', 'sent', 1, 0, 1000, 1000);
    INSERT INTO events (send_id, kind, at, last_at, times) VALUES (1, 'unsubscribe', 1500, 1500, 1);
    INSERT INTO suppressions (email, reason, created_at) VALUES ('anna@example.org', 'unsubscribed', 1500), ('ben@example.org', 'bounced: 5.1.1', 1600);`);
  db.close();

  const list = await mailer(dir, ['suppress', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).map((s: any) => [s.email, s.topic, s.reason]), [['ben@example.org', null, 'bounced: 5.1.1'], ['anna@example.org', null, 'unsubscribed']]);
  const dbr = openDb(dir);
  assert.equal(dbr.pragma('user_version', { simple: true }), migrations.length);
  assert.deepEqual(dbr.prepare(`SELECT type, topic, required FROM mailings`).all(), [{ type: 'news', topic: 'news', required: 0 }]);
  assert.equal((dbr.prepare(`SELECT count(*) AS n FROM events WHERE kind = 'unsubscribe'`).get() as any).n, 1);
  dbr.close();
  // Recorded address-wide, they stop required mails too.
  writeFile(dir, 'invitation.txt', INVITATION);
  const dry = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--json'])).stdout);
  assert.deepEqual(dry.skippedMembers.map((s: any) => [s.email, s.category]), [['anna@example.org', 'suppressed'], ['ben@example.org', 'suppressed']]);
});

test('serve keeps answering /health while 200 slow clients hold connections', async () => {
  const dir = tempDir();
  const proc = await serve(dir);
  const port = Number(new URL(proc.base).port);
  const sockets: net.Socket[] = [];
  try {
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        // A request line and half a header, then nothing: a slowloris client.
        socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
        resolve();
      });
      socket.on('error', () => resolve());
      sockets.push(socket);
    })));
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      const r = await fetch(`${proc.base}/health`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { ok: true });
      assert.ok(Date.now() - started < 2_000, `${Date.now() - started} ms`);
    }
    assert.ok(sockets.filter((s) => !s.destroyed).length >= 150, 'the slow clients were still connected');
    assert.equal(proc.exited, false);
  } finally {
    for (const s of sockets) s.destroy();
    proc.child.kill('SIGTERM');
    await proc.done;
  }
});
