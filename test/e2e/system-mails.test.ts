import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BIN, folderWithMembers, mailer, openDb, startMailer, startServe, tempDir, writeFile, type CliResult } from '../support/cli.js';
import { startSmtpServer, type TestServer } from '../support/smtp.js';

const ORDER = `Subject: Bestellung {{order.number}}
From: Shop <shop@example.org>
Type: order

Hallo {{name}},
{{#order.items}}- {{qty}} x {{title}}
{{/order.items}}Summe: {{order.total}}
`;

const DATA = { name: 'Bert', order: { number: '4711', total: '12,50', items: [{ qty: 2, title: 'Kissen' }, { qty: 1, title: 'Decke' }] } };

function shopFolder(dir = tempDir()): string {
  fs.mkdirSync(path.join(dir, 'templates'), { recursive: true });
  writeFile(dir, 'templates/bestellung.txt', ORDER);
  writeFile(dir, 'mailer.json', JSON.stringify({ concurrency: 2 }));
  return dir;
}

/** The CLI with stdin: for --data -. */
function mailerWithStdin(cwd: string, args: string[], stdin: string, env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, LANG: 'C', NO_COLOR: '1', ...env } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on('close', (code) => {
    const stdoutBytes = Buffer.concat(out);
    resolve({ code: code ?? -1, stdout: stdoutBytes.toString(), stderr: Buffer.concat(err).toString(), stdoutBytes });
  }));
}

const serveApi = (dir: string, env: Record<string, string>) => startServe(dir, ['--api'], env);

const bodyOf = (m: { raw: Buffer }) => m.raw.toString('utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('serve --api: one mail with its data, keys, and the refusals', async () => {
  const smtp = await startSmtpServer();
  const dir = shopFolder();
  const env = { MAILER_SMTP_URL: smtp.url };
  const created = await mailer(dir, ['api-key', 'create', 'shop', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const { name, key } = JSON.parse(created.stdout);
  assert.equal(name, 'shop');
  assert.ok(Buffer.from(key.replace(/^mk_/, ''), 'base64url').length >= 16, 'at least 128 bits');
  const server = await serveApi(dir, env);
  const auth = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
  const post = (body: unknown, headers: Record<string, string> = auth) => fetch(`${server.base}/api/send`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  try {
    const first = await post({ template: 'bestellung', to: 'Bert@Example.org', data: DATA, key: 'order-4711' });
    assert.equal(first.status, 202);
    const answer = await first.json();
    assert.equal(answer.status, 'sent');
    assert.equal(smtp.messages.length, 1);
    const mail = bodyOf(smtp.messages[0]);
    assert.deepEqual(smtp.messages[0].to, ['bert@example.org']);
    assert.match(mail, /Subject: Bestellung 4711/);
    assert.match(mail, /Hallo Bert,\r?\n- 2 x Kissen\r?\n- 1 x Decke\r?\nSumme: 12,50/);
    assert.match(mail, new RegExp(`X-Mailer-Send-Id: ${answer.send}\\r`, "i"));
    assert.doesNotMatch(mail, /List-Unsubscribe/, 'a system mail carries no unsubscribe link');

    // The same key again sends nothing and names the first send; ten at once as well.
    const again = await post({ template: 'bestellung', to: 'bert@example.org', data: DATA, key: 'order-4711' });
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), { send: answer.send, status: 'sent', key: 'order-4711', repeated: true });
    const parallel = await Promise.all(Array.from({ length: 10 }, () => post({ template: 'bestellung', to: 'cem@example.org', data: DATA, key: 'order-4712' })));
    const bodies = await Promise.all(parallel.map((r) => r.json()));
    assert.equal(new Set(bodies.map((b) => b.send)).size, 1, 'one send for ten requests');
    assert.deepEqual(parallel.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    await until('the parallel mail', () => smtp.messages.length >= 2);
    await sleep(200);
    assert.equal(smtp.messages.length, 2, 'exactly one mail for the ten');

    const status = await fetch(`${server.base}/api/send/${answer.send}`, { headers: auth });
    assert.equal(status.status, 200);
    assert.equal((await status.json()).status, 'sent');

    // Keys: none, wrong, or another scheme are the same 401.
    for (const headers of [{ 'Content-Type': 'application/json' }, { ...auth, Authorization: 'Bearer mk_wrong' }, { ...auth, Authorization: `Basic ${key}` }, { ...auth, Authorization: `Bearer ${key}x` }]) {
      const r = await post({ template: 'bestellung', to: 'x@example.org', data: DATA }, headers);
      assert.equal(r.status, 401);
      assert.deepEqual(await r.json(), { error: 'unauthorized' });
    }
    assert.equal((await fetch(`${server.base}/api/send/${answer.send}`)).status, 401);

    // Templates by name only.
    for (const template of ['../mailer.json', '../templates/bestellung', '/etc/passwd', 'bestellung.txt', 'templates/bestellung', 'nope']) {
      const r = await post({ template, to: 'x@example.org', data: DATA });
      assert.equal(r.status, 404, template);
    }
    // Bodies, addresses, data.
    const big = await post({ template: 'bestellung', to: 'x@example.org', data: { ...DATA, pad: 'x'.repeat(2 * 1024 * 1024) } }).catch((err) => err);
    assert.equal(big.status, 413);
    const badTo = await post({ template: 'bestellung', to: 'bert@', data: DATA });
    assert.equal(badTo.status, 400);
    assert.match((await badTo.json()).error, /"to"/);
    const injected = await post({ template: 'bestellung', to: 'x@example.org', data: { ...DATA, order: { ...DATA.order, number: '1\r\nBcc: victim@example.org' } } });
    assert.equal(injected.status, 400);
    assert.match((await injected.json()).error, /line break/);
    const missing = await post({ template: 'bestellung', to: 'x@example.org', data: { name: 'X' } });
    assert.equal(missing.status, 400);
    assert.match((await missing.json()).error, /\{\{order\}\}/);
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post({ template: 'bestellung', to: 'x@example.org', data: [1] })).status, 400);
    await sleep(100);
    assert.equal(smtp.messages.length, 2, 'nothing refused was sent');

    // The key is nowhere but in the output of create: not in the log of serve, not in the database.
    assert.ok(!server.stderr.includes(key));
    for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('mailer.db'))) {
      assert.ok(!fs.readFileSync(path.join(dir, file)).includes(key), file);
    }
    // A revoked key stops working.
    assert.equal((await mailer(dir, ['api-key', 'revoke', 'shop'])).code, 0);
    assert.equal((await post({ template: 'bestellung', to: 'x@example.org', data: DATA, key: 'order-4711' })).status, 401);
  } finally {
    server.child.kill('SIGTERM');
    await server.done;
    await smtp.close();
  }

  // The system mail is a send like any other.
  const log = JSON.parse((await mailer(dir, ['log', '--type', 'order', '--json'])).stdout);
  assert.equal(log.length, 2);
  assert.deepEqual(log.map((s: any) => s.key).sort(), ['order-4711', 'order-4712']);
  const shown = JSON.parse((await mailer(dir, ['show', String(log[1].id), '--json'])).stdout);
  assert.deepEqual(shown.data, DATA);
  const why = await mailer(dir, ['why', 'bert@example.org']);
  assert.match(why.stdout, /order/);
  const db = openDb(dir);
  try {
    const members = db.prepare('SELECT key, listed FROM members').all() as { key: string; listed: number }[];
    assert.ok(members.every((m) => m.listed === 0));
  } finally {
    db.close();
  }
});

test('send --to: data from stdin, a repeated key, retarget renders the same mail, and bulk sends never select the address', async () => {
  const smtp = await startSmtpServer();
  const dir = shopFolder(await folderWithMembers(2));
  const env = { MAILER_SMTP_URL: smtp.url };
  try {
    const r = await mailerWithStdin(dir, ['send', 'templates/bestellung.txt', '--to', 'kunde@example.org', '--data', '-', '--key', 'K1', '--json'], JSON.stringify(DATA), env);
    assert.equal(r.code, 0, r.stderr);
    const first = JSON.parse(r.stdout);
    assert.equal(first.status, 'sent');
    assert.equal(first.key, 'K1');
    assert.match(bodyOf(smtp.messages[0]), /- 2 x Kissen/);
    const again = await mailerWithStdin(dir, ['send', 'bestellung', '--to', 'kunde@example.org', '--data', '-', '--key', 'K1', '--json'], '{}', env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { send: first.send, status: 'sent', key: 'K1', repeated: true });
    assert.equal(smtp.messages.length, 1);

    // To a member: the member's fields, the data's winning where both have one.
    writeFile(dir, 'member.txt', 'Subject: Hallo {{name}} ({{id}})\nFrom: a@example.org\n\n{{note}}\n');
    const toMember = await mailerWithStdin(dir, ['send', 'member.txt', '--to', 'm1@example.org', '--data', '-'], '{"note":"Ihre Daten"}', env);
    assert.equal(toMember.code, 0, toMember.stderr);
    assert.match(bodyOf(smtp.messages[1]), /Subject: Hallo Member 1 \(1\)/);
    assert.match(bodyOf(smtp.messages[1]), /Ihre Daten/);

    const retarget = await mailer(dir, ['retarget', String(first.send), '--to', 'kunde2@example.org', '--reason', 'typo'], env);
    assert.equal(retarget.code, 0, retarget.stderr);
    assert.deepEqual(smtp.messages[2].to, ['kunde2@example.org']);
    assert.match(bodyOf(smtp.messages[2]), /Hallo Bert,\r?\n- 2 x Kissen/);

    // Deferred, then retried: the same mail with the same data.
    smtp.reject['later@example.org'] = '451 4.7.1 try again later';
    const deferred = await mailerWithStdin(dir, ['send', 'bestellung', '--to', 'later@example.org', '--data', '-', '--json'], JSON.stringify(DATA), env);
    assert.equal(deferred.code, 1, deferred.stderr);
    assert.equal(JSON.parse(deferred.stdout).status, 'deferred');
    delete smtp.reject['later@example.org'];
    const retried = await mailer(dir, ['retry', '--deferred', '--email', 'later@example.org'], env);
    assert.equal(retried.code, 0, retried.stderr);
    const later = smtp.messages.find((m) => m.to[0] === 'later@example.org');
    assert.match(later ? bodyOf(later) : '', /Hallo Bert,\r?\n- 2 x Kissen/);

    // A bulk send selects the two imported members, not the system mails' addresses.
    const bulk = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--dry-run', '--json'], env)).stdout);
    assert.equal(bulk.selected, 2);
    const bad = await mailerWithStdin(dir, ['send', 'bestellung', '--to', 'kunde@example.org', '--data', '-'], '[1, 2]', env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--data/);
  } finally {
    await smtp.close();
  }
});

test('retry leaves out a failed system mail whose data prune removed, and says how to send it anew', async () => {
  const smtp = await startSmtpServer({ reject: { 'kunde@example.org': '550 5.7.1 rejected by policy' } });
  const dir = shopFolder(await folderWithMembers(1));
  const DAY = 86_400_000;
  const at = (daysAgo: number) => ({ MAILER_SMTP_URL: smtp.url, MAILER_NOW: new Date(Date.now() - daysAgo * DAY).toISOString() });
  try {
    const failed = await mailerWithStdin(dir, ['send', 'bestellung', '--to', 'kunde@example.org', '--data', '-', '--json'], JSON.stringify(DATA), at(40));
    assert.equal(JSON.parse(failed.stdout).status, 'failed', failed.stdout + failed.stderr);
    delete smtp.reject['kunde@example.org'];
    // one deferred at the same time: prune leaves its data, and retry takes it
    smtp.reject['later@example.org'] = '451 4.7.1 try again later';
    const deferred = await mailerWithStdin(dir, ['send', 'bestellung', '--to', 'later@example.org', '--data', '-', '--json'], JSON.stringify(DATA), at(40));
    assert.equal(JSON.parse(deferred.stdout).status, 'deferred', deferred.stdout + deferred.stderr);
    const deferredId = JSON.parse(deferred.stdout).send;
    delete smtp.reject['later@example.org'];
    writeFile(dir, 'mailer.json', JSON.stringify({ concurrency: 2, retention: { messages: '30d' } }));
    const dry = JSON.parse((await mailer(dir, ['retry', '--failed', '--dry-run', '--json'], at(0))).stdout);
    assert.equal(dry.retried, 1, 'before the prune its data is there');
    // Not while another process hands mails over (a live send lock): exit 4, nothing removed.
    const lockDb = new Database(path.join(dir, 'mailer.db'));
    lockDb.prepare(`INSERT INTO locks (name, pid, host, since, what) VALUES ('send', ?, ?, ?, 'retry')`).run(process.pid, os.hostname(), Date.now());
    lockDb.close();
    const locked = await mailer(dir, ['prune'], at(0));
    assert.equal(locked.code, 4, locked.stderr);
    assert.equal(JSON.parse((await mailer(dir, ['prune', '--dry-run', '--json'], at(0))).stdout).messages, 1, 'the dry run needs no lock');
    const unlock = new Database(path.join(dir, 'mailer.db'));
    unlock.prepare(`DELETE FROM locks WHERE name = 'send'`).run();
    unlock.close();
    assert.equal(JSON.parse((await mailer(dir, ['prune', '--json'], at(0))).stdout).messages, 1);
    assert.doesNotMatch((await mailer(dir, ['show', String(deferredId)], at(0))).stdout, /content was removed/);
    const deferredDry = JSON.parse((await mailer(dir, ['retry', '--deferred', '--dry-run', '--json'], at(0))).stdout);
    assert.deepEqual([deferredDry.retried, deferredDry.leftOut], [1, 0], 'its data is there: it is retried');
    const r = await mailer(dir, ['retry', '--failed'], at(0));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /left out 1: content-removed 1/);
    assert.match(r.stdout, /send it anew with its data/);
    assert.equal(smtp.messages.length, 0, 'nothing sent without its data');
  } finally {
    await smtp.close();
  }
});

test('a system mail queued while a bulk send runs is delivered by that send, before its end', async () => {
  const smtp: TestServer = await startSmtpServer({ delayMs: 15 });
  const dir = shopFolder(await folderWithMembers(300));
  const env = { MAILER_SMTP_URL: smtp.url };
  writeFile(dir, 'order.json', JSON.stringify(DATA));
  const created = JSON.parse((await mailer(dir, ['api-key', 'create', 'shop', '--json'])).stdout);
  const server = await serveApi(dir, env);
  try {
    const bulk = startMailer(dir, ['send', 'invitation.txt'], env);
    await until('the bulk send to start', () => smtp.messages.length >= 20);
    const queued = await mailer(dir, ['send', 'bestellung', '--to', 'kunde@example.org', '--data', 'order.json', '--json'], env);
    assert.equal(queued.code, 0, queued.stderr);
    const q = JSON.parse(queued.stdout);
    assert.equal(q.status, 'queued');
    const viaApi = await fetch(`${server.base}/api/send`, {
      method: 'POST', headers: { Authorization: `Bearer ${created.key}` }, body: JSON.stringify({ template: 'bestellung', to: 'api@example.org', data: DATA }),
    });
    assert.equal(viaApi.status, 202);
    assert.equal((await viaApi.json()).status, 'queued');
    const done = await bulk.done;
    assert.equal(done.code, 0, done.stderr);
    const order = smtp.messages.map((m) => m.to[0]);
    const last = order.length - 1;
    for (const to of ['kunde@example.org', 'api@example.org']) {
      const at = order.indexOf(to);
      assert.ok(at >= 0, `${to} delivered`);
      assert.ok(at < last - 50, `${to} delivered ahead of the bulk mails still waiting (at ${at} of ${order.length})`);
    }
    assert.equal(order.length, 302);
    const shown = JSON.parse((await mailer(dir, ['show', String(q.send), '--json'])).stdout);
    assert.equal(shown.status, 'sent');
  } finally {
    server.child.kill('SIGTERM');
    await server.done;
    await smtp.close();
  }
});
