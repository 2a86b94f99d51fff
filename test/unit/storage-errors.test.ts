import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, storageProblem } from '../../src/errors.js';
import { printable } from '../../src/ui/printable.js';

test('file and disk conditions are explained with the file and an exit code, not called a bug', () => {
  const rows: [code: string, extra: Record<string, string>, exit: number | null, message: RegExp][] = [
    ['SQLITE_FULL', {}, ExitCode.badInput, /^the disk is full: no space left to write \/d\/mailer\.db; .*nothing recorded before it was lost$/],
    ['ENOSPC', { path: '/d/outbox/7.eml' }, ExitCode.badInput, /^the disk is full: no space left to write \/d\/outbox\/7\.eml/],
    ['SQLITE_IOERR_WRITE', {}, ExitCode.badInput, /^cannot write \/d\/mailer\.db: disk I\/O error .*nothing recorded before it was lost$/],
    ['SQLITE_READONLY', {}, ExitCode.badInput, /^\/d\/mailer\.db is read-only/],
    ['SQLITE_READONLY_DBMOVED', {}, ExitCode.badInput, /^\/d\/mailer\.db is read-only/],
    ['EROFS', { path: '/d/mailer.db' }, ExitCode.badInput, /is read-only/],
    ['SQLITE_CANTOPEN', {}, ExitCode.badInput, /^cannot open database \/d\/mailer\.db$/],
    ['SQLITE_NOTADB', {}, ExitCode.badInput, /^\/d\/mailer\.db is not a mailer database: it is not an SQLite file$/],
    ['SQLITE_CORRUPT', {}, ExitCode.badInput, /^database \/d\/mailer\.db is damaged/],
    ['EISDIR', { path: '/d/members' }, ExitCode.badInput, /^\/d\/members is a folder, not a file$/],
    ['SQLITE_CONSTRAINT_UNIQUE', {}, null, /./],
    ['', {}, null, /./],
  ];
  for (const [code, extra, exit, message] of rows) {
    const err = Object.assign(new Error(code), { code, ...extra });
    const problem = storageProblem(err, '/d/mailer.db');
    if (exit === null) {
      assert.equal(problem, null, code);
      continue;
    }
    assert.ok(problem, code);
    assert.equal(problem.exitCode, exit, code);
    assert.match(problem.message, message, code);
    assert.ok(problem.hint, code);
  }
});

test('printable() escapes control characters, and keeps line breaks and tabs only for layout', () => {
  const rows: [text: string, layout: boolean, shown: string][] = [
    ['Al\u0000ice', false, 'Al\\0ice'],
    ['\u001b[2Jcleared', false, '\\x1b[2Jcleared'],
    ['bell\u0007 del\u007f csi\u009b', false, 'bell\\x07 del\\x7f csi\\x9b'],
    ['a\r\nb\tc', false, 'a\\r\\nb\\tc'],
    ['a\r\nb\tc', true, 'a\\r\nb\tc'],
    ['evil\u202egnp.exe', false, 'evil\\u{202e}gnp.exe'],
    ['Jörg Müller 日本 🎉 \\0', false, 'Jörg Müller 日本 🎉 \\0'],
  ];
  for (const [text, layout, shown] of rows) assert.equal(printable(text, layout), shown, JSON.stringify(text));
});
