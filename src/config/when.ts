/**
 * `<when>` values of the log filters: `2026-11-01`, `2026-11-01T08:00` (local time, as a
 * person reads a calendar), or relative to now: `90m`, `36h`, `7d`.
 */
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `15m`, `4h`, `1d` → milliseconds, or null. */
export function parseDuration(value: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(value);
  return m ? Number(m[1]) * UNIT_MS[m[2].toLowerCase()] : null;
}

/**
 * A retention period: `90d`, `2y`, `6w`, `36h` → milliseconds, or null. A year is 365 days (a
 * period to keep data for, not a calendar date).
 */
export function parseRetention(value: string): number | null {
  const m = /^\s*(\d+)\s*([hdwy])\s*$/i.exec(value);
  if (!m || Number(m[1]) === 0) return null;
  return Number(m[1]) * { h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 365 * 86_400_000 }[m[2].toLowerCase() as 'h' | 'd' | 'w' | 'y'];
}

/** A template's `Retention:` line, read from its header block as written (null when it has none). */
export function retentionHeader(source: string): string | null {
  const text = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const end = text.indexOf('\n\n');
  for (const line of (end < 0 ? text : text.slice(0, end)).split('\n')) {
    const m = /^retention:[ \t]*(.*)$/i.exec(line);
    if (m) return m[1].trim();
  }
  return null;
}

export type WhenEdge = 'start' | 'end';

/**
 * Milliseconds since the epoch, or null if the value is not a `<when>`. A date without a time
 * means the start of that day, or with edge 'end' the end of it (so `--until 2026-11-01`
 * includes that day).
 */
export function parseWhen(value: string, now: number, edge: WhenEdge = 'start'): number | null {
  const v = value.trim();
  const span = parseDuration(v);
  if (span !== null) return now - span;
  const absolute = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(v);
  if (!absolute) return null;
  const [, y, mo, d, h, mi, s] = absolute;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  // Reject what Date silently rolls over (2026-02-31 → March 3rd).
  if (date.getFullYear() !== Number(y) || date.getMonth() !== Number(mo) - 1 || date.getDate() !== Number(d)) return null;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59)) return null;
  if (h === undefined && edge === 'end') date.setDate(date.getDate() + 1);
  return date.getTime();
}
