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
  for (const pass of PASSWORDS) {
    // port 99999 does not exist: the URL is refused whatever its password holds
    writeFile(dir, 'mailer.json', JSON.stringify({ smtp: `smtp://alice:${pass}@127.0.0.1:99999` }));
    for (const args of [['send', 'invitation.txt'], ['check'], ['log'], ['show', '1'], ['why', '1'], ['log', '--json'], ['--json', 'check']]) {
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
  const ALL = 'a/b#c?d%e@f';
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
      const check = await mailer(dir, ['check', '--to', 'me@example.org'], env);
      assert.equal(check.code, 3);
      assert.match(check.stdout, /Authentication failed for \*\*\*/, 'check shows the masked reply');
      assertOutputHidden(`check ${pass}`, check, pass);
      // The attempt was stored: its reply is in the database, masked.
      const shown = await mailer(dir, ['--json', 'show', '1'], env);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /Authentication failed for \*\*\*/);
      assertOutputHidden(`show ${pass}`, shown, pass);
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
