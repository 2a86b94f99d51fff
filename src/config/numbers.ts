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

/**
 * A decimal number as members' files write it: `30`, `-2`, `12.50`, or with the decimal comma
 * German spreadsheets write, `12,50`. Null for anything else (empty, `frei`, `1.234,50`): such
 * a value is compared as text, and such a field is no number.
 */
export function decimalNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (!/^[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)$/.test(text)) return null;
  return Number(text.replace(',', '.'));
}
