import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INVITATION, mailer, membersCsv, openDb, tempDir, writeFile } from '../support/cli.js';
import { startSmtpServer, type TestServer } from '../support/smtp.js';

const members = [
  ['1', 'Anna', 'anna@example.org'],
  ['2', 'Ben', 'ben@example.org'],
  ['3', 'Cem', 'cem@gmial.com'],
  ['4', 'Dora', 'dora@example.org'],
];

async function sentInvitation(server: TestServer) {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
  assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
  writeFile(dir, 'invitation.txt', INVITATION);
  const r = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json']);
  return { dir, summary: JSON.parse(r.stdout), code: r.code };
}

const tokenOf = (raw: Buffer) => /register\/([A-Za-z0-9_-]+)/.exec(raw.toString())![1];
const sendOf = async (dir: string, email: string) => (JSON.parse((await mailer(dir, ['log', '--email', email, '--json'])).stdout) as any[])[0];

test('retry leaves an unknown mailbox out by default and includes it with --include-permanent', async () => {
  const server = await startSmtpServer({ reject: { 'anna@example.org': '550 5.1.1 User unknown' } });
  try {
    const { dir, code } = await sentInvitation(server);
    assert.equal(code, 1);
    const r = await mailer(dir, ['retry', '--failed', '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.deepEqual([result.selected, result.retried, result.leftOut, result.leftOutByReason], [1, 0, 1, { 'unknown-mailbox': 1 }]);
    const human = await mailer(dir, ['retry', '--failed', '--smtp', server.url]);
    assert.match(human.stdout, /left out 1: unknown-mailbox 1/);
    assert.match(human.stdout, /--include-permanent/);

    const forced = await mailer(dir, ['retry', '--failed', '--include-permanent', '--smtp', server.url, '--json']);
    assert.equal(forced.code, 1, 'refused again');
    assert.deepEqual([JSON.parse(forced.stdout).retried, JSON.parse(forced.stdout).failed], [1, 1]);
    const send = await sendOf(dir, 'anna@example.org');
    assert.equal(send.attempts, 2, 'a new attempt on the same send');

    // With a new address from the member file, the same failure is worth retrying.
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], [['1', 'Anna', 'anna.neu@example.org']]));
    assert.equal((await mailer(dir, ['import', 'members.csv'])).code, 0);
    const moved = JSON.parse((await mailer(dir, ['retry', '--failed', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([moved.retried, moved.sent], [1, 1]);
    assert.deepEqual(server.messages.at(-1)!.to, ['anna.neu@example.org']);
  } finally {
    await server.close();
  }
});

test('a greylisted send is delivered by retry --deferred once the server accepts it', async () => {
  const server = await startSmtpServer({ reject: { 'ben@example.org': '451 4.7.1 Greylisted, please try again later' } });
  try {
    const { dir, summary } = await sentInvitation(server);
    assert.equal(summary.deferred, 1);
    const dry = JSON.parse((await mailer(dir, ['retry', '--deferred', '--dry-run', '--json'])).stdout);
    assert.deepEqual(dry.sends.map((s: any) => [s.member, s.category]), [['2', 'greylisted']]);
    const byStatus = JSON.parse((await mailer(dir, ['retry', '--status', 'deferred', '--dry-run', '--json'])).stdout);
    assert.deepEqual(byStatus.sends, dry.sends, '--status deferred means --deferred');
    const sentAgain = await mailer(dir, ['retry', '--status', 'sent', '--dry-run']);
    assert.equal(sentAgain.code, 2);
    assert.match(sentAgain.stderr, /not sent ones/);
    delete server.reject['ben@example.org'];
    const before = server.messages.length;
    const r = await mailer(dir, ['retry', '--deferred', '--reason', 'greylisted', '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).sent, 1);
    assert.equal(server.messages.length, before + 1);
    assert.deepEqual(server.messages.at(-1)!.to, ['ben@example.org']);
    const send = await sendOf(dir, 'ben@example.org');
    assert.deepEqual([send.status, send.attempts], ['sent', 2]);
    const again = JSON.parse((await mailer(dir, ['retry', '--deferred', '--smtp', server.url, '--json'])).stdout);
    assert.equal(again.selected, 0, 'nothing left to retry');
  } finally {
    await server.close();
  }
});

test('retarget: one mail to the new address with a new token; the old token is revoked, others stay valid', async () => {
  const server = await startSmtpServer();
  try {
    const { dir } = await sentInvitation(server);
    const cemOld = server.messages.find((m) => m.to[0] === 'cem@gmial.com')!;
    const dora = server.messages.find((m) => m.to[0] === 'dora@example.org')!;
    const original = await sendOf(dir, 'cem@gmial.com');
    const before = server.messages.length;

    const r = await mailer(dir, ['retarget', String(original.id), '--to', 'Cem@GMAIL.com', '--reason', 'typo', '--smtp', server.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.deepEqual([result.email, result.status, result.revoked], ['cem@gmail.com', 'sent', ['cem@gmial.com']]);
    assert.equal(server.messages.length, before + 1, 'exactly one mail');
    const fresh = server.messages.at(-1)!;
    assert.deepEqual(fresh.to, ['cem@gmail.com']);
    assert.notEqual(tokenOf(fresh.raw), tokenOf(cemOld.raw));

    const verify = async (token: string) => mailer(dir, ['token', 'verify', token, '--json']);
    const old = await verify(tokenOf(cemOld.raw));
    assert.equal(old.code, 1);
    assert.equal(JSON.parse(old.stdout).state, 'revoked');
    const now = await verify(tokenOf(fresh.raw));
    assert.equal(now.code, 0);
    assert.deepEqual([JSON.parse(now.stdout).state, JSON.parse(now.stdout).member], ['valid', '3']);
    assert.equal((await verify(tokenOf(dora.raw))).code, 0, "another member's token stays valid");
    const unknown = await verify('AAAAAAAAAAAAAAAAAAAAAA');
    assert.deepEqual([unknown.code, JSON.parse(unknown.stdout).state], [1, 'unknown']);

    const shownOld = await mailer(dir, ['show', String(original.id)]);
    assert.match(shownOld.stdout, /retargeted/);
    assert.match(shownOld.stdout, new RegExp(`sent again as send ${result.send}`));
    const shownNew = await mailer(dir, ['show', String(result.send)]);
    assert.match(shownNew.stdout, new RegExp(`re-target of send ${original.id}`));

    const history = JSON.parse((await mailer(dir, ['why', '3', '--json'])).stdout).addresses;
    assert.deepEqual(history.map((a: any) => [a.email, a.revokedAt !== null, a.revokeReason]), [['cem@gmial.com', true, 'typo'], ['cem@gmail.com', false, null]]);

    const twice = await mailer(dir, ['retarget', String(original.id), '--to', 'cem@example.org', '--smtp', server.url]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, new RegExp(`already re-targeted, to send ${result.send}`));
  } finally {
    await server.close();
  }
});

test('why names the failure, the typo and the next step', async () => {
  const server = await startSmtpServer({ reject: { 'cem@gmial.com': '550 5.1.2 Host unknown: domain not found' } });
  try {
    const { dir } = await sentInvitation(server);
    const send = await sendOf(dir, 'cem@gmial.com');
    const r = await mailer(dir, ['why', 'cem@gmial.com']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bad-domain: 550 5\.1\.2 Host unknown/);
    assert.match(r.stdout, /The domain after the @ does not exist/);
    assert.match(r.stdout, /did they mean cem@gmail\.com/);
    assert.match(r.stdout, new RegExp(`mailer retarget ${send.id} --to cem@gmail.com`));
    const json = JSON.parse((await mailer(dir, ['why', '3', '--json'])).stdout);
    assert.deepEqual(json.typo, { address: 'cem@gmial.com', suggestion: 'cem@gmail.com' });
    assert.equal(json.sends[0].category, 'bad-domain');
    const de = await mailer(dir, ['why', '3'], { LANG: 'de_DE.UTF-8' });
    assert.match(de.stdout, /Die Domain nach dem @ gibt es nicht/);
    const fine = await mailer(dir, ['why', '4']);
    assert.match(fine.stdout, /spam folder/);
  } finally {
    await server.close();
  }
});

test('a user error rule changes the category of the next failure', async () => {
  const server = await startSmtpServer({ reject: { 'dora@example.org': '550 5.7.1 Requested action not taken: mailbox unavailable' } });
  try {
    const { dir } = await sentInvitation(server);
    assert.deepEqual([(await sendOf(dir, 'dora@example.org')).category, (await sendOf(dir, 'dora@example.org')).status], ['policy', 'failed']);
    const add = await mailer(dir, ['errors', 'add', '--match', '/mailbox unavailable/i', '--category', 'rate-limited', '--temporary', '--text', 'Dieser Anbieter drosselt']);
    assert.equal(add.code, 0, add.stderr);
    const list = JSON.parse((await mailer(dir, ['errors', 'list', '--json'])).stdout);
    assert.deepEqual([list[0].match, list[0].source], ['/mailbox unavailable/i', 'yours']);
    const r = JSON.parse((await mailer(dir, ['retry', '--failed', '--smtp', server.url, '--json'])).stdout);
    assert.equal(r.deferred, 1, 'now temporary');
    const send = await sendOf(dir, 'dora@example.org');
    assert.deepEqual([send.status, send.category], ['deferred', 'rate-limited']);
  } finally {
    await server.close();
  }
});

test('suppressed addresses are left out of send and retry, and counted', async () => {
  const server = await startSmtpServer({ reject: { 'ben@example.org': '451 4.7.1 Greylisted' } });
  try {
    const { dir } = await sentInvitation(server);
    assert.equal((await mailer(dir, ['suppress', 'add', 'BEN@example.org', '--reason', 'asked by phone'])).code, 0);
    const retry = JSON.parse((await mailer(dir, ['retry', '--deferred', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([retry.retried, retry.leftOutByReason], [0, { suppressed: 1 }]);
    assert.equal((await mailer(dir, ['suppress', 'add', 'anna@example.org'])).code, 0);
    const before = server.messages.length;
    const send = JSON.parse((await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url, '--json'])).stdout);
    assert.deepEqual([send.skipped, send.byReason.suppressed], [2, 2]);
    assert.equal(server.messages.length, before + 2);
    assert.ok(!server.messages.slice(before).some((m) => ['anna@example.org', 'ben@example.org'].includes(m.to[0])));
    const list = JSON.parse((await mailer(dir, ['suppress', 'list', '--json'])).stdout);
    assert.deepEqual(list.map((s: any) => s.email).sort(), ['anna@example.org', 'ben@example.org']);
    assert.equal((await mailer(dir, ['suppress', 'remove', 'anna@example.org'])).code, 0);
    const again = await mailer(dir, ['suppress', 'remove', 'anna@example.org']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /anna@example\.org is not suppressed/);
  } finally {
    await server.close();
  }
});

test('bad input exits 2 naming it, and changes nothing', async () => {
  const server = await startSmtpServer();
  try {
    const { dir } = await sentInvitation(server);
    const cases: [string[], RegExp][] = [
      [['retarget', '999', '--to', 'x@example.org', '--smtp', server.url], /no send 999/],
      [['retarget', '1', '--to', 'not an address', '--smtp', server.url], /"not an address" is not a valid e-mail address/],
      [['errors', 'add', '--match', '550', '--category', 'lost-in-space', '--permanent'], /unknown category "lost-in-space"/],
      [['errors', 'add', '--match', '/(unclosed/', '--category', 'other', '--permanent'], /not a valid regular expression/],
      [['errors', 'add', '--match', '550', '--category', 'other'], /--permanent or --temporary/],
      [['retry'], /--failed, --deferred/],
      [['why', 'nobody@example.org'], /no member with id or address "nobody@example.org"/],
      [['suppress', 'add', 'nope'], /"nope" is not a valid e-mail address/],
    ];
    for (const [args, message] of cases) {
      const r = await mailer(dir, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const db = openDb(dir);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM addresses WHERE revoked_at IS NOT NULL`).get() as any).n, 0);
    assert.equal((db.prepare(`SELECT count(*) AS n FROM error_rules`).get() as any).n, 0);
    db.close();
  } finally {
    await server.close();
  }
});
