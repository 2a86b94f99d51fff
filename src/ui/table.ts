import Table from 'cli-table3';
import { printable } from './printable.js';

/** A plain table: borders only on a terminal, so piped output stays greppable; one line per cell. */
export function renderTable(head: string[], rows: (string | number | null | undefined)[][], opts: { tty: boolean }): string {
  const table = new Table({
    head,
    style: { head: [], border: [] },
    ...(opts.tty ? {} : {
      chars: {
        top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
        'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
      },
    }),
  });
  for (const row of rows) table.push(row.map((v) => (v === null || v === undefined ? '' : printable(String(v)))));
  return table.toString().split('\n').map((l) => l.replace(/\s+$/, '')).join('\n');
}
