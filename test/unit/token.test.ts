import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newToken } from '../../src/core/token.js';

test('tokens: URL-safe, at least 128 bits, never read as a command-line option, all different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const token = newToken();
    assert.match(token, /^[A-Za-z0-9_][A-Za-z0-9_-]{21,}$/, token);
    seen.add(token);
  }
  assert.equal(seen.size, 20_000);
});
