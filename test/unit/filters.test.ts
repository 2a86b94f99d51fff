import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCondition, parseSendFilter } from '../../src/core/filters.js';
import { MailerError } from '../../src/errors.js';

test('--where conditions: field, operator, value', () => {
  const rows: [string, object][] = [
    ['region=Nord', { field: 'region', op: '=', value: 'Nord' }],
    ['region!=Nord', { field: 'region', op: '!=', value: 'Nord' }],
    ['plz~80', { field: 'plz', op: '~', value: '80' }],
    ['alter>30', { field: 'alter', op: '>', value: '30' }],
    ['alter<30', { field: 'alter', op: '<', value: '30' }],
    [' monat = April ', { field: 'monat', op: '=', value: 'April' }],
    ['note=a=b', { field: 'note', op: '=', value: 'a=b' }],
    ['region=', { field: 'region', op: '=', value: '' }],
  ];
  for (const [text, expected] of rows) assert.deepEqual(parseCondition(text), expected, text);
  for (const bad of ['region', '=Nord', '']) assert.throws(() => parseCondition(bad), MailerError, bad);
});

test('send filters: statuses checked, members resolved, dates parsed, limit whole', () => {
  const now = Date.UTC(2026, 10, 25);
  const resolve = (m: string) => (m === 'anna@example.org' ? [7] : m === '1001' ? [3] : []);
  const f = parseSendFilter({ member: ['1001', 'anna@example.org'], status: ['failed', 'DEFERRED'], since: '7d', limit: '0', type: ['invitation'], mailing: ['4'] }, now, resolve);
  assert.deepEqual(f, { memberIds: [3, 7], statuses: ['failed', 'deferred'], since: now - 7 * 86_400_000, limit: 0, types: ['invitation'], mailings: [4] });
  assert.throws(() => parseSendFilter({ member: ['ghost'] }, now, resolve), /no member with id or address "ghost"/);
  assert.throws(() => parseSendFilter({ status: ['gone'] }, now, resolve), /unknown status "gone"/);
  assert.throws(() => parseSendFilter({ limit: '2.5' }, now, resolve), /--limit/);
  assert.throws(() => parseSendFilter({ until: 'soon' }, now, resolve), /--until "soon"/);
  assert.throws(() => parseSendFilter({ mailing: ['0'] }, now, resolve), /--mailing takes a number/);
});
