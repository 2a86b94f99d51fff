import type { Store } from '../store/store.js';
import type { Settings } from '../config/settings.js';

/**
 * Providers cap mails per hour or day; the caps are counted from the attempts in the database,
 * so every sending command (send, retry, retarget, run) and consecutive runs add up.
 */
const HOUR = 3_600_000;

/** How many mails this run may hand over (null: no cap), and which cap is the tightest. */
export function runBudget(store: Store, settings: Settings, cap: { n: number; flag: string } | undefined, now: number): { budget: number | null; reason: string | null } {
  const caps: [number, string][] = [];
  if (cap !== undefined) caps.push([cap.n, `${cap.flag} ${cap.n}`]);
  if (settings.maxPerHour) caps.push([settings.maxPerHour - store.sends.handedOverSince(now - HOUR), `maxPerHour ${settings.maxPerHour}`]);
  if (settings.maxPerDay) caps.push([settings.maxPerDay - store.sends.handedOverSince(now - 24 * HOUR), `maxPerDay ${settings.maxPerDay}`]);
  if (caps.length === 0) return { budget: null, reason: null };
  const [budget, reason] = caps.reduce((a, b) => (b[0] < a[0] ? b : a));
  return { budget: Math.max(0, budget), reason };
}

