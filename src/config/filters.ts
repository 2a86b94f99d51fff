import { badInput } from '../errors.js';
import { SEND_STATUSES, type FieldCondition, type SendFilter, type SendStatus } from '../domain/types.js';
import { parseWhen } from './when.js';
import { wholeNumber } from './numbers.js';

/**
 * The filters of `log`, `retry` and `stats`, as a user types them. One parser, so the three
 * commands agree on what `--since 7d` or `--status deferred` means.
 */
export interface FilterInput {
  member?: string[];
  email?: string[];
  type?: string[];
  mailing?: string[];
  status?: string[];
  reason?: string[];
  since?: string;
  until?: string;
  limit?: string;
}

/** Resolves a member key or address to member ids; empty when there is none. */
export type MemberResolver = (idOrEmail: string) => number[];

export function parseSendFilter(input: FilterInput, now: number, resolveMember: MemberResolver): SendFilter {
  const filter: SendFilter = {};
  if (input.member?.length) {
    filter.memberIds = input.member.flatMap((m) => {
      const ids = resolveMember(m);
      if (ids.length === 0) {
        throw badInput(`no member with id or address "${m}"`, 'check the spelling, or look the member up with `mailer log --email <address>`');
      }
      return ids;
    });
  }
  if (input.email?.length) filter.emails = input.email.map((e) => e.trim());
  if (input.type?.length) filter.types = input.type;
  if (input.mailing?.length) filter.mailings = input.mailing.map((m) => parseId(m, '--mailing'));
  if (input.status?.length) filter.statuses = input.status.map(parseStatus);
  if (input.reason?.length) filter.categories = input.reason;
  if (input.since !== undefined) filter.since = parseWhenFlag('--since', input.since, now, 'start');
  if (input.until !== undefined) filter.until = parseWhenFlag('--until', input.until, now, 'end');
  if (input.limit !== undefined) {
    filter.limit = wholeNumber(input.limit, '--limit', 0);
  }
  return filter;
}

export function parseId(value: string, flag: string): number {
  const n = Number(String(value).replace(/^#/, ''));
  if (!Number.isInteger(n) || n <= 0) throw badInput(`${flag} takes a number, not "${value}"`);
  return n;
}

export function parseStatus(value: string): SendStatus {
  const s = value.trim().toLowerCase();
  if (!(SEND_STATUSES as readonly string[]).includes(s)) {
    throw badInput(`unknown status "${value}"`, `use one of: ${SEND_STATUSES.join(', ')}`);
  }
  return s as SendStatus;
}

function parseWhenFlag(flag: string, value: string, now: number, edge: 'start' | 'end'): number {
  const t = parseWhen(value, now, edge);
  if (t === null) {
    throw badInput(`${flag} "${value}" is not a date or a duration`, 'write 2026-11-01, 2026-11-01T08:00, or a span back from now: 90m, 36h, 7d');
  }
  return t;
}

/** `--where region=Nord`, `--where "Monat!=April"`, `--where plz~80`, `--where alter>30`. */
export function parseCondition(text: string): FieldCondition {
  const m = /^\s*([^=!~<>]+?)\s*(!=|=|~|<|>)\s*(.*?)\s*$/s.exec(text);
  if (!m || m[1] === '') {
    throw badInput(`--where "${text}" is not a condition`, 'write <field><op><value> with op one of = != ~ < >, e.g. --where region=Nord');
  }
  return { field: m[1], op: m[2] as FieldCondition['op'], value: m[3] };
}
