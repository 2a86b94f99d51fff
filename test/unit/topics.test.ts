import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, memberLanguage, plainPage, senderName, unsubscribePage } from '../../src/triage/pages.js';
import { parseTemplate } from '../../src/send/template.js';
import type { LinkedSend } from '../../src/domain/types.js';

test('the pages\' language: a field language or sprache, else the setting', () => {
  const rows: [Record<string, unknown>, 'de' | 'en', 'de' | 'en'][] = [
    [{ sprache: 'en' }, 'de', 'en'],
    [{ Sprache: 'Englisch' }, 'de', 'en'],
    [{ language: 'en-GB' }, 'de', 'en'],
    [{ language: 'de' }, 'en', 'de'],
    [{ sprache: 'Deutsch' }, 'en', 'de'],
    [{ sprache: '' }, 'en', 'en'],
    [{ sprache: 'fr' }, 'de', 'de'],
    [{ spracheX: 'en' }, 'de', 'de'],
    [{}, 'de', 'de'],
    [{}, 'en', 'en'],
  ];
  for (const [fields, fallback, expected] of rows) assert.equal(memberLanguage(fields, fallback), expected, JSON.stringify([fields, fallback]));
});

test('the sender a page names: organisation, else the From\'s name, else its address', () => {
  const rows: [string | null, string | undefined, string | null][] = [
    ['Verein e.V. <noreply@verein.example>', undefined, 'Verein e.V.'],
    ['"Müller, Schmidt & Co" <shop@example.org>', undefined, 'Müller, Schmidt & Co'],
    ['<noreply@verein.example>', undefined, 'noreply@verein.example'],
    ['noreply@verein.example', undefined, 'noreply@verein.example'],
    ['Verein e.V. <noreply@verein.example>', 'Turnverein Musterstadt', 'Turnverein Musterstadt'],
    ['{{region}} <x@example.org>', undefined, null],
    [null, undefined, null],
  ];
  for (const [from, organisation, expected] of rows) assert.equal(senderName(from, organisation), expected, String(from));
});

test('every value a page shows is escaped', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  const found: LinkedSend = {
    id: 1, email: 'x"@example.org', memberKey: '1', memberName: '<script>alert(1)</script>', memberFields: { sprache: 'en' },
    topic: 'news<b>', required: false, sender: '"<i>Evil</i>" <e@example.org>', revoked: false,
  };
  const page = unsubscribePage(found, 'conf"irm', { language: 'de' });
  assert.equal(page.language, 'en');
  for (const raw of ['<script>', '<b>', '<i>', 'x"@', 'conf"irm']) assert.ok(!page.html.includes(raw), raw);
  assert.match(page.html, /&#60;script&#62;/);
  assert.deepEqual([plainPage('unknown', { language: 'en' }).status, plainPage('too-large', { language: 'de' }).status], [404, 413]);
  assert.match(plainPage('unknown', { language: 'en' }).html, /<html lang="en">/);
});

test('template: Topic: (default the type), Required: and Track: are read and never sent as headers', () => {
  const t = (headers: string) => parseTemplate(`Subject: x\n${headers}\nhi\n`, { path: 'news.txt', html: null, footer: null });
  const plain = t('');
  assert.deepEqual([plain.type, plain.topic, plain.required, plain.track], ['news', 'news', false, null]);
  const typed = t('Type: newsletter\n');
  assert.equal(typed.topic, 'newsletter');
  const full = t('Type: umfrage\nTopic: survey\nRequired: yes\nTrack: ja\nX-Campaign: 7\n');
  assert.deepEqual([full.type, full.topic, full.required, full.track], ['umfrage', 'survey', true, true]);
  assert.deepEqual(full.extraHeaders, [['X-Campaign', '7']]);
  assert.equal(t('Required: no\n').required, false);
  assert.throws(() => t('Required: maybe\n'), /"Required: maybe" is neither yes nor no/);
  assert.throws(() => t('Topic: *\n'), /the topic "\*" is not a plain name/);
});

test('settings: language de or en (default de), organisation one line', async () => {
  const { resolveSettings } = await import('../../src/config/settings.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-settings-'));
  const config = (data: unknown) => {
    fs.writeFileSync(path.join(dir, 'mailer.json'), JSON.stringify(data));
    return resolveSettings({}, {}, dir);
  };
  assert.deepEqual([config({}).language, config({}).organisation], ['de', undefined]);
  assert.deepEqual([config({ language: 'en', organisation: ' Turnverein ' }).language, config({ organisation: ' Turnverein ' }).organisation], ['en', 'Turnverein']);
  assert.throws(() => config({ language: 'fr' }), /"language" must be one of "de", "en", not "fr"/);
  assert.throws(() => config({ organisation: 'a\nb' }), /"organisation" must be the sender's name on one line/);
  assert.throws(() => config({ organisation: 7 }), /"organisation"/);
  fs.rmSync(dir, { recursive: true, force: true });
});
