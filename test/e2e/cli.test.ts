import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli.js';
import { BIN, ROOT, folderWithMembers, mailer, membersCsv, tempDir, writeFile, type CliResult } from '../support/cli.js';

/** Every command and subcommand of the program, as the words that name it. */
function commandPaths(command: Command, prefix: string[] = []): { path: string[]; command: Command }[] {
  return [{ path: prefix, command }, ...command.commands.flatMap((c) => commandPaths(c, [...prefix, c.name()]))];
}

/** The words of an example line, as a shell splits them (quotes; a redirection is the shell's). */
function words(line: string): string[] {
  const out = [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  const redirect = out.indexOf('>');
  return redirect < 0 ? out : out.slice(0, redirect);
}

test('every command and subcommand ends its --help with examples that parse, and shows no "(default: [])"', async () => {
  const all = commandPaths(buildProgram());
  assert.ok(all.length > 25, `only ${all.length} commands found`);
  for (const { path: words_ } of all) {
    const r = await mailer(tempDir(), [...words_, '--help']);
    const name = ['mailer', ...words_].join(' ');
    assert.equal(r.code, 0, `${name} --help: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /\(default: \[\]\)/, `${name} --help`);
    const block = /\nExamples:\n((?: {2}\$ mailer .+\n){1,2})$/.exec(r.stdout);
    assert.ok(block, `${name} --help does not end with one or two examples:\n${r.stdout}`);
    for (const example of block[1].trim().split('\n').map((l) => l.replace(/^\s*\$ /, ''))) {
      const args = words(example);
      assert.equal(args[0], 'mailer', example);
      assert.deepEqual(args.slice(1, 1 + words_.length), words_, `${name}: the example "${example}" is of another command`);
      // The example runs against a program whose actions do nothing: flags, arguments and
      // required options are checked by commander as for a real run.
      const program = buildProgram();
      let ran = '';
      for (const { command } of commandPaths(program)) {
        if (command.commands.length === 0) command.action(() => { ran = command.name(); });
        command.configureOutput({ writeOut: () => {}, writeErr: () => {} });
      }
      await assert.doesNotReject(program.parseAsync(args.slice(1), { from: 'user' }), `${example} does not parse`);
      assert.ok(ran, `${example} runs no command`);
    }
  }
});

test('show prints a message mailer stored without loading a MIME parser (it starts as fast as log)', async () => {
  const dir = await folderWithMembers(1);
  assert.equal((await mailer(dir, ['send', 'invitation.txt', '-q'])).code, 0);
  const traced = async (args: string[]): Promise<{ r: CliResult; modules: string[] }> => {
    const trace = path.join(dir, `trace-${args[0]}.txt`);
    const hook = pathToFileURL(path.join(ROOT, 'dist', 'test', 'support', 'trace-imports.js')).href;
    const r = await mailer(dir, args, { NODE_OPTIONS: `--import ${hook}`, MAILER_TRACE_IMPORTS: trace });
    return { r, modules: fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8').trim().split('\n') : [] };
  };
  const shown = await traced(['show', '1']);
  assert.equal(shown.r.code, 0, shown.r.stderr);
  assert.match(shown.r.stdout, /^Subject: Einladung für Member 1$/m);
  assert.match(shown.r.stdout, /^From: "Verein" <noreply@verein\.example>$/m);
  assert.match(shown.r.stdout, /^Hallo Member 1,\nIhr Link: https:\/\/vote\.example\/register\/[\w-]+\n/m);
  assert.ok(shown.modules.some((m) => m.endsWith('/dist/src/cli.js')), 'the trace sees the modules of the run');
  assert.deepEqual(shown.modules.filter((m) => /\/node_modules\/(mailparser|libmime|html-to-text)\//.test(m)), []);
  // The same trace does see mailparser where it is needed: reading a bounce.
  const bounce = await traced(['bounces', 'import', path.join(ROOT, 'test', 'fixtures', 'bounces', 'rfc3464-postfix.eml')]);
  assert.ok(bounce.modules.some((m) => m.includes('/node_modules/mailparser/')), 'bounces import loads mailparser');
});

const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

test('control characters of stored data reach no printer raw: log, why, show, mailings, stats, import, errors', async () => {
  const dir = await folderWithMembers(2);
  assert.equal((await mailer(dir, ['send', 'invitation.txt', '-q'])).code, 0);
  const db = new Database(path.join(dir, 'mailer.db'));
  db.prepare("UPDATE members SET name = ? WHERE key = '1'").run('Al\u0000ice\u001b[2J');
  db.prepare("UPDATE sends SET status = 'failed', category = 'other', reason = ? WHERE id = 1").run('550 evil\u001b[31m reply\u0007');
  db.prepare('UPDATE attempts SET response = ? WHERE send_id = 1').run('550 evil\u001b[31m reply\u0007');
  db.prepare('UPDATE mailings SET status_reason = ? WHERE id = 1').run('stopped\u001b]0;pwned\u0007');
  db.close();
  const runs: [string, CliResult][] = [];
  for (const args of [['log'], ['why', '1'], ['show', '1'], ['mailings'], ['stats'], ['log', '--member', '1', '--json'], ['show', '1', '--json']]) {
    const r = await mailer(dir, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    runs.push([args.join(' '), r]);
  }
  writeFile(dir, 'evil.csv', membersCsv(['id', 'name', 'email'], [['3', 'Bob\u001b[2J', 'bob\u001b[2J@example.org'], ['4\u0000', 'x', 'x@example.org']]));
  runs.push(['import', await mailer(dir, ['import', 'evil.csv'])]);
  runs.push(['why', await mailer(dir, ['why', 'Al\u001b[2J'])]);
  for (const [what, r] of runs) {
    assert.doesNotMatch(r.stdout, RAW_CONTROL, `${what} stdout: ${JSON.stringify(r.stdout)}`);
    assert.doesNotMatch(r.stderr, RAW_CONTROL, `${what} stderr: ${JSON.stringify(r.stderr)}`);
  }
  const out = Object.fromEntries(runs.map(([what, r]) => [what, r.stdout]));
  assert.match(out.log, /evil\\x1b\[31m reply\\x07/);
  assert.match(out['why 1'], /Al\\0ice\\x1b\[2J/);
  assert.match(out['why 1'], /evil\\x1b\[31m reply\\x07/);
  assert.match(out['show 1'], /member 1 \(Al\\0ice\\x1b\[2J\)/);
  assert.match(out['show 1'], /550 evil\\x1b\[31m reply\\x07/);
  assert.match(out.mailings, /stopped\\x1b\]0;pwned\\x07/);
  // JSON carries the exact value, escaped the JSON way.
  assert.equal(JSON.parse(out['show 1 --json']).reason, '550 evil\u001b[31m reply\u0007');
  // --raw is the exact message, for > mail.eml.
  const raw = await mailer(dir, ['show', '2', '--raw']);
  assert.deepEqual(raw.stdoutBytes, fs.readFileSync(path.join(dir, 'outbox', '2.eml')));
});

test('a SQLite file of another program, random bytes, or a folder is refused as a database, and left as it was', async () => {
  const dir = tempDir();
  const foreign = path.join(dir, 'foreign.db');
  const other = new Database(foreign);
  other.exec("CREATE TABLE members (name TEXT); INSERT INTO members VALUES ('theirs')");
  other.close();
  fs.chmodSync(foreign, 0o644);
  const before = fs.readFileSync(foreign);
  const r = await mailer(dir, ['log', '--db', foreign]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /foreign\.db is not a mailer database: it has tables of another program \(members\)/);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.deepEqual(fs.readFileSync(foreign), before);
  assert.equal(fs.statSync(foreign).mode & 0o777, 0o644, 'not ours: its mode is left as it was');

  const noise = writeFile(dir, 'noise.db', Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 251)));
  const n = await mailer(dir, ['import', 'x.csv', '--db', noise]);
  assert.equal(n.code, 2, n.stderr);
  assert.match(n.stderr, /noise\.db is not a mailer database: it is not an SQLite file/);

  fs.mkdirSync(path.join(dir, 'folder.db'));
  const f = await mailer(dir, ['log', '--db', 'folder.db']);
  assert.equal(f.code, 2, f.stderr);
  assert.match(f.stderr, /folder\.db is a folder/);

  // An empty file is a new database to set up.
  writeFile(dir, 'empty.db', '');
  assert.equal((await mailer(dir, ['log', '--db', 'empty.db'])).code, 0);
});

test('a write that does not fit on the disk is explained, names the database, and loses nothing', async () => {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(['id', 'name', 'email'],
    Array.from({ length: 20_000 }, (_, i) => [String(i), `Member ${i} with a longish name`, `m${i}@example.org`])));
  // A file size limit (ulimit -f, with SIGXFSZ ignored) fails SQLite's writes as a full disk does.
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('/bin/sh', ['-c', `trap '' XFSZ; ulimit -f 300; exec "${process.execPath}" "${BIN}" import members.csv`], {
      cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|bug in mailer/);
  assert.match(r.stderr, new RegExp(`cannot write ${path.join(dir, 'mailer.db').replace(/[.\\/]/g, '\\$&')}.*rolled back; nothing recorded before it was lost`));
  // Without the limit, the same import goes through on the same database.
  const again = await mailer(dir, ['import', 'members.csv']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /read 20000: 20000 new/);
});
