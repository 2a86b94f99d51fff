/**
 * import: a 1,000,000-member CSV through `mailer import`, as a user runs it, against the
 * sqlite3 shell's `.import` of the same file — the floor of "parse CSV, insert rows" that
 * mailer's upsert, address check, field JSON and history trigger are weighed against.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  MEMBER_HEADER, ensureTool, expectOk, isMain, mailer, memberLine, rng, runAlone, runTimed, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const ROWS = 1_000_000;

export async function benchImport({ scale, log }: BenchOptions): Promise<BenchResult> {
  const rows = Math.max(1000, Math.round(ROWS * scale));
  return withTempDir('import', async (dir) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const csv = path.join(dir, 'members.csv');
    const random = rng(1);
    log(`writing ${rows.toLocaleString('en-US')} rows …`);
    await writeLines(csv, MEMBER_HEADER, rows, (i) => memberLine(i, random));
    const mb = fs.statSync(csv).size / 1e6;

    log('mailer import …');
    const r = expectOk('mailer import', await mailer(['import', csv, '--db', path.join(dir, 'bench.db'), '--json'], { peakRss: true }));
    const result = JSON.parse(r.stdout) as { read: number; inserted: number; rejected: unknown[] };
    if (result.inserted !== rows) throw new Error(`mailer import inserted ${result.inserted} of ${rows} rows: ${r.stdout.slice(0, 500)}`);
    const rate = rows / (r.ms / 1000);
    figures.push(
      { name: 'import: mailer rows/s', value: rate, unit: 'rows/s', target: { op: '>=', value: 250_000 }, detail: `${(r.ms / 1000).toFixed(2)} s for ${rows} rows, ${mb.toFixed(0)} MB` },
      { name: 'import: mailer peak RSS', value: r.peakRssMb ?? null, unit: 'MB', target: { op: '<=', value: 200 }, detail: r.rssMethod },
      { name: 'import: mailer wall time', value: r.ms / 1000, unit: 's' },
    );
    const dbMb = fs.statSync(path.join(dir, 'bench.db')).size / 1e6;
    notes.push(`import: ${rows.toLocaleString('en-US')} rows (${mb.toFixed(1)} MB CSV) in ${(r.ms / 1000).toFixed(2)} s = ${Math.round(rate).toLocaleString('en-US')} rows/s, ` +
      `peak RSS ${r.peakRssMb?.toFixed(0) ?? '?'} MB (${r.rssMethod ?? 'not measured'}), database ${dbMb.toFixed(0)} MB.`);

    // The comparison: the same file, the sqlite3 shell, a plain table with no index or trigger.
    const sqlite = ensureTool('sqlite3', 'sqlite3', log);
    if (!sqlite.path) {
      figures.push({ name: 'import: sqlite3 .import rows/s', value: null, unit: 'rows/s', detail: sqlite.reason });
      notes.push(`import: sqlite3 comparison skipped: ${sqlite.reason}`);
    } else {
      log('sqlite3 .import …');
      const s = expectOk('sqlite3 .import', await runTimed(sqlite.path, [
        '-batch', '-cmd', '.mode csv', '-cmd', '.separator ;', path.join(dir, 'plain.db'), `.import ${csv} members`,
      ], { peakRss: true }));
      const sRate = rows / (s.ms / 1000);
      figures.push(
        { name: 'import: sqlite3 .import rows/s', value: sRate, unit: 'rows/s', detail: 'no index, no upsert' },
        { name: 'import: mailer / sqlite3', value: rate / sRate, unit: '×' },
      );
      notes.push(`import: sqlite3 .import of the same file (plain table, no index): ${(s.ms / 1000).toFixed(2)} s = ` +
        `${Math.round(sRate).toLocaleString('en-US')} rows/s, peak RSS ${s.peakRssMb?.toFixed(0) ?? '?'} MB; mailer reaches ${(100 * rate / sRate).toFixed(0)} % of it.`);
    }
    return { figures, notes };
  });
}


if (isMain(import.meta.url)) await runAlone('import', benchImport);
