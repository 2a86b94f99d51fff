import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWhen } from '../../src/config/when.js';

const now = new Date(2026, 10, 25, 12, 0, 0).getTime();

test('relative spans go back from now', () => {
  const rows: [string, number][] = [
    ['90m', now - 90 * 60_000],
    ['36h', now - 36 * 3_600_000],
    ['7d', now - 7 * 86_400_000],
    ['2w', now - 14 * 86_400_000],
    ['30s', now - 30_000],
  ];
  for (const [text, expected] of rows) assert.equal(parseWhen(text, now), expected, text);
});

test('dates and date-times are local time; a date alone ends at the end of the day for --until', () => {
  assert.equal(parseWhen('2026-11-01', now), new Date(2026, 10, 1).getTime());
  assert.equal(parseWhen('2026-11-01', now, 'end'), new Date(2026, 10, 2).getTime());
  assert.equal(parseWhen('2026-11-01T08:00', now), new Date(2026, 10, 1, 8, 0).getTime());
  assert.equal(parseWhen('2026-11-01T08:00', now, 'end'), new Date(2026, 10, 1, 8, 0).getTime());
  assert.equal(parseWhen('2026-11-01 08:30:15', now), new Date(2026, 10, 1, 8, 30, 15).getTime());
});

test('what is not a <when> is null', () => {
  for (const bad of ['yesterday', '2026-02-31', '2026-13-01', '2026-11-01T25:00', '7', 'd7', '', '-3d']) {
    assert.equal(parseWhen(bad, now), null, bad);
  }
});
