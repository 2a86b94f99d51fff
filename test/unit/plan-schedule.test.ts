import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addLocalDays, dueAtOrBefore, fillPeriod, nextDueAfter, parseClock, parseFollowUpDays, parseRecurrence, periodLabel, periodValues,
  type Recurrence,
} from '../../src/config/plan-schedule.js';

// Berlin: summer time starts on the last Sunday of March (29 March 2026, 02:00 → 03:00) and
// ends on the last Sunday of October (25 October 2026, 03:00 → 02:00).
process.env.TZ = 'Europe/Berlin';

const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
/** A local time as written: `2026-04-01 08:00`. */
const local = (text: string) => {
  const [, y, mo, d, h, mi] = /^(\d+)-(\d+)-(\d+) (\d+):(\d+)$/.exec(text)!.map(Number);
  return new Date(y, mo - 1, d, h, mi).getTime();
};
const monthly = (on: number, at = '08:00'): Recurrence => parseRecurrence('month', String(on), parseClock(at));
const weekly = (on: string, at = '08:00'): Recurrence => parseRecurrence('week', on, parseClock(at));
const daily = (at = '08:00'): Recurrence => parseRecurrence('day', undefined, parseClock(at));

test('next due after a time (a new plan is first due at its next occurrence after it is added), as UTC instants', () => {
  const rows: [string, Recurrence, string, string][] = [
    ['added on 20 March, a plan for the 1st', monthly(1), '2026-03-20 10:00', '2026-04-01T06:00:00Z'],
    ['at the due minute itself: the next one', monthly(1), '2026-04-01 08:00', '2026-05-01T06:00:00Z'],
    ['a minute before it', monthly(1), '2026-04-01 07:59', '2026-04-01T06:00:00Z'],
    ['winter time: 08:00 is 07:00Z', monthly(1), '2026-01-15 12:00', '2026-02-01T07:00:00Z'],
    ['--on 31 in February', monthly(31), '2026-02-01 00:00', '2026-02-28T07:00:00Z'],
    ['--on 31 in a leap February', monthly(31), '2028-02-01 00:00', '2028-02-29T07:00:00Z'],
    ['--on 30 in a leap February', monthly(30), '2028-02-01 00:00', '2028-02-29T07:00:00Z'],
    ['--on 29 in February, not leap', monthly(29), '2027-02-10 00:00', '2027-02-28T07:00:00Z'],
    ['--on 31 after the last of February', monthly(31), '2026-02-28 08:00', '2026-03-31T06:00:00Z'],
    ['--on 31 in April (30 days)', monthly(31), '2026-04-01 00:00', '2026-04-30T06:00:00Z'],
    ['--on 31 over the year end', monthly(31), '2026-12-31 09:00', '2027-01-31T07:00:00Z'],
    ['daily, the day before summer time', daily(), '2026-03-27 09:00', '2026-03-28T07:00:00Z'],
    ['daily, over the change to summer time', daily(), '2026-03-28 08:00', '2026-03-29T06:00:00Z'],
    ['daily, over the change back', daily(), '2026-10-24 08:00', '2026-10-25T07:00:00Z'],
    ['daily at 02:30 on the day back: the first 02:30', daily('02:30'), '2026-10-25 00:00', '2026-10-25T00:30:00Z'],
    ['weekly on Sunday, over the change to summer time', weekly('sunday'), '2026-03-22 08:00', '2026-03-29T06:00:00Z'],
    ['weekly on Sunday, over the change back', weekly('so'), '2026-10-18 08:00', '2026-10-25T07:00:00Z'],
    ['weekly on Monday, from a Wednesday', weekly('monday'), '2026-04-01 12:00', '2026-04-06T06:00:00Z'],
    ['weekly on Monday, from that Monday before 08:00', weekly('montag'), '2026-04-06 07:00', '2026-04-06T06:00:00Z'],
    ['weekly on Monday, from that Monday at 08:00', weekly('Mon'), '2026-04-06 08:00', '2026-04-13T06:00:00Z'],
    ['weekly on Saturday, from a Sunday', weekly('samstag'), '2026-04-05 12:00', '2026-04-11T06:00:00Z'],
  ];
  for (const [what, r, from, expected] of rows) assert.equal(iso(nextDueAfter(r, local(from))), expected, what);
});

test('the period a time is in starts at the latest due time at or before it', () => {
  const rows: [string, Recurrence, string, string][] = [
    ['07:59 on 1 April: still March\'s period', monthly(1), '2026-04-01 07:59', '2026-03-01 08:00'],
    ['08:00 on 1 April: April\'s', monthly(1), '2026-04-01 08:00', '2026-04-01 08:00'],
    ['2 July: July\'s period', monthly(1), '2026-07-02 09:00', '2026-07-01 08:00'],
    ['--on 31, early March: February\'s last day', monthly(31), '2026-03-10 00:00', '2026-02-28 08:00'],
    ['--on 31, 31 March after 08:00', monthly(31), '2026-03-31 08:01', '2026-03-31 08:00'],
    ['daily, the morning of the change', daily(), '2026-03-29 07:59', '2026-03-28 08:00'],
    ['weekly on Monday, on a Wednesday', weekly('monday'), '2026-04-01 12:00', '2026-03-30 08:00'],
    ['weekly on Wednesday, that Wednesday before 08:00', weekly('wed'), '2026-04-01 07:00', '2026-03-25 08:00'],
  ];
  for (const [what, r, at, expected] of rows) assert.equal(dueAtOrBefore(r, local(at)), local(expected), what);
});

test('a follow-up is calendar days later at the same wall-clock time, across the change', () => {
  assert.equal(addLocalDays(local('2026-03-20 08:00'), 14), local('2026-04-03 08:00'));
  assert.equal(iso(addLocalDays(local('2026-03-20 08:00'), 14)), '2026-04-03T06:00:00Z');
  assert.equal(addLocalDays(local('2026-04-01 08:00'), 14), local('2026-04-15 08:00'));
});

test('recurrence, time of day and follow-up as typed; what is not one says what is wrong', () => {
  assert.deepEqual(parseRecurrence('month', undefined, 480), { every: 'month', on: 1, at: 480 });
  assert.deepEqual(parseRecurrence('Week', 'Fr.', 0), { every: 'week', on: 5, at: 0 });
  assert.equal(parseClock('8:05'), 485);
  assert.equal(parseClock('23:59'), 1439);
  const bad: [() => unknown, RegExp][] = [
    [() => parseRecurrence('month', '32', 480), /--on "32" is not a day of the month/],
    [() => parseRecurrence('month', '0', 480), /not a day of the month/],
    [() => parseRecurrence('month', 'first', 480), /not a day of the month/],
    [() => parseRecurrence('week', 'funday', 480), /--on "funday" is not a weekday/],
    [() => parseRecurrence('week', '1', 480), /not a weekday/],
    [() => parseRecurrence('day', '1', 480), /--on has no meaning with --every day/],
    [() => parseRecurrence('year', undefined, 480), /--every "year" is not month, week or day/],
    [() => parseClock('25:00'), /--at "25:00" is not a time of day/],
    [() => parseClock('08:60'), /not a time of day/],
    [() => parseClock('8'), /not a time of day/],
    [() => parseFollowUpDays('28d', 'month'), /not before the next period/],
    [() => parseFollowUpDays('7d', 'week'), /not before the next period/],
    [() => parseFollowUpDays('1d', 'day'), /--every day \(1 day\)/],
    [() => parseFollowUpDays('zwei Wochen', 'month'), /not a number of days/],
    [() => parseFollowUpDays('0d', 'month'), /not a number of days/],
  ];
  for (const [fn, message] of bad) assert.throws(fn, message);
  assert.equal(parseFollowUpDays('14d', 'month'), 14);
  assert.equal(parseFollowUpDays('21', 'month'), 21);
  assert.equal(parseFollowUpDays('6d', 'week'), 6);
});

test('{{month}}, {{month_number}} and {{year}} of the due date, by language; other placeholders stay', () => {
  const march = periodValues(local('2026-03-01 08:00'), 'de');
  assert.deepEqual(march, { month: 'März', month_number: '3', year: '2026' });
  assert.equal(periodValues(local('2026-03-01 08:00'), 'en').month, 'March');
  const april = periodValues(local('2026-04-01 08:00'), 'de');
  const rows: [string, string][] = [
    ['erinnerungsmonat={{month}}', 'erinnerungsmonat=April'],
    ['{{ month }} {{{month}}} {{&month}} {{& year}}', 'April April April 2026'],
    ['{{month_number}}/{{year}}', '4/2026'],
    ['Hallo {{name}}, {{#month}}x{{/month}} {{monthly}}', 'Hallo {{name}}, {{#month}}x{{/month}} {{monthly}}'],
  ];
  for (const [text, expected] of rows) assert.equal(fillPeriod(text, april), expected, text);
  assert.equal(periodLabel('month', local('2026-06-01 08:00')), '2026-06');
  assert.equal(periodLabel('week', local('2026-06-01 08:00')), '2026-06-01');
});
