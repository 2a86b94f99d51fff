import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bearerKey, hashApiKey, matchingKey, newApiKey } from '../../src/domain/api-key.js';
import { checkDataPlaceholders, dataView, parseTemplate, render } from '../../src/send/template.js';
import { templateByName } from '../../src/send/system.js';
import { systemMailSource } from '../../src/send/queue.js';
import type { DeliveryStore } from '../../src/domain/ports.js';

const parse = (source: string) => parseTemplate(source, { path: 'bestellung.txt', html: null, footer: null });
const ORDER = parse('Subject: Bestellung {{order.number}}\n\nHallo {{name}},\n{{#order.items}}- {{qty}} x {{title}}\n{{/order.items}}');

test('api keys: 256 random bits, a bearer header, matched against every stored hash', () => {
  const a = newApiKey();
  assert.match(a, /^mk_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newApiKey(), a);
  const stored = [{ name: 'shop', hash: hashApiKey(a) }, { name: 'page', hash: hashApiKey(newApiKey()) }];
  for (const [header, key] of [[`Bearer ${a}`, a], [`bearer  ${a} `, a], [`Basic ${a}`, undefined], ['Bearer', undefined], [undefined, undefined], [`Bearer ${'x'.repeat(201)}`, undefined]] as const) {
    assert.equal(bearerKey(header), key, String(header));
  }
  assert.equal(matchingKey(a, stored), 'shop');
  assert.equal(matchingKey(`${a}x`, stored), undefined);
  assert.equal(matchingKey(undefined, stored), undefined);
  assert.equal(matchingKey('', [{ name: 'empty', hash: hashApiKey('') }]), undefined, 'no key is no key, whatever is stored');
  assert.equal(matchingKey(a, []), undefined);
});

test('a system mail checks the names outside sections; inside one a name may be the item\'s', () => {
  assert.deepEqual([...ORDER.outer.names].sort(), ['name', 'order']);
  assert.deepEqual([...ORDER.outer.variables].sort(), ['name', 'order.number']);
  assert.doesNotThrow(() => checkDataPlaceholders(ORDER, ['order']));
  assert.throws(() => checkDataPlaceholders(ORDER, []), /\{\{order\}\} is neither in the data nor a field/);
});

test('the data beside the member fields: data wins, email and token stay mailer\'s', () => {
  const view = dataView({ id: '7', email: 'a@x.de', name: 'Anna', token: 'T', region: 'Nord' }, { name: 'Bert', email: 'evil@x.de', token: 'no', extra: 1 });
  assert.deepEqual(view, { id: '7', email: 'a@x.de', name: 'Bert', token: 'T', region: 'Nord', extra: 1 });
});

test('rendering with data: lists, dotted names by their whole path, header injection refused', () => {
  const data = { name: 'Bert', order: { number: '4711', items: [{ qty: 2, title: 'Kissen' }, { qty: 1, title: 'Decke' }] } };
  const ok = render(ORDER, dataView({ email: 'b@x.de', token: 'T' }, data), { allowEmpty: false, data: true });
  assert.ok(ok.ok);
  assert.equal(ok.message.subject, 'Bestellung 4711');
  assert.equal(ok.message.text, 'Hallo Bert,\n- 2 x Kissen\n- 1 x Decke\n');
  const missing = render(ORDER, dataView({ email: 'b@x.de', token: 'T' }, { name: 'B', order: { items: [] } }), { allowEmpty: false, data: true });
  assert.equal(!missing.ok && missing.category, 'empty-field');
  assert.match(!missing.ok ? missing.reason : '', /"order\.number"/);
  const injected = render(ORDER, dataView({ email: 'b@x.de', token: 'T' }, { name: 'B', order: { number: '1\nBcc: x@y.de' } }), { allowEmpty: false, data: true });
  assert.equal(!injected.ok && injected.category, 'header-injection');
});

test('templates by name only: a path, a dot or an absolute name finds nothing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-templates-'));
  try {
    fs.mkdirSync(path.join(dir, 'templates'));
    fs.writeFileSync(path.join(dir, 'templates', 'bestellung.txt'), 'Subject: x\n\nbody\n');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'Subject: secret\n\nbody\n');
    const folder = path.join(dir, 'templates');
    assert.equal(templateByName(folder, 'bestellung', null)?.subject, 'x');
    for (const name of ['../secret', '..', '.bestellung', 'bestellung.txt', '/etc/passwd', path.join(dir, 'secret'), 'sub/x', 'nope', '', 42, null]) {
      assert.equal(templateByName(folder, name, null), undefined, String(name));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a run looks for queued system mails at most every few ms, and hands each once', async () => {
  let asked = 0;
  let waiting = [5, 9];
  const store = { queuedSystemSends: () => { asked++; return waiting; } } as unknown as DeliveryStore;
  const source = systemMailSource(store, 30)!;
  assert.equal(source.next(), 5);
  assert.equal(source.next(), 9);
  assert.equal(source.next(), undefined, 'the page is used up; no new look yet');
  assert.equal(asked, 1);
  await new Promise((r) => setTimeout(r, 40));
  // The same ids still queued (in hand, not yet recorded) are not handed again.
  waiting = [9, 12];
  assert.equal(source.next(), 12);
  assert.equal(asked, 2);
  assert.deepEqual([...source.handed], [5, 9, 12]);
  assert.equal(systemMailSource({} as DeliveryStore), null, 'a store without system mails: the run takes only its source');
});
