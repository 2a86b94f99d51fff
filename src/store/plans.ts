import type { Statements, Store } from './store.js';
import type { Row } from './queries.js';

/** This group's fixed statements by name, each with why where it is not plain; prepared when the store opens. */
const SQL = {
  insertPlan: `
    INSERT INTO plans (name, template_path, follow_up_template, conditions, segment, every, on_day, at_minute, follow_up_days, first_due, created_at)
    VALUES (@name, @templatePath, @followUpTemplate, @conditions, @segment, @every, @on, @at, @followUpDays, @firstDue, @now)`,
  /* Removed plans are kept for their mailings' sake; only a live one answers to its name. */
  planByName: `SELECT * FROM plans WHERE name = ? AND removed_at IS NULL`,
  plans: `
    SELECT p.*, (SELECT max(pp.mailing_id) FROM plan_periods pp WHERE pp.plan_id = p.id) AS last_mailing
    FROM plans p WHERE p.removed_at IS NULL ORDER BY p.name`,
  removePlan: `UPDATE plans SET removed_at = @now WHERE id = @id`,
  /* Resumed: periods due while it was paused are neither sent nor reported as missed. */
  setPaused: `UPDATE plans SET paused = @paused, first_due = coalesce(@firstDue, first_due) WHERE id = @id`,
  /* The claim on a period: a second run's insert of the same (plan, period, kind) changes nothing. */
  claimPeriod: `
    INSERT INTO plan_periods (plan_id, period, kind, mailing_id, at) VALUES (@planId, @period, @kind, NULL, @now)
    ON CONFLICT DO NOTHING`,
  setPeriodMailing: `UPDATE plan_periods SET mailing_id = @mailingId WHERE plan_id = @planId AND period = @period AND kind = @kind`,
  latestPeriod: `SELECT max(period) AS period FROM plan_periods WHERE plan_id = ? AND kind = 'main'`,
  period: `SELECT * FROM plan_periods WHERE plan_id = ? AND period = ? AND kind = ?`,
  /* Made mailings whose follow-up is not claimed yet: the run decides whether it is due. */
  openFollowUps: `
    SELECT pp.period, pp.mailing_id, m.created_at FROM plan_periods pp JOIN mailings m ON m.id = pp.mailing_id
    WHERE pp.plan_id = ? AND pp.kind = 'main'
      AND NOT EXISTS (SELECT 1 FROM plan_periods f WHERE f.plan_id = pp.plan_id AND f.period = pp.period AND f.kind = 'follow-up')
    ORDER BY pp.period`,
  planOfMailing: `
    SELECT p.name, pp.kind, pp.period FROM plan_periods pp JOIN plans p ON p.id = pp.plan_id WHERE pp.mailing_id = ?`,
} as const;

export interface Plan {
  id: number;
  name: string;
  templatePath: string;
  followUpTemplate: string | null;
  /** the --where conditions as typed, period placeholders not yet filled in */
  where: string[];
  segment: string | null;
  every: 'month' | 'week' | 'day';
  on: number | null;
  at: number;
  followUpDays: number | null;
  paused: boolean;
  firstDue: number;
  createdAt: number;
  lastMailing: number | null;
}

export type PeriodKind = 'main' | 'follow-up';

/** Recurring plans and the periods they made a mailing for, or missed. */
export class Plans {
  private readonly stmt: Statements<typeof SQL>;

  constructor(store: Store) {
    this.stmt = store.prepareAll(SQL);
  }

  add(p: Omit<Plan, 'id' | 'paused' | 'createdAt' | 'lastMailing'> & { now: number }): void {
    this.stmt.insertPlan.run({ ...p, conditions: JSON.stringify(p.where) });
  }

  byName(name: string): Plan | undefined {
    const r = this.stmt.planByName.get(name) as Row | undefined;
    return r ? toPlan(r) : undefined;
  }

  list(): Plan[] {
    return (this.stmt.plans.all() as Row[]).map(toPlan);
  }

  remove(id: number, now: number): void {
    this.stmt.removePlan.run({ id, now });
  }

  setPaused(id: number, paused: boolean, firstDue: number | null): void {
    this.stmt.setPaused.run({ id, paused: paused ? 1 : 0, firstDue });
  }

  /** True when this call claimed the period; false when a row for it was there already. */
  claimPeriod(planId: number, period: number, kind: PeriodKind, now: number): boolean {
    return this.stmt.claimPeriod.run({ planId, period, kind, now }).changes > 0;
  }

  setPeriodMailing(planId: number, period: number, kind: PeriodKind, mailingId: number): void {
    this.stmt.setPeriodMailing.run({ planId, period, kind, mailingId });
  }

  /** The latest period made or missed, or null before the first. */
  latestPeriod(planId: number): number | null {
    return (this.stmt.latestPeriod.get(planId) as Row).period ?? null;
  }

  period(planId: number, period: number, kind: PeriodKind): { mailingId: number | null } | undefined {
    const r = this.stmt.period.get(planId, period, kind) as Row | undefined;
    return r ? { mailingId: r.mailing_id } : undefined;
  }

  openFollowUps(planId: number): { period: number; mailingId: number; startedAt: number }[] {
    return (this.stmt.openFollowUps.all(planId) as Row[]).map((r) => ({ period: r.period, mailingId: r.mailing_id, startedAt: r.created_at }));
  }

  /** The plan that made a mailing, if one did. */
  planOfMailing(mailingId: number): { name: string; kind: PeriodKind; period: number } | undefined {
    return this.stmt.planOfMailing.get(mailingId) as { name: string; kind: PeriodKind; period: number } | undefined;
  }
}

function toPlan(r: Row): Plan {
  return {
    id: r.id, name: r.name, templatePath: r.template_path, followUpTemplate: r.follow_up_template, where: JSON.parse(r.conditions),
    segment: r.segment, every: r.every, on: r.on_day, at: r.at_minute, followUpDays: r.follow_up_days, paused: !!r.paused,
    firstDue: r.first_due, createdAt: r.created_at, lastMailing: r.last_mailing ?? null,
  };
}
