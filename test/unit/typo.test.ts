import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, suspectTypo } from '../../src/triage/typo.js';

test('domains a keystroke or two from a big provider are suspected', () => {
  const rows: [string, string | null][] = [
    ['anna@gmial.com', 'anna@gmail.com'],
    ['anna@t-onlne.de', 'anna@t-online.de'],
    ['anna@gmx.dee', 'anna@gmx.de'],
    ['anna@web.dr', 'anna@web.de'],
    ['anna@hotmial.de', 'anna@hotmail.de'],
    ['anna@outlok.com', 'anna@outlook.com'],
    ['anna@yahooo.de', 'anna@yahoo.de'],
    ['anna@gmail.com', null],
    ['anna@gmx.at', null],
    ['anna@verein.example', null],
    ['anna@example.org', null],
    ['anna@wbe.com', null],
  ];
  for (const [address, expected] of rows) assert.equal(suspectTypo(address), expected, address);
});

test('edit distance counts a swap of neighbours as one', () => {
  assert.equal(editDistance('gmial', 'gmail'), 1);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});
