import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressProblem, normalizeAddress } from '../../src/domain/address.js';

test('valid addresses pass', () => {
  for (const a of ['anna@example.org', 'a.b+tag@sub.example.co.uk', "o'brien@example.com", 'x@müller.de', 'ab@xn--mller-kva.de']) {
    assert.equal(addressProblem(a), null, a);
  }
});

test('invalid ones say why', () => {
  const rows: [string, RegExp][] = [
    ['anna', /no @/],
    ['anna@', /no @/],
    ['@example.org', /no @/],
    ['anna@localhost', /no dot/],
    ['an na@example.org', /not a valid name/],
    ['anna..b@example.org', /not a valid name/],
    ['anna@exa_mple.org', /not valid/],
    ['anna@example.123', /top-level/],
    ['a@b@example.org', /more than one @/],
  ];
  for (const [a, why] of rows) assert.match(addressProblem(a) ?? '', why, a);
});

test('normalized: trimmed and lower case', () => {
  assert.equal(normalizeAddress('  Anna.Mueller@Example.ORG '), 'anna.mueller@example.org');
});
