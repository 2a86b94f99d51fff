import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkSigner, newToken } from '../../src/domain/token.js';

test('tokens: URL-safe, at least 128 bits, never read as a command-line option, all different', () => {
  const seen = new Set<string>();
  for (let i = 1; i <= 20_000; i++) {
    const token = newToken(i % 3 === 0 ? 1 : i);
    assert.match(token, /^[a-z0-9][A-Za-z0-9_-]{22,}$/, token);
    seen.add(token);
  }
  assert.equal(seen.size, 20_000, 'the random part alone keeps tokens of one send id apart');
});

test('tokens of consecutive sends sort side by side: the send id leads, in base 36', () => {
  const ids = [46_656, 46_657, 46_700, 50_000, 1_679_615];
  const tokens = ids.map((id) => newToken(id));
  tokens.forEach((token, i) => assert.ok(token.startsWith(ids[i]!.toString(36)), token));
  assert.deepEqual([...tokens].sort(), tokens);
});

test('link values: one per purpose and send, checked by HMAC under the database\'s secret', () => {
  const signer = new LinkSigner(Buffer.alloc(32, 7));
  const other = new LinkSigner(Buffer.alloc(32, 8));
  const purposes = ['unsubscribe', 'open', 'confirm'] as const;
  const seen = new Set<string>();
  for (const id of [1, 35, 36, 4711, 2 ** 40]) {
    for (const purpose of purposes) {
      const value = signer.value(purpose, id);
      assert.match(value, /^[a-z0-9]+-[A-Za-z0-9_-]{22}$/, value);
      assert.ok(value.length <= 64, 'fits the routes');
      seen.add(value);
      assert.equal(signer.sendId(purpose, value), id);
      for (const p of purposes) if (p !== purpose) assert.equal(signer.sendId(p, value), undefined, `${purpose} is no ${p}`);
      assert.equal(other.sendId(purpose, value), undefined, 'another database\'s value');
    }
  }
  assert.equal(seen.size, 5 * 3);
  const good = signer.value('unsubscribe', 4711);
  const rows: [string, string][] = [
    ['one character changed', good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A')],
    ['another send id, same MAC', `${(4712).toString(36)}${good.slice(good.indexOf('-'))}`],
    ['the id spelt with a leading zero', `0${good}`],
    ['MAC cut short', good.slice(0, -1)],
    ['a registration token', newToken(4711)],
    ['empty', ''],
    ['no id', good.slice(good.indexOf('-'))],
  ];
  for (const [what, value] of rows) assert.equal(signer.sendId('unsubscribe', value), undefined, what);
});
