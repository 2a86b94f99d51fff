import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachmentFiles, confinedPath } from '../../src/send/attachments.js';
import { base64Length } from '../../src/mail/compose.js';

test('an Attachment: path stays inside the template\'s folder by its words', () => {
  const rows: [string, string | null][] = [
    ['befunde/1.pdf', path.join('befunde', '1.pdf')],
    ['./befunde/../befunde/1.pdf', path.join('befunde', '1.pdf')],
    ['a.pdf', 'a.pdf'],
    ['../../etc/passwd', null],
    ['befunde/../../x.pdf', null],
    ['..', null],
    ['.', null],
    ['', null],
    ['/etc/passwd', null],
    ['C:\\Befunde\\1.pdf', null],
    ['c:/x.pdf', null],
    ['\\\\server\\share\\x.pdf', null],
  ];
  for (const [given, expected] of rows) assert.equal(confinedPath(given), expected, given);
});

test('a symlink is followed only while it stays in the folder; a missing file names its path', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-attach-'));
  try {
    const folder = path.join(root, 'praxis');
    fs.mkdirSync(path.join(folder, 'befunde'), { recursive: true });
    fs.writeFileSync(path.join(root, 'geheim.txt'), 'outside');
    fs.writeFileSync(path.join(folder, 'befunde', 'Befund_Müller.pdf'), 'inside');
    fs.symlinkSync(path.join(root, 'geheim.txt'), path.join(folder, 'befunde', 'out.pdf'));
    fs.symlinkSync('Befund_Müller.pdf', path.join(folder, 'befunde', 'in.pdf'));
    fs.symlinkSync(root, path.join(folder, 'up'));

    const ok = attachmentFiles(folder, ['befunde/Befund_Müller.pdf', 'befunde/in.pdf']);
    assert.ok(ok.ok);
    assert.deepEqual(ok.files.map((f) => [f.name, f.size]), [['Befund_Müller.pdf', 6], ['in.pdf', 6]]);

    for (const given of ['befunde/out.pdf', 'up/geheim.txt', '../geheim.txt', path.join(root, 'geheim.txt')]) {
      const r = attachmentFiles(folder, [given]);
      assert.ok(!r.ok && r.category === 'attachment-path', given);
    }
    const missing = attachmentFiles(folder, ['befunde/Befund_Müller.pdf', 'befunde/7.pdf']);
    assert.ok(!missing.ok && missing.category === 'attachment-missing');
    assert.match(missing.reason, /befunde\/7\.pdf/);
    const dir = attachmentFiles(folder, ['befunde']);
    assert.ok(!dir.ok && dir.category === 'attachment-missing' && /not a file/.test(dir.reason));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('base64Length is the length of nodemailer\'s base64 lines', () => {
  for (const n of [0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 10_000]) {
    const b64 = Buffer.alloc(n).toString('base64');
    const lines = b64.match(/.{1,76}/g) ?? [];
    assert.equal(base64Length(n), lines.join('\r\n').length, String(n));
  }
});

test('Attachment: lines are instructions, not headers: repeatable, rendered per member, a line break refused', async () => {
  const { parseTemplate, render } = await import('../../src/send/template.js');
  const t = parseTemplate('Subject: Befund\nAttachment: befunde/{{id}}.pdf\nX-Praxis: Roth\nattachment: {{anhang}}\n\nHallo', { path: 'befund.txt', html: null, footer: null });
  assert.deepEqual(t.extraHeaders, [['X-Praxis', 'Roth']]);
  const r = render(t, { id: '7', anhang: 'merkblatt.pdf', name: '', email: '', token: '' }, { allowEmpty: true });
  assert.ok(r.ok);
  assert.deepEqual(r.message.attachments, ['befunde/7.pdf', 'merkblatt.pdf']);
  assert.deepEqual(r.message.extraHeaders, [['X-Praxis', 'Roth']]);
  const bad = render(t, { id: '7', anhang: 'a.pdf\nBcc: x@example.org', name: '', email: '', token: '' }, { allowEmpty: true });
  assert.ok(!bad.ok && bad.category === 'header-injection');
  const none = render(parseTemplate('Subject: S\n\nHallo', { path: 's.txt', html: null, footer: null }), { id: '1', name: '', email: '', token: '' }, { allowEmpty: true });
  assert.ok(none.ok && none.message.attachments === undefined);
});
