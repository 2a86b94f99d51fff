import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPlaceholders, parseTemplate, render } from '../../src/core/template.js';
import { MailerError } from '../../src/errors.js';

const parse = (source: string, html: string | null = null, footer: string | null = null) => parseTemplate(source, { path: 'invitation.txt', html, footer });

test('headers, type from the Type: line or the file name, placeholders collected', () => {
  const t = parse('Subject: Hallo {{name}}\nFrom: V <v@x.de>\nX-Campaign: {{region}}\n\n{{#vip}}Danke!{{/vip}} {{token}}\n');
  assert.equal(t.type, 'invitation');
  assert.deepEqual([...t.variables].sort(), ['name', 'region', 'token']);
  assert.deepEqual([...t.names].sort(), ['name', 'region', 'token', 'vip']);
  assert.deepEqual(t.extraHeaders, [['X-Campaign', '{{region}}']]);
  assert.equal(parse('Subject: x\nType: reminder\n\nbody').type, 'reminder');
});

test('bad template files are refused with the file and what to do', () => {
  assert.throws(() => parse('Subject: x\nno blank line'), /no blank line/);
  assert.throws(() => parse('From: a@b.de\n\nbody'), /no Subject/);
  assert.throws(() => parse('Subject: x\nBcc: spy@evil.example\n\nbody'), /Bcc: cannot be set/);
  assert.throws(() => parse('Subject: x\nthis is not a header\n\nbody'), /not a header line/);
  assert.throws(() => parse('Subject: x\n\n{{#open}} never closed'), MailerError);
});

test('an unknown placeholder is named', () => {
  const t = parse('Subject: {{nmae}}\n\n{{name}} {{region}}');
  assert.throws(() => checkPlaceholders(t, ['region']), /\{\{nmae\}\} is not a member field/);
  assert.doesNotThrow(() => checkPlaceholders(parse('Subject: {{name}}\n\n{{region}} {{id}} {{email}} {{token}}'), ['region']));
});

test('text unescaped, HTML escaped, footer appended, header line breaks refused, empty fields skipped', () => {
  const t = parse('Subject: Hallo {{name}}\n\nHallo {{name}}\n', '<p>{{name}}</p>', 'Verein e.V.');
  const view = { name: "O'Brien & Co", id: '1', email: 'o@example.com', token: 'T' };
  const r = render(t, view, { allowEmpty: false });
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.message.subject, "Hallo O'Brien & Co");
  assert.equal(r.message.text, "Hallo O'Brien & Co\n\n-- \nVerein e.V.");
  assert.equal(r.message.html, '<p>O&#39;Brien &amp; Co</p>');

  const injected = render(t, { ...view, name: 'Eve\r\nBcc: spy@evil.example' }, { allowEmpty: false });
  assert.deepEqual([injected.ok, !injected.ok && injected.category], [false, 'header-injection']);

  const empty = render(t, { ...view, name: ' ' }, { allowEmpty: false });
  assert.deepEqual([empty.ok, !empty.ok && empty.category], [false, 'empty-field']);
  assert.equal(render(t, { ...view, name: '' }, { allowEmpty: true }).ok, true);
});
