import { badInput } from '../errors.js';
import { addressProblem, normalizeAddress } from '../domain/address.js';
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

/** Allows mail to an address again; the address in its stored form. */
export function unsuppressAddress(store: Store, address: string): string {
  const email = normalizeAddress(address);
  if (!store.triage.unsuppress(email)) throw badInput(`${email} is not suppressed`, 'mailer suppress list shows the suppressed addresses');
  return email;
}
