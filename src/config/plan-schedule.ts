import { badInput } from '../errors.js';

/**
 * When a recurring plan is due. Pure arithmetic on local calendar time (the process's `TZ`):
 * a plan for 08:00 is due at 08:00 on the wall clock on both sides of a daylight-saving change,
 * so every due time is built from year, month, day and minute by the Date constructor, never by
 * adding milliseconds.
 *
 * A plan's period is [due, next due): a run inside it makes that period's mailing if it has not
 * been made; an earlier period that got no mailing has passed and is not sent late.
 */
export type Every = 'month' | 'week' | 'day';
export const EVERY: readonly Every[] = ['month', 'week', 'day'];

export interface Recurrence {
  every: Every;
  /** day of the month 1-31 (a shorter month: its last day), weekday 0-6 (0 Sunday), or null for day */
  on: number | null;
  /** minutes after local midnight */
  at: number;
}

function occurrenceInMonth(r: Recurrence, year: number, month: number): number {
  const last = new Date(year, month + 1, 0).getDate();
  return localTime(year, month, Math.min(r.on ?? 1, last), r.at);
}

function localTime(year: number, month: number, day: number, minutes: number): number {
  return new Date(year, month, day, Math.floor(minutes / 60), minutes % 60).getTime();
}

/** The occurrence on the local day of `t` (for week: in the week of `t`, on its weekday), and its neighbours by step. */
function occurrenceNear(r: Recurrence, t: number, step: number): number {
  const d = new Date(t);
  if (r.every === 'month') return occurrenceInMonth(r, d.getFullYear(), d.getMonth() + step);
  const back = r.every === 'week' ? (d.getDay() - (r.on ?? 1) + 7) % 7 : 0;
  return localTime(d.getFullYear(), d.getMonth(), d.getDate() - back + step * (r.every === 'week' ? 7 : 1), r.at);
}

/** The earliest due time strictly after `t`. */
export function nextDueAfter(r: Recurrence, t: number): number {
  for (let step = 0; ; step++) {
    const due = occurrenceNear(r, t, step);
    if (due > t) return due;
  }
}

/** The latest due time at or before `t`: the start of the period `t` is in. */
export function dueAtOrBefore(r: Recurrence, t: number): number {
  for (let step = 0; ; step--) {
    const due = occurrenceNear(r, t, step);
    if (due <= t) return due;
  }
}

/** Shortest length of a period, in days: a follow-up must come before the next period starts. */
export function shortestPeriodDays(every: Every): number {
  return every === 'month' ? 28 : every === 'week' ? 7 : 1;
}

/** `days` calendar days after `t`, at the same wall-clock time. */
export function addLocalDays(t: number, days: number): number {
  const d = new Date(t);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + days, d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()).getTime();
}

/** The name a user knows a period by: `2026-04` for a monthly plan, the due day otherwise. */
export function periodLabel(every: Every, due: number): string {
  const d = new Date(due);
  const month = `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
  return every === 'month' ? month : `${month}-${pad(d.getDate())}`;
}

/** Local `2026-04-01 08:00`: how a due time is shown. */
export function localLabel(t: number): string {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Minutes after midnight as `08:00`. */
export function clockLabel(minutes: number): string {
  return `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

export type Language = 'de' | 'en';

const MONTHS: Record<Language, string[]> = {
  de: ['Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August', 'September', 'Oktober', 'November', 'Dezember'],
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
};

/** `{{month}}`, `{{month_number}}` and `{{year}}` of a period: those of its due date. */
export function periodValues(due: number, language: Language): { month: string; month_number: string; year: string } {
  const d = new Date(due);
  return { month: MONTHS[language][d.getMonth()], month_number: String(d.getMonth() + 1), year: String(d.getFullYear()) };
}

const PERIOD_PLACEHOLDER = /\{\{\s*(?:\{\s*(month|month_number|year)\s*\}|&?\s*(month|month_number|year))\s*\}\}/g;

/** A text with the period's placeholders filled in; every other placeholder is left for the member. */
export function fillPeriod(text: string, values: Record<string, string>): string {
  return text.replace(PERIOD_PLACEHOLDER, (_all, a: string | undefined, b: string | undefined) => values[(a ?? b)!]);
}

/** `--at 08:00` → minutes after midnight. */
export function parseClock(value: string): number {
  const m = /^\s*(\d{1,2}):(\d{2})\s*$/.exec(value);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) throw badInput(`--at "${value}" is not a time of day`, 'write HH:MM in local time, e.g. --at 08:00');
  return Number(m[1]) * 60 + Number(m[2]);
}

const WEEKDAYS: [number, string[]][] = [
  [0, ['sunday', 'sun', 'sonntag', 'so']], [1, ['monday', 'mon', 'montag', 'mo']], [2, ['tuesday', 'tue', 'dienstag', 'di']],
  [3, ['wednesday', 'wed', 'mittwoch', 'mi']], [4, ['thursday', 'thu', 'donnerstag', 'do']], [5, ['friday', 'fri', 'freitag', 'fr']],
  [6, ['saturday', 'sat', 'samstag', 'sonnabend', 'sa']],
];

export function weekdayName(day: number): string {
  return WEEKDAYS[day][1][0];
}

/** `--every` and `--on` as typed → a recurrence (with `--at` already read). */
export function parseRecurrence(every: string, on: string | undefined, at: number): Recurrence {
  const e = every.trim().toLowerCase();
  if (!(EVERY as readonly string[]).includes(e)) throw badInput(`--every "${every}" is not month, week or day`, 'e.g. --every month --on 1 --at 08:00');
  if (e === 'day') {
    if (on !== undefined) throw badInput('--on has no meaning with --every day', 'leave --on out: a daily plan is due every day at --at');
    return { every: 'day', on: null, at };
  }
  if (e === 'month') {
    if (on === undefined) return { every: 'month', on: 1, at };
    const n = Number(on);
    if (!/^\s*\d+\s*$/.test(on) || n < 1 || n > 31) {
      throw badInput(`--on "${on}" is not a day of the month`, 'give 1 to 31; in a shorter month, 29 to 31 mean its last day');
    }
    return { every: 'month', on: n, at };
  }
  if (on === undefined) return { every: 'week', on: 1, at };
  const name = on.trim().toLowerCase().replace(/\.$/, '');
  const found = WEEKDAYS.find(([, names]) => names.includes(name));
  if (!found) throw badInput(`--on "${on}" is not a weekday`, 'give a weekday by name: monday … sunday (or montag … sonntag)');
  return { every: 'week', on: found[0], at };
}

/** `14d` (or `14`) → days. */
export function parseFollowUpDays(value: string, every: Every): number {
  const m = /^\s*(\d+)\s*d?\s*$/i.exec(value);
  const days = m ? Number(m[1]) : NaN;
  if (!(days >= 1)) throw badInput(`--follow-up "${value}" is not a number of days`, 'write e.g. --follow-up 14d');
  const within = shortestPeriodDays(every);
  if (days >= within) {
    throw badInput(`--follow-up ${days}d is not before the next period of a plan --every ${every} (${within} day${within > 1 ? 's' : ''})`,
      every === 'day' ? 'a daily plan has no room for a follow-up; plan it weekly or monthly' : `give fewer than ${within} days`);
  }
  return days;
}
