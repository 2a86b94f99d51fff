import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newToken } from '../../src/core/token.js';

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
