import { test } from 'node:test';
import assert from 'node:assert/strict';
import Mustache from 'mustache';
import { checkPlaceholders, parseTemplate, render } from '../../src/send/template.js';
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

test('a Mustache partial is refused, naming it and the file it is in', () => {
  const rows: [string, string | null, RegExp][] = [
    ['Subject: x\n\n{{> kopf}}\nText', null, /^invitation\.txt: the placeholder \{\{> kopf\}\} includes another template \(a partial\)/],
    ['Subject: {{>betreff}}\n\nText', null, /^invitation\.txt: the placeholder \{\{> betreff\}\}/],
    ['Subject: x\n\n{{#vip}}{{> dank}}{{/vip}}', null, /^invitation\.txt: the placeholder \{\{> dank\}\}/],
    ['Subject: x\n\nText', '<p>{{^name}}{{> fuss}}{{/name}}</p>', /^invitation\.html: the placeholder \{\{> fuss\}\}/],
  ];
  for (const [source, html, message] of rows) {
    assert.throws(() => parseTemplate(source, { path: 'invitation.txt', html, htmlPath: 'invitation.html', footer: null }),
      (err: unknown) => err instanceof MailerError && err.exitCode === 2 && message.test(err.message), source);
  }
  assert.throws(() => parse('Subject: x\n\nText', null, 'Gruß {{> signatur}}'), /the footer of invitation\.txt: the placeholder \{\{> signatur\}\}/);
});

test('a template is parsed once: rendering neither parses it again nor keys a cache by its text', () => {
  const body = 'Hallo {{name}}, {{#vip}}danke{{/vip}}\n'.repeat(20_000);
  const t = parse(`Subject: Hallo {{name}}\n\n${body}`, `<p>{{name}}</p>${body}`);
  const proto = Mustache.Writer.prototype as { parse: (...args: unknown[]) => unknown };
  const parse0 = proto.parse;
  let parsed = 0;
  proto.parse = function (this: unknown, ...args: unknown[]) { parsed++; return parse0.apply(this, args); };
  try {
    for (const name of ['Anna', 'Ben', 'Cem']) {
      const r = render(t, { name, vip: '1', id: '1', email: 'a@example.org', token: 'T' }, { allowEmpty: false });
      assert.ok(r.ok && r.message.html!.startsWith(`<p>${name}</p>Hallo ${name}, danke\n`));
      assert.equal(r.ok && r.message.text, `Hallo ${name}, danke\n`.repeat(20_000));
    }
  } finally {
    proto.parse = parse0;
  }
  assert.equal(parsed, 0, 'no part parsed again per member');
  const cache = Mustache.templateCache as unknown as { _cache: Record<string, unknown> };
  assert.ok(!Object.keys(cache._cache).some((key) => key.includes('{{#vip}}danke')), 'the template kept by no cache keyed by its text');
});
