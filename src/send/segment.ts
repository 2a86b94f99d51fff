import { badInput } from '../errors.js';
import { parseCondition } from '../config/filters.js';
import type { FieldCondition } from '../domain/types.js';
import type { Store } from '../store/store.js';
import { checkConditionFields } from './send.js';

/** A segment's conditions as typed; checked before the store is opened. */
export function segmentConditions(where: string[]): FieldCondition[] {
  // A segment without a condition would select every member: that is what a send without
  // --segment does already, and as a saved name it would be a trap.
  if (where.length === 0) throw badInput('a segment needs at least one --where condition');
  return where.map(parseCondition);
}

/** Saves a selection once its fields are known, so that a typo fails now and not at the send. */
export function saveSegment(store: Store, name: string, conditions: FieldCondition[], now: number): void {
  checkConditionFields(store, conditions);
  store.members.saveSegment(name, conditions, now);
}
