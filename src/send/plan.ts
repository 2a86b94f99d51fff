import { badInput, MailerError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Plan, PeriodKind } from '../store/plans.js';
import type { Settings } from '../config/settings.js';
import {
  addLocalDays, dueAtOrBefore, fillPeriod, localLabel, nextDueAfter, parseClock, parseFollowUpDays, parseRecurrence,
  periodLabel, periodValues, type Recurrence,
} from '../config/plan-schedule.js';
import { loadTemplate, parseTemplate, type Template } from './template.js';
import { createMailing, checkTemplate } from './mailing.js';
import { mailingSettings, resolveSelection } from './send.js';
import type { MemberSelection } from '../domain/types.js';

/**
 * Recurring plans: the monthly reminder and its follow-up, made by `mailer run` and no other
 * scheduler. Each period's mailing is made once, by claiming the (plan, period) row in the
 * transaction that makes it; a period that passed with no run is reported and not sent late.
 */
export interface PlanInput {
  name: string;
  templatePath: string;
  where: string[];
  segment?: string;
  every: string;
  on?: string;
  at: string;
  followUp?: string;
  followUpTemplate?: string;
}

export function recurrenceOf(plan: Pick<Plan, 'every' | 'on' | 'at'>): Recurrence {
  return { every: plan.every, on: plan.on, at: plan.at };
}

/** A plan's template for one period: `{{month}}`, `{{month_number}}` and `{{year}}` filled in. */
function periodTemplate(file: string, settings: Settings, due: number): Template {
  const values = periodValues(due, settings.language);
  const t = loadTemplate(file, settings.footerText);
  return parseTemplate(fillPeriod(t.source, values), { path: t.path, html: t.html === null ? null : fillPeriod(t.html, values), footer: t.footer });
}

/** The selection of one period: `--where erinnerungsmonat={{month}}` becomes `…=April`. */
function periodSelection(store: Store, plan: Pick<Plan, 'where' | 'segment'>, settings: Settings, due: number): MemberSelection {
  const values = periodValues(due, settings.language);
  return resolveSelection(store, { where: plan.where.map((w) => fillPeriod(w, values)), segment: plan.segment ?? undefined, members: [] });
}

/** Checks everything a run will need, for the first period, then saves the plan; nothing is saved when a check fails. */
export function addPlan(store: Store, settings: Settings, input: PlanInput, now: number): Plan {
  if (!/^[\p{L}\p{N}._-]+$/u.test(input.name)) {
    throw badInput(`plan name "${input.name}" may hold letters, digits, ".", "_" and "-" only`, 'e.g. mailer plan add erinnerung …');
  }
  const recurrence = parseRecurrence(input.every, input.on, parseClock(input.at));
  const followUpDays = input.followUp === undefined ? null : parseFollowUpDays(input.followUp, recurrence.every);
  if (input.followUpTemplate !== undefined && followUpDays === null) {
    throw badInput('--follow-up-template without --follow-up', 'say when the follow-up goes out, e.g. --follow-up 14d');
  }
  const firstDue = nextDueAfter(recurrence, now);
  const settingsOfMailing = mailingSettings(settings, { allowEmpty: false });
  for (const file of [input.templatePath, input.followUpTemplate]) {
    if (file !== undefined) checkTemplate(store, periodTemplate(file, settings, firstDue), settingsOfMailing);
  }
  periodSelection(store, { where: input.where, segment: input.segment ?? null }, settings, firstDue);
  if (store.plans.byName(input.name)) {
    throw badInput(`a plan "${input.name}" exists already`, `see it in \`mailer plan list\`; \`mailer plan remove ${input.name}\` first to replace it`);
  }
  store.plans.add({
    name: input.name, templatePath: input.templatePath, followUpTemplate: input.followUpTemplate ?? null, where: input.where,
    segment: input.segment ?? null, every: recurrence.every, on: recurrence.on, at: recurrence.at, followUpDays, firstDue, now,
  });
  return store.plans.byName(input.name)!;
}

export function planByName(store: Store, name: string): Plan {
  const plan = store.plans.byName(name);
  if (!plan) throw badInput(`no plan "${name}"`, 'list them with `mailer plan list`');
  return plan;
}

/** Paused, a plan makes nothing; resumed, it is first due at its next occurrence, as a new plan is. */
export function pausePlan(store: Store, name: string, paused: boolean, now: number): Plan {
  const plan = planByName(store, name);
  if (plan.paused !== paused) store.plans.setPaused(plan.id, paused, paused ? null : nextDueAfter(recurrenceOf(plan), now));
  return store.plans.byName(name)!;
}

/** When the plan's next mailing is made: now, if the current period's is due and not made yet; null while paused. */
export function nextDue(store: Store, plan: Plan, now: number): number | null {
  if (plan.paused) return null;
  const r = recurrenceOf(plan);
  const current = dueAtOrBefore(r, now);
  if (current >= plan.firstDue && !store.plans.period(plan.id, current, 'main')) return current;
  return Math.max(nextDueAfter(r, now), plan.firstDue);
}

export interface PlanMade {
  plan: string;
  period: string;
  due: number;
  mailing: number;
  followUp: boolean;
  selected: number;
}

export interface PlanMissed {
  plan: string;
  period: string;
  due: number;
  followUp: boolean;
}

export interface PlanRunResult {
  made: PlanMade[];
  missed: PlanMissed[];
  errors: { plan: string; period: string; followUp: boolean; message: string }[];
}

/**
 * What a run does for the plans, under the send lock: each plan's mailing of the current period
 * if it is not made, the follow-ups that are due, and the periods that passed unmade reported
 * once (the caller says those: they are warnings, also under --quiet). The mailings are made
 * scheduled for now, so the run sends them with the other due ones.
 */
export function makePlanMailings(store: Store, settings: Settings, now: number, say: (line: string) => void): PlanRunResult {
  const result: PlanRunResult = { made: [], missed: [], errors: [] };
  for (const plan of store.plans.list()) {
    if (plan.paused) continue;
    const r = recurrenceOf(plan);
    const current = dueAtOrBefore(r, now);
    const followUpDays = plan.followUpDays ?? 0;
    for (const open of plan.followUpDays === null ? [] : store.plans.openFollowUps(plan.id)) {
      const due = addLocalDays(open.startedAt, followUpDays);
      if (now < due) continue;
      const periodName = periodLabel(plan.every, open.period);
      if (now >= nextDueAfter(r, open.period)) {
        // Its period is over: a reminder for April's customers is not followed up in May.
        if (store.plans.claimPeriod(plan.id, open.period, 'follow-up', now)) {
          result.missed.push({ plan: plan.name, period: periodName, due, followUp: true });
        }
        continue;
      }
      make(plan, open.period, 'follow-up', () => ({
        template: periodTemplate(plan.followUpTemplate ?? plan.templatePath, settings, open.period),
        selection: { conditions: [], members: [], notOpenedOf: open.mailingId },
      }), `to those who did not open mailing ${open.mailingId}`);
    }
    const latest = store.plans.latestPeriod(plan.id);
    for (let due = Math.max(latest === null ? plan.firstDue : nextDueAfter(r, latest), plan.firstDue); due < current; due = nextDueAfter(r, due)) {
      if (!store.plans.claimPeriod(plan.id, due, 'main', now)) continue;
      result.missed.push({ plan: plan.name, period: periodLabel(plan.every, due), due, followUp: false });
    }
    if (current >= plan.firstDue) {
      make(plan, current, 'main', () => ({
        template: periodTemplate(plan.templatePath, settings, current),
        selection: periodSelection(store, plan, settings, current),
      }), `for ${label(plan, current, settings)}`);
    }
  }
  return result;

  function make(plan: Plan, period: number, kind: PeriodKind, what: () => { template: Template; selection: MemberSelection }, about: string): void {
    const periodName = periodLabel(plan.every, period);
    try {
      const made = store.immediate(() => {
        if (!store.plans.claimPeriod(plan.id, period, kind, now)) return null;
        const { template, selection } = what();
        const m = createMailing(store, { template, selection, settings: mailingSettings(settings, { allowEmpty: false }), now, at: now, maxMessageBytes: settings.maxMessageBytes });
        store.plans.setPeriodMailing(plan.id, period, kind, m.mailing.id);
        return m;
      });
      if (!made) return;
      result.made.push({ plan: plan.name, period: periodName, due: period, mailing: made.mailing.id, followUp: kind === 'follow-up', selected: made.selected });
      say(`plan ${plan.name}: ${kind === 'follow-up' ? 'follow-up ' : ''}mailing ${made.mailing.id} made ${about}, ${made.selected} selected`);
    } catch (err) {
      // The claim went with the transaction: the next run in this period tries again.
      if (!(err instanceof MailerError)) throw err;
      result.errors.push({ plan: plan.name, period: periodName, followUp: kind === 'follow-up', message: `${err.message}${err.hint ? ` (${err.hint})` : ''}` });
    }
  }
}

function label(plan: Plan, due: number, settings: Settings): string {
  const v = periodValues(due, settings.language);
  return `${plan.every === 'month' ? `${v.month} ${v.year}` : periodLabel(plan.every, due)} (due ${localLabel(due)})`;
}
