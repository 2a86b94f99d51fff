/**
 * import: a 1,000,000-member CSV through `mailer import`, as a user runs it, against the
 * sqlite3 shell's `.import` of the same file — the floor of "parse CSV, insert rows" that
 * mailer's upsert, address check, field JSON and history trigger are weighed against.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  MEMBER_HEADER, ensureTool, expectOk, isMain, mailer, median, memberLine, rng, runAlone, runTimed, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const ROWS = 1_000_000;

export async function benchImport({ scale, log }: BenchOptions): Promise<BenchResult> {
  const rows = Math.max(1000, Math.round(ROWS * scale));
  const smallRows = Math.max(1000, Math.round(rows / 10));
  return withTempDir('import', async (dir) => {
    const figures: Figure[] = [];
    const notes: string[] = [];
    const csv = path.join(dir, 'members.csv');
    const smallCsv = path.join(dir, 'members-small.csv');
    log(`writing ${rows.toLocaleString('en-US')} and ${smallRows.toLocaleString('en-US')} rows …`);
    const random = rng(1);
    await writeLines(csv, MEMBER_HEADER, rows, (i) => memberLine(i, random));
    const randomSmall = rng(1);
    await writeLines(smallCsv, MEMBER_HEADER, smallRows, (i) => memberLine(i, randomSmall));
    // The files on disk first: the kernel writing them back would compete with the import.
    spawnSync('sync');
    const mb = fs.statSync(csv).size / 1e6;

    // A first import into a new database, three times; the median is the figure.
    const firstImport = async (file: string, n: number, db: string) => {
      fs.rmSync(db, { force: true });
      const r = expectOk('mailer import', await mailer(['import', file, '--db', db, '--json'], { peakRss: true }));
      const result = JSON.parse(r.stdout) as { inserted: number };
      if (result.inserted !== n) throw new Error(`mailer import inserted ${result.inserted} of ${n} rows: ${r.stdout.slice(0, 500)}`);
      return r;
    };
    const db = path.join(dir, 'bench.db');
    log('mailer import, 3 runs …');
    const runs = [];
    for (let k = 0; k < 3; k++) runs.push(await firstImport(csv, rows, db));
    const ms = median(runs.map((r) => r.ms));
    const rss = Math.max(...runs.map((r) => r.peakRssMb ?? 0)) || null;
    const rate = rows / (ms / 1000);
    log('mailer import of a list a tenth the size …');
    const small = await firstImport(smallCsv, smallRows, path.join(dir, 'small.db'));
    log('mailer import of the same file again, into the full database …');
    const again = expectOk('mailer import (again)', await mailer(['import', csv, '--db', db, '--json'], { peakRss: true }));
    figures.push(
      { name: 'import: mailer rows/s', value: rate, unit: 'rows/s', target: { op: '>=', value: 330_000 }, detail: `median of 3: ${(ms / 1000).toFixed(2)} s for ${rows} rows, ${mb.toFixed(0)} MB` },
      { name: 'import: mailer peak RSS', value: rss, unit: 'MB', target: { op: '<=', value: 150 }, detail: runs[0].rssMethod },
      { name: `import: peak RSS, ${smallRows} rows`, value: small.peakRssMb ?? null, unit: 'MB', target: { op: '<=', value: 150 }, detail: 'must not grow with the list' },
      { name: 'import: same file again (upsert)', value: rows / (again.ms / 1000), unit: 'rows/s', detail: `${(again.ms / 1000).toFixed(2)} s, nothing changed, peak RSS ${again.peakRssMb?.toFixed(0) ?? '?'} MB` },
    );
    const dbMb = fs.statSync(db).size / 1e6;
    notes.push(`import: ${rows.toLocaleString('en-US')} rows (${mb.toFixed(1)} MB CSV) into a new database in ${runs.map((r) => (r.ms / 1000).toFixed(2)).join(' / ')} s, ` +
      `median ${Math.round(rate).toLocaleString('en-US')} rows/s, peak RSS ${rss?.toFixed(0) ?? '?'} MB (${runs[0].rssMethod ?? 'not measured'}), database ${dbMb.toFixed(0)} MB; ` +
      `${smallRows.toLocaleString('en-US')} rows: ${(small.ms / 1000).toFixed(2)} s, peak RSS ${small.peakRssMb?.toFixed(0) ?? '?'} MB; ` +
      `the same ${rows.toLocaleString('en-US')} again (every row looked up, none changed): ${(again.ms / 1000).toFixed(2)} s.`);

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
        { name: 'import: mailer / sqlite3', value: rate / sRate, unit: '×', target: { op: '>=', value: 0.5 } },
      );
      notes.push(`import: sqlite3 .import of the same file (plain table, no index): ${(s.ms / 1000).toFixed(2)} s = ` +
        `${Math.round(sRate).toLocaleString('en-US')} rows/s, peak RSS ${s.peakRssMb?.toFixed(0) ?? '?'} MB; mailer reaches ${(100 * rate / sRate).toFixed(0)} % of it.`);
    }
    return { figures, notes };
  });
}


if (isMain(import.meta.url)) await runAlone('import', benchImport);
