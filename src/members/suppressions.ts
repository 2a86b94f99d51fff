import { badInput } from '../errors.js';
import { addressProblem, normalizeAddress } from '../domain/address.js';
import { ALL_TOPICS } from '../domain/types.js';
import { topicName } from '../config/topic.js';
import { ERASED_PREFIX, erasedHash } from '../domain/erasure.js';
import type { Store } from '../store/store.js';

/**
 * The address `suppress add` stores, in the form sends compare against. Refused when it is not
 * an address: a suppression nothing can match would look as if it protected someone. Checked
 * before the store is opened.
 */
export function addressToSuppress(address: string): string {
  const email = normalizeAddress(address);
  const problem = addressProblem(email);
  if (problem) throw badInput(`"${address}" is not a valid e-mail address: ${problem}`);
  return email;
}

/** The topic of `--topic`: a topic's name, or "*" for every topic members may opt out of. */
export function topicToSuppress(topic: string): string {
  return topic.trim() === ALL_TOPICS ? ALL_TOPICS : topicName(topic, '--topic');
}

/**
 * Stops mail to an address: every mail (required ones too) without a topic, else the mails of
 * that topic that members may opt out of.
 */
export function suppressAddress(store: Store, email: string, topic: string | null, reason: string, now: number): void {
  if (topic === null) store.triage.suppress(email, reason, now);
  else store.triage.optOut(email, topic, reason, now);
}

/** Allows mail to an address again (of one topic, with a topic); the address in its stored form. */
export function unsuppressAddress(store: Store, address: string, topic: string | null = null): string {
  const given = normalizeAddress(address);
  // The address of an erased member is kept under its keyed hash: found by the address all the same.
  const erased = store.erasure.anyForgotten() ? ERASED_PREFIX + erasedHash(store.erasure.secret(), 'address', given) : null;
  const held = erased !== null && (topic === null ? store.triage.suppression(erased) !== undefined : store.triage.optOutsOf(erased).some((o) => o.topic === topic));
  const email = held ? erased! : given;
  if (topic !== null) {
    if (!store.triage.removeOptOut(email, topic)) {
      throw badInput(`${given} has not opted out of the topic "${topic}"`, `mailer suppress list --topic "${topic}" shows who has`);
    }
    return given;
  }
  if (!store.triage.unsuppress(email)) {
    const topics = store.triage.optOutsOf(email).map((o) => o.topic);
    throw badInput(`${given} is not suppressed${topics.length ? ` for every mail; it has opted out of ${topics.map((t) => `"${t}"`).join(', ')}` : ''}`,
      topics.length ? `remove one with: mailer suppress remove ${given} --topic "${topics[0]}"` : 'mailer suppress list shows the suppressed addresses');
  }
  return given;
}
