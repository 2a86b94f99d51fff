/**
 * One RFC 4180 line: fields quoted when they hold a delimiter, quote or line break. The ";" and
 * the tab count as delimiters too, since a spreadsheet in a German locale splits on ";".
 */
export function csvLine(values: readonly unknown[]): string {
  return values.map((v) => {
    if (v === null || v === undefined) return '';
    const s = inert(String(v));
    return /[",;\t\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',') + '\r\n';
}

/**
 * Excel and LibreOffice run a cell that begins with = + - @ (or a tab or CR before one) as a
 * formula: member keys, addresses and server replies come from outside, so such a cell gets a
 * leading "'" (OWASP, CSV injection). Numbers too: "-5" is not worth a second rule.
 */
function inert(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}
