/**
 * send: 20,000 mails into Postfix's smtp-sink on loopback, three ways, so mailer's figure has
 * a scale: (a) smtp-source, what the sink takes at most from a C client; (b) a bare nodemailer
 * pool, what the SMTP library mailer uses can do; (c) `mailer send`, the whole pipeline —
 * queue, claim, render, compose, hand over and record each mail.
 *
 * (b) runs twice: as nodemailer comes (Nagle on: each mail's last small write waits for the
 * server's delayed ACK, ~40 ms, which caps a connection at ~23 mails/s) and with TCP_NODELAY
 * sockets, as mailer's SMTP transport opens them. The second is mailer's fair ceiling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import nodemailer from 'nodemailer';
import {
  MEMBER_HEADER, ensureTool, expectOk, freePort, isMain, killGroup, mailer, memberLine, rng, runAlone, runTimed,
  track, waitForPort, which, withTempDir, writeLines, type BenchOptions, type BenchResult, type Figure,
} from './lib.js';

const MAILS = 20_000;
export const CONCURRENCY = 16;

export const TEMPLATE = `Subject: Hallo {{name}}
From: Bench <bench@example.org>
Type: bench

Hallo {{name}}, dein Link: https://x.example/{{token}}
`;

export async function benchSend({ scale, log }: BenchOptions): Promise<BenchResult> {
  const mails = Math.max(500, Math.round(MAILS * scale));
  const figures: Figure[] = [];
  const notes: string[] = [];
  const sink = ensureTool('smtp-sink', 'postfix', log, 'postfix postfix/main_mailer_type select No configuration');
  const source = which('smtp-source');
  if (!sink.path) {
    // Without a sink there is no fair server to measure against; the three figures go together.
    for (const name of ['send: smtp-source -s 4 msg/s (ceiling)', 'send: nodemailer pool msg/s', 'send: mailer msg/s']) {
      figures.push({ name, value: null, unit: 'msg/s', detail: sink.reason });
    }
    notes.push(`send: skipped: ${sink.reason}`);
    return { figures, notes };
  }

  const port = await freePort();
  const server = startSink(sink.path, port);
  try {
    await waitForPort(port);
    const features = await ehloFeatures(port);
    notes.push(`send: smtp-sink on 127.0.0.1:${port} advertises ${features.join(', ') || '(no extensions)'}` +
      (features.includes('STARTTLS') ? ' — STARTTLS offered: mailer (no ignoreTLS) will try it' : '; no STARTTLS, so every client speaks plain SMTP'));

    // (a) the ceiling: smtp-source as asked (4 sessions), and with mailer's 16 for a like-for-like scale
    let ceiling: number | null = null;
    for (const sessions of [4, CONCURRENCY]) {
      const name = `send: smtp-source -s ${sessions} msg/s${sessions === 4 ? ' (ceiling)' : ''}`;
      if (!source) {
        figures.push({ name, value: null, unit: 'msg/s', detail: 'smtp-source not found' });
        continue;
      }
      log(`smtp-source: ${mails} mails over ${sessions} sessions …`);
      const r = expectOk('smtp-source', await runTimed(source, ['-s', String(sessions), '-m', String(mails), '-c', `127.0.0.1:${port}`]));
      const rate = mails / (r.ms / 1000);
      ceiling ??= rate;
      figures.push({ name, value: rate, unit: 'msg/s', detail: `${sessions} sessions, tiny messages` });
    }

    // (b) the library alone, pooled as mailer pools it
    log(`nodemailer pool: ${mails} mails, ${CONCURRENCY} at a time …`);
    const pool = await bareNodemailer(port, mails, false);
    figures.push({ name: 'send: nodemailer pool msg/s', value: pool.rate, unit: 'msg/s', detail: `${pool.failed} failed` });
    if (pool.failed) notes.push(`send: nodemailer pool: ${pool.failed} of ${mails} failed, first error: ${pool.firstError}`);
    // (b') the same with TCP_NODELAY: tells a slow socket from a slow library.
    log(`nodemailer pool + TCP_NODELAY: ${mails} mails …`);
    const fast = await bareNodemailer(port, mails, true);
    figures.push({ name: 'send: nodemailer pool + TCP_NODELAY msg/s', value: fast.rate, unit: 'msg/s', detail: 'diagnosis' });

    // (c) the whole of mailer, as shipped
    const full = await mailerSend(port, mails, log, []);

    figures.push(
      { name: 'send: mailer msg/s', value: full.rate, unit: 'msg/s', target: { op: '>=', value: 6000 }, detail: `${full.sent} sent in ${(full.ms / 1000).toFixed(2)} s` },
      { name: 'send: mailer peak RSS', value: full.peakRssMb, unit: 'MB' },
      { name: 'send: mailer / nodemailer pool', value: full.rate / pool.rate, unit: '×' },
    );
    if (ceiling) figures.push({ name: 'send: mailer / smtp-source -s 4', value: full.rate / ceiling, unit: '×', target: { op: '>=', value: 0.2 } });
    figures.push({ name: 'send: mailer / nodemailer pool + TCP_NODELAY', value: full.rate / fast.rate, unit: '×' });
    if (full.problem) notes.push(`send: ${full.label}: ${full.problem}`);
    notes.push(`send: ${mails} mails, concurrency ${CONCURRENCY} — smtp-source -s 4 ${ceiling ? Math.round(ceiling) : '—'} msg/s; ` +
      `nodemailer pool ${Math.round(pool.rate)} msg/s (with TCP_NODELAY ${Math.round(fast.rate)}); ` +
      `mailer send ${Math.round(full.rate)} msg/s, ${(full.ms / 1000).toFixed(2)} s wall incl. start-up and queueing, peak RSS ${full.peakRssMb?.toFixed(0) ?? '?'} MB.`);

    // (d) memory: the same pipeline for lists 5 and 50 times as long; it must not grow with them.
    for (const members of [Math.round(100_000 * Math.max(scale, 0.01)), Math.round(1_000_000 * Math.max(scale, 0.01))]) {
      const run = await mailerSend(port, members, log, []);
      figures.push({
        name: `send: peak RSS, ${members.toLocaleString('en-US')} members`, value: run.peakRssMb, unit: 'MB', target: { op: '<=', value: 200 },
        detail: `${Math.round(run.rate)} msg/s, ${(run.ms / 1000).toFixed(0)} s`,
      });
      if (run.problem) notes.push(`send (${members} members): ${run.problem}`);
      notes.push(`send: ${members.toLocaleString('en-US')} members: ${(run.ms / 1000).toFixed(1)} s = ${Math.round(run.rate)} msg/s, peak RSS ${run.peakRssMb?.toFixed(0) ?? '?'} MB.`);
    }
  } finally {
    await stopSink(server);
  }
  return { figures, notes };
}

/**
 * smtp-sink on loopback only, 1000 backlog. It refuses to run as root without -u; `timeout`
 * makes sure it goes away by itself even if this process is killed hard.
 */
export function startSink(binary: string, port: number): ChildProcess {
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${port}`, '1000'];
  const bounded = which('timeout');
  const [command, argv] = bounded ? [bounded, ['900', binary, ...args]] : [binary, args];
  // -c prints a running counter on stdout: not wanted.
  return track(spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'], detached: true }));
}

export async function stopSink(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killGroup(child, 'SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  killGroup(child, 'SIGKILL');
}

/** The EHLO keywords, to tell whether a client would be pushed into STARTTLS. */
function ehloFeatures(port: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffer = '';
    let sentEhlo = false;
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no EHLO reply from smtp-sink in 5 s')); }, 5000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (!sentEhlo && /^220 .*\r?\n/m.test(buffer)) {
        sentEhlo = true;
        buffer = '';
        socket.write('EHLO bench.example\r\n');
      } else if (sentEhlo && /^250 .*\r?\n/m.test(buffer)) {
        clearTimeout(timer);
        socket.end('QUIT\r\n');
        const lines = buffer.split(/\r?\n/).filter((l) => /^250[- ]/.test(l)).slice(1);
        resolve(lines.map((l) => l.slice(4).split(' ')[0].toUpperCase()).filter(Boolean));
      }
    });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

interface MailerRun { label: string; sent: number; ms: number; rate: number; peakRssMb: number | null; problem?: string }

/** Members imported into a fresh database, then one `mailer send` of the template to all. */
function mailerSend(port: number, mails: number, log: (line: string) => void, nodeArgs: string[]): Promise<MailerRun> {
  const label = nodeArgs.length ? 'mailer send + TCP_NODELAY preload' : 'mailer send';
  return withTempDir('send', async (dir) => {
    const csv = path.join(dir, 'members.csv');
    const random = rng(2);
    await writeLines(csv, MEMBER_HEADER, mails, (i) => memberLine(i, random));
    const template = path.join(dir, 'bench.txt');
    fs.writeFileSync(template, TEMPLATE);
    const db = path.join(dir, 'bench.db');
    expectOk('mailer import', await mailer(['import', csv, '--db', db, '--json']));
    log(`${label}: ${mails} mails, --concurrency ${CONCURRENCY} …`);
    // cwd is the temp folder: no mailer.json of the project, and an outbox would land here.
    const r = await mailer(['send', template, '--smtp', `smtp://127.0.0.1:${port}`, '--concurrency', String(CONCURRENCY), '--db', db, '--json'],
      { cwd: dir, peakRss: true, nodeArgs });
    let summary: { sent?: number; failed?: number; deferred?: number; queued?: number } = {};
    try { summary = JSON.parse(r.stdout); } catch { /* reported below */ }
    if (summary.sent === undefined) throw new Error(`${label} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
    const sent = summary.sent;
    const problem = sent === mails ? undefined
      : `sent ${sent} of ${mails} (failed ${summary.failed}, deferred ${summary.deferred}, queued ${summary.queued}); stderr: ${r.stderr.trim().slice(0, 500)}`;
    return { label, sent, ms: r.ms, rate: sent / (r.ms / 1000), peakRssMb: r.peakRssMb ?? null, problem };
  });
}

/** What nodemailer's pool does with no queue, store or rendering around it. */
async function bareNodemailer(port: number, mails: number, noDelay: boolean): Promise<{ rate: number; failed: number; firstError?: string }> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1', port, pool: true, maxConnections: CONCURRENCY, maxMessages: Infinity, ignoreTLS: true,
    // nodemailer's own hook for the socket; it takes an open connection and speaks SMTP on it.
    ...(noDelay ? {
      getSocket: (_options: unknown, callback: (err: Error | null, socketOptions?: { connection: net.Socket }) => void) => {
        const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
        // Once connected, errors are nodemailer's to handle: the callback must not run twice.
        const failed = (e: Error) => callback(e);
        socket.once('error', failed);
        socket.once('connect', () => {
          socket.off('error', failed);
          callback(null, { connection: socket });
        });
      },
    } : {}),
  });
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    // Each worker takes the next number until all are handed out: bounded by `mails`.
    for (let i = next++; i < mails; i = next++) {
      try {
        await transport.sendMail({
          from: 'Bench <bench@example.org>', to: `member${i}@example.org`,
          subject: `Hallo ${i}`, text: `Hallo ${i}, dein Link: https://x.example/${i}`,
        });
      } catch (e) {
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - start;
  transport.close();
  return { rate: (mails - failed) / (ms / 1000), failed, firstError };
}

if (isMain(import.meta.url)) await runAlone('send', benchSend);
