import { badInput } from '../errors.js';

/**
 * A whole number from a flag or a setting, from `min` to `max`; anything else exits 2 naming
 * the flag or setting and the value as given ("--limit abc" must not quietly mean something).
 */
export function wholeNumber(value: unknown, name: string, min = 1, max = Infinity): number {
  const n = typeof value === 'number' ? value : String(value).trim() === '' ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max < Infinity ? `from ${min} to ${max}` : min === 0 ? '(0 for all)' : `of at least ${min}`;
    throw badInput(`${name} must be a whole number ${range}, not "${value}"`);
  }
  return n;
}
