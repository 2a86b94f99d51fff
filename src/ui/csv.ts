/** One RFC 4180 line: fields quoted when they hold a delimiter, quote or line break. */
export function csvLine(values: readonly unknown[]): string {
  return values.map((v) => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',') + '\r\n';
}
