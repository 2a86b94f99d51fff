/**
 * attachments: 1,000 members, each sent their own 2 MB PDF (hard links to one file, so the
 * folder costs 2 MB of disk, not 2 GB), into Postfix's smtp-sink on loopback. The files are read
 * while each mail is handed over, so the peak RSS of `mailer send` must not grow with the list:
 * target under 250 MB. Also the wall time and what it comes to in MB/s of encoded mail.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  ensureTool, expectOk, freePort, isMain, mailer, runAlone, waitForPort, withTempDir,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';
import { startSink, stopSink } from './send.js';

const MEMBERS = 1_000;
const PDF_BYTES = 2 * 1024 * 1024;
const CONCURRENCY = 16;

const TEMPLATE = `Subject: Ihr Befund, {{name}}
From: Praxis <praxis@example.org>
Attachment: befunde/{{id}}.pdf

Guten Tag {{name}},
anbei Ihr Befund.
`;

export async function benchAttachments({ scale, log }: BenchOptions): Promise<BenchResult> {
  const members = Math.max(50, Math.round(MEMBERS * scale));
  const figures: Figure[] = [];
  const notes: string[] = [];
  const sink = ensureTool('smtp-sink', 'postfix', log, 'postfix postfix/main_mailer_type select No configuration');
  if (!sink.path) {
    figures.push({ name: 'attachments: peak RSS', value: null, unit: 'MB', detail: sink.reason });
    notes.push(`attachments: skipped: ${sink.reason}`);
    return { figures, notes };
  }
  const port = await freePort();
  const server = startSink(sink.path, port);
  try {
    await waitForPort(port);
    await withTempDir('attachments', async (dir) => {
      const lines = ['id;name;email', ...Array.from({ length: members }, (_, i) => `${i + 1};Patient ${i + 1};p${i + 1}@example.org`)];
      fs.writeFileSync(path.join(dir, 'patienten.csv'), lines.join('\n') + '\n');
      fs.mkdirSync(path.join(dir, 'befunde'));
      const pdf = path.join(dir, 'befund.pdf');
      fs.writeFileSync(pdf, crypto.randomBytes(PDF_BYTES));
      for (let i = 1; i <= members; i++) fs.linkSync(pdf, path.join(dir, 'befunde', `${i}.pdf`));
      fs.writeFileSync(path.join(dir, 'befund.txt'), TEMPLATE);
      const db = path.join(dir, 'bench.db');
      expectOk('mailer import', await mailer(['import', 'patienten.csv', '--db', db, '--json'], { cwd: dir }));
      log(`mailer send: ${members} members, a ${PDF_BYTES / 1048576} MB PDF each, --concurrency ${CONCURRENCY} …`);
      const r = await mailer(['send', 'befund.txt', '--smtp', `smtp://127.0.0.1:${port}`, '--concurrency', String(CONCURRENCY), '--db', db, '--json'],
        { cwd: dir, peakRss: true });
      const summary = JSON.parse(r.stdout || '{}') as { sent?: number };
      if (summary.sent !== members) throw new Error(`sent ${summary.sent} of ${members}: ${(r.stderr || r.stdout).trim().slice(0, 1000)}`);
      const encodedMb = (members * (PDF_BYTES * 4 / 3) * 78 / 76) / 1048576;
      figures.push(
        { name: `attachments: peak RSS, ${members} × 2 MB`, value: r.peakRssMb ?? null, unit: 'MB', target: { op: '<=', value: 250 }, detail: r.rssMethod },
        { name: 'attachments: mails/s', value: members / (r.ms / 1000), unit: 'msg/s', detail: `${(r.ms / 1000).toFixed(1)} s` },
        { name: 'attachments: encoded MB/s', value: encodedMb / (r.ms / 1000), unit: 'MB/s' },
      );
      const dbMb = fs.statSync(db).size / 1048576;
      notes.push(`attachments: ${members} mails with a 2 MB PDF each in ${(r.ms / 1000).toFixed(1)} s, peak RSS ${r.peakRssMb?.toFixed(0) ?? '?'} MB; the database is ${dbMb.toFixed(1)} MB (the log keeps no file).`);
    });
  } finally {
    await stopSink(server);
  }
  return { figures, notes };
}

if (isMain(import.meta.url)) await runAlone('attachments', benchAttachments);
