import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { INVITATION, folderWithMembers, mailer, membersCsv, startMailer, tempDir, writeFile, type CliResult } from '../support/cli.js';
import { startSmtpServer } from '../support/smtp.js';

// Every file the CLI makes is checked as a user with the common umask would get it.
process.umask(0o022);

/** Passwords holding each character that ends a URL's authority, starts a query or escapes. */
const PASSWORDS = ['s3cr/et', 's3cr#et', 's3cr?et', '50%off', 's3cr@et'];
/** All of them in one: this one goes through every command, each of the others through one. */
const ALL = 'a/b#c?d%e@f';

/** What a password must not be seen as: typed, or percent-encoded as it may sit in a URL. */
function assertHidden(where: string, text: string | Buffer, pass: string): void {
  const s = Buffer.isBuffer(text) ? text.toString('latin1') : text;
  for (const form of new Set([pass, encodeURIComponent(pass)])) {
    assert.ok(!s.includes(form), `${where} shows the password ${pass}:\n${s.slice(Math.max(0, s.indexOf(form) - 300), s.indexOf(form) + 100)}`);
  }
}

function assertOutputHidden(label: string, r: CliResult, pass: string): void {
  assertHidden(`${label}: stdout`, r.stdout, pass);
  assertHidden(`${label}: stderr`, r.stderr, pass);
}

/** Every file under dir that mailer wrote (the database, its -wal and -shm, the outbox). */
function writtenFiles(dir: string, skip: string[]): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    if (entry.isFile() && !skip.includes(path.relative(dir, file))) out.push(file);
  }
  return out;
}

test('an SMTP URL refused in mailer.json names itself without the password, in every command', async () => {
  const dir = await folderWithMembers(1);
  const every = [['send', 'invitation.txt'], ['check'], ['log'], ['show', '1'], ['why', '1'], ['log', '--json'], ['--json', 'check']];
  for (const pass of [...PASSWORDS, ALL]) {
    // port 99999 does not exist: the URL is refused whatever its password holds
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: `smtp://alice:${pass}@127.0.0.1:99999` }));
    for (const args of pass === ALL ? every : [['log']]) {
      const r = await mailer(dir, args);
      assert.equal(r.code, 2, `${args.join(' ')} with ${pass}: ${r.stderr}`);
      assert.match(r.stdout + r.stderr, /is not an SMTP URL/);
      assert.match(r.stdout + r.stderr, /smtp:\/\/alice:\*\*\*@127\.0\.0\.1:99999/);
      assertOutputHidden(`${args.join(' ')}`, r, pass);
    }
  }
});

test('a password with / # ? % @ in the URL logs in as typed', async () => {
  for (const pass of PASSWORDS) {
    const server = await startSmtpServer({ auth: { user: 'alice', pass } });
    try {
      const dir = await folderWithMembers(1);
      writeFile(dir, 'mailer.json', JSON.stringify({ smtp: `smtp://alice:${pass}@127.0.0.1:${server.port}` }));
      const check = await mailer(dir, ['check', '--to', 'me@example.org']);
      assert.equal(check.code, 0, `${pass}: ${check.stdout}${check.stderr}`);
      const sent = await mailer(dir, ['send', 'invitation.txt']);
      assert.equal(sent.code, 0, `${pass}: ${sent.stderr}`);
      assert.equal(server.messages.filter((m) => m.to.includes('m1@example.org')).length, 1);
      assertOutputHidden('check', check, pass);
      assertOutputHidden('send', sent, pass);
    } finally {
      await server.close();
    }
  }
});

test('a server that echoes a refused password: masked in every output, the database and the outbox', async () => {
  const inUrl = (pass: string) => ({ pass, url: (port: number) => `smtp://alice:${pass}@127.0.0.1:${port}`, env: {} as Record<string, string> });
  const cases = [
    { ...inUrl(ALL), everyCommand: true },
    { pass: `env-${ALL}`, url: (port: number) => `smtp://alice@127.0.0.1:${port}`, env: { MAILER_SMTP_PASSWORD: `env-${ALL}` }, everyCommand: true },
    ...PASSWORDS.map((pass) => ({ ...inUrl(pass), everyCommand: false })),
  ];
  const server = await startSmtpServer({ auth: { user: 'alice', pass: 'the-right-one' }, echoPasswordOnAuthFailure: true });
  try {
    for (const { pass, url, env, everyCommand } of cases) {
      const dir = await folderWithMembers(1);
      writeFile(dir, 'mailer.json', JSON.stringify({ smtp: url(server.port) }));
      const send = await mailer(dir, ['send', 'invitation.txt'], env);
      assert.equal(send.code, 3, `${pass}: ${send.stderr}`);
      assert.match(send.stderr, /Authentication failed for \*\*\*/, 'the reply is shown, masked');
      assertOutputHidden(`send ${pass}`, send, pass);
      if (everyCommand) {
        const check = await mailer(dir, ['check', '--to', 'me@example.org'], env);
        assert.equal(check.code, 3);
        assert.match(check.stdout, /Authentication failed for \*\*\*/, 'check shows the masked reply');
        assertOutputHidden(`check ${pass}`, check, pass);
        // The attempt was stored: its reply is in the database, masked.
        const shown = await mailer(dir, ['--json', 'show', '1'], env);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stdout, /Authentication failed for \*\*\*/);
        assertOutputHidden(`show ${pass}`, shown, pass);
      }
      const runs: [string[], number][] = everyCommand ? [
        [['--json', 'check', '--to', 'me@example.org'], 3], [['send', 'invitation.txt', '--json'], 3],
        [['log'], 0], [['log', '--json'], 0], [['log', '--csv'], 0], [['show', '1'], 0], [['why', '1'], 0], [['--json', 'why', '1'], 0],
      ] : [];
      for (const [args, code] of runs) {
        const r = await mailer(dir, args, env);
        assert.equal(r.code, code, `${args.join(' ')} ${pass}: ${r.stdout}${r.stderr}`);
        assertOutputHidden(`${args.join(' ')}`, r, pass);
      }
      // Every byte mailer wrote: the database (its -wal is checkpointed into it at the last
      // close), and whatever -wal, -shm or outbox file is left.
      for (const file of writtenFiles(dir, ['mailer.json', 'members.csv', 'invitation.txt'])) {
        assertHidden(path.relative(dir, file), fs.readFileSync(file), pass);
      }
    }
  } finally {
    await server.close();
  }
});

test('log --csv: a key, an address or a server reply that a spreadsheet would run as a formula is inert', async () => {
  const REPLY = 'ok;=HYPERLINK("http://evil.example";"click")';
  const server = await startSmtpServer({ acceptReply: REPLY });
  try {
    const dir = tempDir();
    const members = [
      ["=cmd|' /C calc'!A0", 'Eve', 'eve@example.org'],
      ['+1', 'Plus', '=1+1@example.org'],
      ['-5', 'Minus', '-2@example.org'],
      ['@SUM(A1)', 'At', '@x@example.org'],
      ['6', 'Plain', 'plain@example.org'],
    ];
    writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'], members));
    const imported = await mailer(dir, ['import', 'members.csv']);
    assert.ok(imported.code === 0 || imported.code === 1, imported.stderr);
    writeFile(dir, 'invitation.txt', INVITATION);
    const sent = await mailer(dir, ['send', 'invitation.txt', '--smtp', server.url]);
    assert.ok(sent.code === 0 || sent.code === 1, sent.stderr);
    const r = await mailer(dir, ['log', '--csv', '--limit', '0']);
    assert.equal(r.code, 0, r.stderr);
    const rows = parse(r.stdout, { columns: true }) as Record<string, string>[];
    assert.ok(rows.length >= 3, r.stdout);
    for (const row of rows) {
      for (const [column, cell] of Object.entries(row)) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `${column} of send ${row.id}: ${cell}`);
    }
    const byMember = new Map(rows.map((row) => [row.member, row]));
    assert.equal(byMember.get("'=cmd|' /C calc'!A0")?.email, 'eve@example.org', 'the key keeps its text behind the quote');
    assert.ok(byMember.has("'+1") && byMember.has("'-5") && byMember.has("'@SUM(A1)"), [...byMember.keys()].join(' | '));
    assert.equal(byMember.get("'+1")?.email, "'=1+1@example.org");
    assert.equal(byMember.get('6')?.email, 'plain@example.org', 'an ordinary cell is left as it is');
    assert.equal(byMember.get('6')?.reason, `250 ${REPLY}`);
    // A spreadsheet set to split on ";" (a German locale) must not find a cell in the reply either.
    assert.ok(r.stdout.includes(`"250 ${REPLY.replace(/"/g, '""')}"`), r.stdout);
  } finally {
    await server.close();
  }
});

const modeOf = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

test('under umask 022 the database, its -wal and -shm, the outbox and its mails are for their owner only', async () => {
  const dir = await folderWithMembers(3);
  const send = await mailer(dir, ['send', 'invitation.txt']);
  assert.equal(send.code, 0, send.stderr);
  assert.equal(modeOf(path.join(dir, 'mailer.db')), '600');
  assert.equal(modeOf(path.join(dir, 'outbox')), '700');
  const mails = fs.readdirSync(path.join(dir, 'outbox'));
  assert.equal(mails.length, 3);
  for (const mail of mails) assert.equal(modeOf(path.join(dir, 'outbox', mail)), '600', mail);

  // -wal and -shm live while a command has the database open: looked at in the middle of a
  // send, three rounds of four connections long, after its first mail.
  const server = await startSmtpServer({ delayMs: 300 });
  try {
    const slow = await folderWithMembers(12);
    const run = startMailer(slow, ['send', 'invitation.txt', '--smtp', server.url]);
    const until = Date.now() + 20_000;
    while (server.messages.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const modes = ['mailer.db', 'mailer.db-wal', 'mailer.db-shm'].map((f) => `${f} ${modeOf(path.join(slow, f))}`);
    assert.equal((await run.done).code, 0);
    assert.deepEqual(modes, ['mailer.db 600', 'mailer.db-wal 600', 'mailer.db-shm 600']);
  } finally {
    await server.close();
  }
});

test('a database an older mailer left readable by others is tightened at the next open; a mail written over is made anew', async () => {
  const dir = await folderWithMembers(1);
  fs.chmodSync(path.join(dir, 'mailer.db'), 0o644);
  fs.mkdirSync(path.join(dir, 'outbox'));
  writeFile(dir, 'outbox/1.eml', 'left by another database');
  fs.chmodSync(path.join(dir, 'outbox', '1.eml'), 0o644);
  assert.equal((await mailer(dir, ['send', 'invitation.txt'])).code, 0);
  assert.equal(modeOf(path.join(dir, 'mailer.db')), '600');
  assert.equal(modeOf(path.join(dir, 'outbox', '1.eml')), '600');
  assert.match(fs.readFileSync(path.join(dir, 'outbox', '1.eml'), 'utf8'), /Hallo Member 1/);
  assert.equal(modeOf(path.join(dir, 'outbox')), '755', 'a folder the user made keeps its mode');
});
