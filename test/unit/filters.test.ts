import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decimalNumber } from '../../src/config/numbers.js';
import { Store } from '../../src/store/store.js';
import { parseCondition, parseSendFilter } from '../../src/config/filters.js';
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

/** A database with a few members, as an import leaves them: every field a string, some empty. */
function storeWithMembers(): Store {
  const store = Store.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-filters-')), 'mailer.db'));
  const add = store.db.prepare(`INSERT INTO members (key, email, name, fields, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)`);
  add.run('1', 'anna@example.org', 'Anna', JSON.stringify({ beitrag: '12,50', mitglied_seit: '2015', region: 'Nord' }));
  add.run('2', 'ben@example.org', 'Ben', JSON.stringify({ beitrag: '30', mitglied_seit: '2021', region: 'Süd' }));
  add.run('3', 'cem@example.org', 'Cem', JSON.stringify({ beitrag: '', mitglied_seit: '2009', region: 'Nord' }));
  add.run('4', 'dora@example.org', 'Dora', JSON.stringify({ beitrag: 'frei', region: 'West' }));
  add.run('10', 'emil@example.org', 'Emil', JSON.stringify({ beitrag: '8', mitglied_seit: '2018', 'mit "zitat"': 'ja' }));
  return store;
}

test('member conditions select by every op on fixed columns and fields, alone and combined', () => {
  const store = storeWithMembers();
  const keys = (...where: string[]) => [...store.members.selectedMembers({ conditions: where.map(parseCondition), members: [] }, { topic: 'info', required: false })].map((m) => m.key);
  const rows: [string[], string[]][] = [
    [['beitrag>10'], ['1', '2']],
    [['beitrag<20'], ['1', '10']],
    [['beitrag>12,49'], ['1', '2']],
    [['beitrag<12.5'], ['10']],
    [['beitrag>-1', 'beitrag<100'], ['1', '2', '10']],
    [['mitglied_seit<2016'], ['1', '3']],
    [['mitglied_seit>2016', 'region=Nord'], []],
    [['mitglied_seit>2016', 'region!=Nord'], ['2', '10']],
    [['beitrag>e'], ['4']],
    [['region<O'], ['1', '3']],
    [['region>O'], ['2', '4']],
    [['id>2'], ['3', '4', '10']],
    [['id<10'], ['1', '2', '3', '4']],
    [['id>3', 'beitrag<10'], ['10']],
    [['name<C'], ['1', '2']],
    [['name>Cem'], ['4', '10']],
    [['email<c'], ['1', '2']],
    [['email>cem@example.org', 'id<10'], ['4']],
    [['beitrag='], ['3']],
    [['mitglied_seit='], ['4']],
    [['beitrag=30'], ['2']],
    [['beitrag!=30', 'region~nor'], ['1', '3']],
    [['id=10'], ['10']],
    [['name!=Anna', 'email~EMIL'], ['10']],
    [['region~SÜD'], ['2']],
    [['region~süd'], ['2']],
    [['mit "zitat"=ja'], ['10']],
    [['mit "zitat">a'], ['10']],
  ];
  try {
    for (const [where, expected] of rows) assert.deepEqual(keys(...where), expected, where.join(' AND '));
  } finally {
    store.close();
  }
});

test('decimal numbers as member files write them', () => {
  const rows: [unknown, number | null][] = [
    ['30', 30], ['12,50', 12.5], ['12.50', 12.5], [' -2 ', -2], ['+3', 3], [',5', 0.5], ['0', 0], [7, 7],
    ['', null], ['frei', null], ['1.234,50', null], ['1,2,3', null], ['12,', null], ['1e3', null], ['2019-01-01', null], [null, null],
  ];
  for (const [value, expected] of rows) assert.equal(decimalNumber(value), expected, String(value));
});
