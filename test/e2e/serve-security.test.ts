import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { INVITATION, mailer, membersCsv, openDb, startServe, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer } from '../support/smtp.js';
import { migrations } from '../../src/store/schema.js';

const PUBLIC = 'https://verein.example/m';
const ONE_CLICK = { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' };

const serve = (dir: string) => startServe(dir);

/** Writes bytes to the port and reads until the server closes (or 2 s pass). */
function raw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(Buffer.concat(got).toString('latin1')); };
    const timer = setTimeout(done, 2_000);
    socket.on('data', (c) => got.push(c));
    socket.on('close', done);
    socket.on('error', done);
    socket.end(bytes);
  });
}

async function emptyFolder() {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna@example.org']]));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  return dir;
}

test('serve: no request, however malformed, ends the process; bad targets get 400 and one log line', async () => {
  const proc = await serve(await emptyFolder());
  try {
    const requests: [string, RegExp][] = [
      ['GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400/],
      ['GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400/],
      ['GET http://x:99999/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400/],
      ['GET http://[::1/o/x.gif HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400/],
      ['HEAD //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400/],
      ['POST http://x:99999/u/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc', /^HTTP\/1\.1 400/],
      ['GET /u/%ZZ%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 404/],
      ['GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 (400|404)/],
      ['GET / HTTP/9.9\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 (400|505)/],
      ['GET /health HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n', /^HTTP\/1\.1 400/],
      ['GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', /^HTTP\/1\.1 400/],
      ['POST /u/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n', /^HTTP\/1\.1 (400|404)/],
      [`GET /o/${'A'.repeat(20_000)}.gif HTTP/1.1\r\nHost: x\r\n\r\n`, /^HTTP\/1\.1 (400|414|431)/],
      ['\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', /^(HTTP\/1\.1 400|)/],
      ['\r\n\r\n\r\n', /^(HTTP\/1\.1 400|)/],
      ['CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', /^HTTP\/1\.1 405/],
    ];
    for (const [request, expected] of requests) {
      const answer = await raw(proc.port, request);
      assert.match(answer, expected, JSON.stringify(request.slice(0, 60)));
      assert.equal(proc.exited, false, `the server died on ${JSON.stringify(request.slice(0, 60))}: ${proc.stderr}`);
      const health = await fetch(`${proc.base}/health`);
      assert.equal(health.status, 200, JSON.stringify(request.slice(0, 60)));
    }
    const logged = proc.stderr.split('\n').filter((l) => /bad request/.test(l));
    assert.ok(logged.length >= 6, proc.stderr);
    assert.ok(logged.every((l) => l.length < 400), 'one short line each');
    assert.match(logged[0], /\/\/\[/, 'the line names the target');
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
});

interface Links { registration: string; unsubscribe: string; pixel: string }

/** A folder whose members got the invitation (text with {{token}}, HTML with the pixel), tracked under PUBLIC. */
async function invited(names: string[]) {
  const dir = tempDir();
  writeFile(dir, 'mailer.json', JSON.stringify({ publicUrl: PUBLIC }));
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], names.map((n, i) => [String(i + 1), n, `${n.toLowerCase()}@example.org`])));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  writeFile(dir, 'invitation.html', '<html><body><p>Hallo {{name}}, <a href="https://vote.example/register/{{token}}">hier</a></p></body></html>\n');
  const smtp = await startSmtpServer();
  try {
    const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', smtp.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const links: Record<string, Links> = {};
    for (const m of smtp.messages) {
      const parsed = await simpleParser(m.raw);
      links[m.to[0].split('@')[0]] = {
        registration: /register\/(\S+)/.exec(parsed.text as string)![1],
        unsubscribe: new RegExp(`^List-Unsubscribe: <${PUBLIC}/u/([A-Za-z0-9_-]+)>`, 'm').exec(m.raw.toString())![1],
        pixel: new RegExp(`<img src="${PUBLIC}/o/([A-Za-z0-9_-]+)\\.gif"`).exec(parsed.html as string)![1],
      };
    }
    return { dir, links, smtp, mailing: JSON.parse(r.stdout).mailing as number };
  } catch (err) {
    await smtp.close();
    throw err;
  }
}

function count(dir: string, sql: string, ...params: unknown[]): number {
  const db = openDb(dir);
  try {
    return (db.prepare(sql).get(...params) as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Addresses suppressed for every mail plus opt-outs of a topic: what any unsubscribe adds to. */
const suppressed = (dir: string) => count(dir, `SELECT (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM optouts) AS n`);

test('serve: registration, unsubscribe and pixel carry different values, each good for its own purpose only', async () => {
  const { dir, links, smtp } = await invited(['Anna', 'Ben']);
  const proc = await serve(dir);
  try {
    const anna = links.anna;
    assert.equal(new Set([anna.registration, anna.unsubscribe, anna.pixel]).size, 3, JSON.stringify(anna));
    for (const v of Object.values(anna)) assert.match(v, /^[A-Za-z0-9_-]{23,}$/, 'URL-safe, at least 128 bits');
    for (const [a, b] of [[anna.registration, anna.unsubscribe], [anna.registration, anna.pixel], [anna.unsubscribe, anna.pixel]]) {
      assert.ok(!a.includes(b.slice(-16)) && !b.includes(a.slice(-16)), 'no value carries another');
    }

    // token verify knows registration tokens only.
    const verify = async (v: string) => mailer(dir, ['token', 'verify', v]);
    const valid = await verify(anna.registration);
    assert.equal(valid.code, 0);
    assert.match(valid.stdout, /^valid: member 1/);
    for (const v of [anna.unsubscribe, anna.pixel]) {
      const r = await verify(v);
      assert.equal(r.code, 1, v);
      assert.match(r.stdout, /^unknown/);
    }

    // The registration token (and the pixel's value) neither unsubscribes nor opens.
    for (const v of [anna.registration, anna.pixel]) {
      assert.equal((await fetch(`${proc.base}/u/${v}`)).status, 404);
      assert.equal((await fetch(`${proc.base}/u/${v}`, ONE_CLICK)).status, 404);
    }
    for (const v of [anna.registration, anna.unsubscribe]) assert.equal((await fetch(`${proc.base}/o/${v}.gif`)).status, 200);
    assert.equal(suppressed(dir), 0);
    assert.equal(count(dir, `SELECT count(*) AS n FROM events`), 0, 'a value of another purpose records nothing');
    // Anna's own pixel and unsubscribe link do.
    assert.equal((await fetch(`${proc.base}/o/${anna.pixel}.gif`)).status, 200);
    assert.equal(count(dir, `SELECT count(*) AS n FROM events WHERE kind = 'open'`), 1);
    assert.equal((await fetch(`${proc.base}/u/${anna.unsubscribe}`, ONE_CLICK)).status, 200);
    assert.deepEqual(JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout).map((x: any) => [x.email, x.reason]), [['anna@example.org', 'unsubscribed']]);
    // A value with one character changed is nobody's.
    const forged = anna.unsubscribe.slice(0, -1) + (anna.unsubscribe.endsWith('A') ? 'B' : 'A');
    assert.equal((await fetch(`${proc.base}/u/${forged}`)).status, 404);

    // Re-target: Ben's registration token is revoked, the old mail's unsubscribe link still works.
    const ben = JSON.parse((await mailer(dir, ['log', '--email', 'ben@example.org', '--json'])).stdout)[0];
    assert.equal((await mailer(dir, ['retarget', String(ben.id), '--to', 'ben.neu@example.org', '--smtp', smtp.url])).code, 0);
    const revoked = await verify(links.ben.registration);
    assert.equal(revoked.code, 1);
    assert.match(revoked.stdout, /^revoked/);
    assert.equal((await fetch(`${proc.base}/u/${links.ben.unsubscribe}`)).status, 200);
    assert.equal((await fetch(`${proc.base}/u/${links.ben.unsubscribe}`, ONE_CLICK)).status, 200);
    assert.ok(JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout).some((x: any) => x.email === 'ben@example.org'));
    assert.equal((await fetch(`${proc.base}/u/${links.ben.registration}`, ONE_CLICK)).status, 404);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
    await smtp.close();
  }
});

test('serve: mails sent before links had their own values keep working for unsubscribe and open; later ones do not take the token', async () => {
  const dir = tempDir();
  const before = migrations.findIndex((m) => m.includes('CREATE TABLE link_secret'));
  assert.ok(before > 0);
  const db = new Database(path.join(dir, 'mailer.db'));
  for (const sql of migrations.slice(0, before)) db.exec(sql);
  db.pragma(`user_version = ${before}`);
  const old = (n: number) => `${n.toString(36)}legacyToken${'x'.repeat(12)}`;
  db.exec(`
    INSERT INTO members (id, key, email, fields, created_at, updated_at) VALUES
      (1, '1', 'anna@example.org', '{}', 0, 0), (2, '2', 'ben@example.org', '{}', 0, 0),
      (3, '3', 'cem@example.org', '{}', 0, 0), (4, '4', 'dora.neu@example.org', '{}', 0, 0);
    INSERT INTO mailings (id, type, template_path, template, status, created_at) VALUES (1, 'news', 'n.txt', 'Subject: x\n\ny', 'done', 0);
    INSERT INTO sends (id, mailing_id, member_id, email, type, status, attempts, token, created_at, sent_at, updated_at, token_revoked_at) VALUES
      (1, 1, 1, 'anna@example.org', 'news', 'sent', 1, '${old(1)}', 0, 1000, 1000, NULL),
      (2, 1, 2, 'ben@example.org', 'news', 'sent', 1, '${old(2)}', 0, 1000, 1000, NULL),
      -- deferred at the upgrade: when it goes out, it carries links of their own
      (3, 1, 3, 'cem@example.org', 'news', 'deferred', 1, '${old(3)}', 0, NULL, 1000, NULL),
      -- re-targeted away: the registration token is revoked
      (4, 1, 4, 'dora@example.org', 'news', 'retargeted', 1, '${old(4)}', 0, 1000, 1000, 2000);
    INSERT INTO events (send_id, kind, at) VALUES (2, 'open', 1500), (2, 'open', 1600), (2, 'open', 1700);`);
  db.close();
  // Cem's mail goes out after the upgrade.
  const upgraded = await mailer(dir, ['token', 'verify', old(3)]);
  assert.equal(upgraded.code, 0, upgraded.stderr);
  const db2 = new Database(path.join(dir, 'mailer.db'));
  db2.exec(`UPDATE sends SET status = 'sent', sent_at = 5000 WHERE id = 3`);
  db2.close();

  const proc = await serve(dir);
  try {
    assert.equal((await fetch(`${proc.base}/o/${old(1)}.gif`)).status, 200);
    assert.equal((await fetch(`${proc.base}/o/${old(4)}.gif`)).status, 200);
    assert.equal((await fetch(`${proc.base}/u/${old(1)}`)).status, 200);
    assert.equal((await fetch(`${proc.base}/u/${old(1)}`, ONE_CLICK)).status, 200);
    assert.equal((await fetch(`${proc.base}/u/${old(4)}`, ONE_CLICK)).status, 200, 'a revoked address still unsubscribes');
    assert.equal((await fetch(`${proc.base}/u/${old(3)}`)).status, 404, 'sent after the upgrade: the token is for registration only');
    assert.equal((await fetch(`${proc.base}/u/${old(3)}`, ONE_CLICK)).status, 404);
    assert.equal((await fetch(`${proc.base}/o/${old(3)}.gif`)).status, 200);
    const dbr = openDb(dir);
    const events = dbr.prepare(`SELECT send_id, kind, at, last_at, times FROM events ORDER BY send_id, kind`).all();
    const gone = dbr.prepare(`SELECT email FROM suppressions UNION ALL SELECT email FROM optouts ORDER BY email`).all();
    dbr.close();
    assert.deepEqual(events, [
      { send_id: 1, kind: 'open', at: events[0] && (events[0] as any).at, last_at: (events[0] as any).at, times: 1 },
      { send_id: 1, kind: 'unsubscribe', at: (events[1] as any).at, last_at: (events[1] as any).at, times: 1 },
      { send_id: 2, kind: 'open', at: 1500, last_at: 1700, times: 3 },
      { send_id: 4, kind: 'unsubscribe', at: (events[3] as any).at, last_at: (events[3] as any).at, times: 1 },
    ], 'the revoked address\'s pixel and the post-upgrade token count no open; the old opens are folded into one row');
    assert.deepEqual(gone, [{ email: 'anna@example.org' }, { email: 'dora@example.org' }]);
    // The registration tokens themselves stay what they were.
    assert.equal((await mailer(dir, ['token', 'verify', old(1)])).code, 0);
    assert.match((await mailer(dir, ['token', 'verify', old(4)])).stdout, /^revoked/);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
});

test('serve: 500 fetches of one pixel and repeated unsubscribes make one row each; show prints a bounded history with the count', async () => {
  const { dir, links, smtp, mailing } = await invited(['Anna', 'Ben']);
  await smtp.close();
  const proc = await serve(dir);
  try {
    for (let i = 0; i < 500; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const r = await fetch(`${proc.base}/o/${links.anna.pixel}.gif`);
        assert.equal(r.status, 200);
        await r.arrayBuffer();
      }));
    }
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${proc.base}/u/${links.anna.unsubscribe}`, ONE_CLICK)).status, 200);
    assert.equal(count(dir, `SELECT count(*) AS n FROM events`), 2);
    assert.equal(count(dir, `SELECT times AS n FROM events WHERE kind = 'open'`), 500);
    assert.equal(count(dir, `SELECT times AS n FROM events WHERE kind = 'unsubscribe'`), 20);
    assert.equal(suppressed(dir), 1);

    const anna = JSON.parse((await mailer(dir, ['log', '--email', 'anna@example.org', '--json'])).stdout)[0];
    const shown = await mailer(dir, ['show', String(anna.id)]);
    const lines = shown.stdout.split('\n');
    assert.ok(lines.length < 40, `${lines.length} lines`);
    assert.equal(lines.filter((l) => /opened/.test(l)).length, 1);
    assert.match(shown.stdout, /opened \(500 times, last /);
    assert.match(shown.stdout, /unsubscribed \(20 times, last /);
    const json = JSON.parse((await mailer(dir, ['show', String(anna.id), '--json'])).stdout);
    assert.deepEqual(json.events.map((e: any) => [e.kind, e.times]), [['open', 500], ['unsubscribe', 20]]);

    const stats = JSON.parse((await mailer(dir, ['stats', '--mailing', String(mailing), '--json'])).stdout)[0];
    assert.deepEqual([stats.sent, stats.opened, stats.unsubscribed], [2, 1, 1]);
    const follow = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--not-opened', String(mailing), '--dry-run', '--json'])).stdout);
    assert.equal(follow.selected, 1, JSON.stringify(follow));
    assert.match(JSON.stringify(follow.recipients), /ben@example\.org/);
    assert.doesNotMatch(JSON.stringify(follow.recipients), /anna@example\.org/);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
});

test('serve: the unsubscribe POST takes the RFC 8058 body or the page\'s own form, nothing else; GET and HEAD change nothing', async () => {
  const { dir, links, smtp } = await invited(['Anna', 'Ben', 'Cem']);
  await smtp.close();
  const proc = await serve(dir);
  const url = `${proc.base}/u/${links.anna.unsubscribe}`;
  try {
    // Link scanners: GET and HEAD, as often as they like.
    for (let i = 0; i < 3; i++) {
      assert.equal((await fetch(url)).status, 200);
      const head = await fetch(url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal((await head.arrayBuffer()).byteLength, 0, 'HEAD has no body');
      assert.equal(head.headers.get('x-frame-options'), 'DENY');
    }
    const pixelHead = await fetch(`${proc.base}/o/${links.anna.pixel}.gif`, { method: 'HEAD' });
    assert.equal(pixelHead.status, 200);
    assert.equal(pixelHead.headers.get('content-type'), 'image/gif');
    assert.equal(suppressed(dir), 0);
    assert.equal(count(dir, `SELECT count(*) AS n FROM events`), 0);

    const pageResponse = await fetch(url);
    assert.equal(pageResponse.headers.get('x-frame-options'), 'DENY');
    assert.match(pageResponse.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.match(pageResponse.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(pageResponse.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(pageResponse.headers.get('cache-control'), 'no-store');
    const html = await pageResponse.text();
    const confirm = /name="confirm" value="([^"]+)"/.exec(html)![1];
    assert.notEqual(confirm, links.anna.unsubscribe);

    const post = (headers: Record<string, string>, body: string) => fetch(url, { method: 'POST', headers, body });
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const refused: [Record<string, string>, string][] = [
      [{}, 'List-Unsubscribe=One-Click'],
      [{ 'Content-Type': 'text/plain' }, 'List-Unsubscribe=One-Click'],
      [{ 'Content-Type': 'application/json' }, '{"List-Unsubscribe":"One-Click"}'],
      [form, ''],
      [form, 'foo=bar'],
      [form, 'List-Unsubscribe=Yes'],
      [form, 'confirm=AAAAAAAAAAAAAAAAAAAAAA'],
      [form, `confirm=${links.anna.unsubscribe}`],
      [{ 'Content-Type': 'multipart/form-data' }, 'List-Unsubscribe=One-Click'],
    ];
    for (const [headers, body] of refused) {
      const r = await post(headers, body);
      assert.equal(r.status, 400, JSON.stringify([headers, body]));
    }
    assert.equal(suppressed(dir), 0, 'nothing refused unsubscribed');
    assert.equal((await post(form, `confirm=${encodeURIComponent(confirm)}`)).status, 200, 'the page\'s own button');
    assert.equal(suppressed(dir), 1);

    // RFC 8058 allows multipart/form-data too.
    const boundary = 'xYzZY';
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`;
    const ben = await fetch(`${proc.base}/u/${links.ben.unsubscribe}`, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body: multipart });
    assert.equal(ben.status, 200);
    assert.equal(suppressed(dir), 2);
    // A confirmation value is bound to its page: Anna's does not unsubscribe Cem.
    assert.equal((await fetch(`${proc.base}/u/${links.cem.unsubscribe}`, { method: 'POST', headers: form, body: `confirm=${encodeURIComponent(confirm)}` })).status, 400);

    // Bounds: body size, methods.
    const big = await fetch(`${proc.base}/u/${links.cem.unsubscribe}`, { method: 'POST', headers: form, body: `List-Unsubscribe=One-Click&pad=${'x'.repeat(17 * 1024)}` });
    assert.equal(big.status, 413);
    const declared = await raw(proc.port, `POST /u/${links.cem.unsubscribe} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\nList-Unsubscribe=One-Click`);
    assert.match(declared, /^HTTP\/1\.1 413/);
    const chunked = await raw(proc.port, `POST /u/${links.cem.unsubscribe} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${'4000\r\n' + 'x'.repeat(0x4000) + '\r\n'}${'4000\r\n' + 'x'.repeat(0x4000) + '\r\n'}0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1\.1 413/);
    assert.equal(suppressed(dir), 2, 'Cem is still subscribed');
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await fetch(url, { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get('allow'), 'GET, HEAD, POST');
    }
    assert.equal((await fetch(`${proc.base}/o/${links.anna.pixel}.gif`, ONE_CLICK)).status, 405);
    assert.equal(proc.exited, false);
    assert.equal((await fetch(`${proc.base}/health`)).status, 200);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
});

test('serve: a refused request logs no whole link value, and an unsubscribe keeps the reason of a suppression already there', async () => {
  const { dir, links, smtp } = await invited(['Anna', 'Ben']);
  await smtp.close();
  assert.equal((await mailer(dir, ['suppress', 'add', 'anna@example.org', '--reason', 'asked by phone'])).code, 0);
  const before = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout);
  const proc = await serve(dir);
  try {
    const wrongType = await fetch(`${proc.base}/u/${links.ben.unsubscribe}`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' });
    assert.equal(wrongType.status, 400);
    assert.equal((await fetch(`${proc.base}/u/${links.anna.unsubscribe}`, ONE_CLICK)).status, 200);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.done;
  }
  assert.match(proc.stderr, /bad request .*\/u\/.{6}…/, proc.stderr);
  for (const value of [links.ben.unsubscribe, links.ben.unsubscribe.slice(7)]) assert.ok(!proc.stderr.includes(value), proc.stderr);
  const after = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout);
  assert.deepEqual(after.filter((s: any) => s.topic === null), before, 'the office\'s reason and date stay');
  assert.deepEqual(after.filter((s: any) => s.topic !== null).map((s: any) => [s.email, s.topic]), [['anna@example.org', 'invitation']], 'the click is recorded beside it');
});
