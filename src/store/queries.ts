/**
 * The rules more than one table group runs, in one place: which members a selection takes
 * (`--where`, `--member`, the reminder's not-opened) and whether a member can be mailed at their
 * address. Each group's own statements are in its file beside its methods.
 */
import type { FieldCondition, MemberSelection } from '../domain/types.js';
import { decimalNumber } from '../config/numbers.js';

export type Row = Record<string, any>;

/**
 * Why a member cannot be mailed at their current address, or NULL when they can: the one rule
 * of the queue, the dry run, the claim (which reads the address again, since an import may
 * have corrected or removed it, or the address been suppressed, after the mailing was queued)
 * and retry. Over `members m` with SKIP_JOINS and `g`, the mailing's `topic` and `required`
 * (MAILING_TOPIC for one not recorded yet).
 *
 * An address-wide suppression (bounce, complaint, by hand) stops every mail, required ones too:
 * those members are listed as skipped, so the office can reach them another way. An opt-out of
 * the mailing's topic, or of all topics, stops only mails members may opt out of.
 */
const OPTED_OUT = `coalesce(ot.topic, CASE WHEN oa.email IS NOT NULL THEN 'all topics' END)`;
/**
 * The tables the rule reads, joined beside `members m` (after `g`): each is one probe of a
 * primary key per row, made once. As correlated subqueries, evaluated for each of the rule's
 * two or three uses in a statement, the opt-out lookup cost 8 % of the send rate.
 */
export const SKIP_JOINS = `LEFT JOIN suppressions x ON x.email = m.email
  LEFT JOIN optouts ot ON g.required = 0 AND ot.email = m.email AND ot.topic = g.topic
  LEFT JOIN optouts oa ON g.required = 0 AND oa.email = m.email AND oa.topic = '*'`;
export const SKIP_CATEGORY = `CASE WHEN m.email_problem IS NOT NULL THEN m.email_problem WHEN x.reason IS NOT NULL THEN 'suppressed'
  WHEN ${OPTED_OUT} IS NOT NULL THEN 'unsubscribed' END`;
export const SKIP_REASON = `
  CASE WHEN m.email_problem = 'no-address' THEN 'the member has no e-mail address'
       WHEN m.email_problem IS NOT NULL THEN 'the address ' || coalesce(m.email, '') || ' is not a valid e-mail address'
       WHEN x.reason IS NOT NULL THEN 'the address is suppressed: ' || x.reason
       ELSE 'unsubscribed (' || ${OPTED_OUT} || ')' END`;
/** `g` for a mailing not recorded yet (the dry run): its topic and required (0/1) bound, in that order. */
export const MAILING_TOPIC = `(SELECT ? AS topic, ? AS required) g`;

/** Columns a member condition can name directly; every other name is a field of the import. */
const MEMBER_COLUMNS: Record<string, string> = { id: 'm.key', email: 'm.email', name: 'm.name' };

/**
 * One `--where` condition as SQL over `members m`. `=`, `!=` and `~` compare text, a missing
 * field counting as empty. `<` and `>` compare numbers when the value is one (a decimal comma
 * as in 12,50 too), else text; a member whose field is empty, missing, or (for a number) not a
 * number is not selected by them: "beitrag<20" must not pick those who have no beitrag.
 */
export function conditionClause(c: FieldCondition): { sql: string; params: unknown[] } {
  const column = MEMBER_COLUMNS[c.field];
  // The field's JSON path is bound, never spliced into the SQL, and bound once per use of it.
  const expr = column ?? 'json_extract(m.fields, ?)';
  const jsonPath = column ? [] : [`$."${c.field.replace(/["\\]/g, '\\$&')}"`];
  switch (c.op) {
    case '=': return { sql: `coalesce(${expr}, '') = ?`, params: [...jsonPath, c.value] };
    case '!=': return { sql: `coalesce(${expr}, '') != ?`, params: [...jsonPath, c.value] };
    case '~': return { sql: `instr(mailer_fold(${expr}), ?) > 0`, params: [...jsonPath, foldCase(c.value)] };
    case '<':
    case '>': {
      const n = decimalNumber(c.value);
      if (n !== null) return { sql: `mailer_number(${expr}) ${c.op} ?`, params: [...jsonPath, n] };
      return { sql: `nullif(${expr}, '') ${c.op} ?`, params: [...jsonPath, c.value] };
    }
  }
}

/** Case folded the same way for a `~` value and the field it is looked for in. */
export const foldCase = (text: string): string => text.toLowerCase();

/** The selection as a WHERE clause over `members m`, with its parameters. */
export function selectionWhere(selection: MemberSelection): { where: string; params: unknown[] } {
  // A row made for a system mail's address is nobody's choice of recipients.
  const clauses: string[] = ['m.listed = 1'];
  const params: unknown[] = [];
  for (const c of selection.conditions) {
    const clause = conditionClause(c);
    clauses.push(clause.sql);
    params.push(...clause.params);
  }
  if (selection.notOpenedOf !== undefined) {
    // A reminder's follow-up: delivered, not bounced, and no open recorded.
    clauses.push(`m.id IN (SELECT s.member_id FROM sends s WHERE s.mailing_id = ? AND s.test = 0 AND s.status = 'sent'
      AND NOT EXISTS (SELECT 1 FROM events e WHERE e.send_id = s.id AND e.kind = 'open'))`);
    params.push(selection.notOpenedOf);
  }
  if (selection.members.length > 0) {
    const marks = selection.members.map(() => '?').join(', ');
    clauses.push(`(m.key IN (${marks}) OR m.email IN (${marks}))`);
    params.push(...selection.members, ...selection.members.map((v) => v.toLowerCase()));
  }
  return { where: clauses.join(' AND '), params };
}
