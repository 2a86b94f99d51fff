/**
 * This build against another checkout's build, on the same machine at the same time: a change
 * that should not cost speed is measured against the code before it, not against figures of
 * another day. Rounds alternate (this, other, this, other, …) so that a machine getting busier
 * or quieter weighs on both alike.
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   node dist/test/bench/compare.js /tmp/before [--rounds 5] [--mails 20000] [--rows 1000000]
 *
 * Prints the median of each figure for both and the ratio this / other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  BIN, ensureTool, expectOk, fmt, freePort, median, MEMBER_HEADER, memberLine, rng, runTimed, waitForPort, withTempDir, writeLines,
} from './lib.js';
import { CONCURRENCY, startSink, stopSink, TEMPLATE } from './send.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const other = process.argv[2] && !process.argv[2].startsWith('--') ? path.resolve(process.argv[2]) : null;
  const otherBin = other && path.join(other, 'bin', 'mailer.js');
  if (!otherBin || !fs.existsSync(path.join(other!, 'dist'))) {
    process.stderr.write('usage: node dist/test/bench/compare.js <other checkout, built> [--rounds n] [--mails n] [--rows n]\n');
    process.exit(2);
  }
  const rounds = flag('rounds', 5);
  const mails = flag('mails', 20_000);
  const rows = flag('rows', 1_000_000);
  const log = (line: string) => process.stderr.write(`[compare] ${line}\n`);
  const sink = ensureTool('smtp-sink', 'postfix', log, 'postfix postfix/main_mailer_type select No configuration');
  if (!sink.path) throw new Error(`smtp-sink is needed: ${sink.reason}`);
  const builds = { this: BIN, other: otherBin };
  const run = (bin: string, args: string[], cwd: string) => runTimed(process.execPath, [bin, ...args], { cwd });

  await withTempDir('compare', async (dir) => {
    const random = rng(3);
    const sendCsv = path.join(dir, 'send.csv');
    const importCsv = path.join(dir, 'import.csv');
    await writeLines(sendCsv, MEMBER_HEADER, mails, (i) => memberLine(i, random));
    await writeLines(importCsv, MEMBER_HEADER, rows, (i) => memberLine(i, random));
    fs.writeFileSync(path.join(dir, 'bench.txt'), TEMPLATE);
    spawnSync('sync');
    const port = await freePort();
    const server = startSink(sink.path!, port);
    const figures: Record<string, Record<string, number[]>> = { 'send msg/s': { this: [], other: [] }, 'import rows/s': { this: [], other: [] } };
    try {
      await waitForPort(port);
      for (let round = 1; round <= rounds; round++) {
        for (const [name, bin] of Object.entries(builds)) {
          const db = path.join(dir, `${name}.db`);
          fs.rmSync(db, { force: true });
          const imported = expectOk(`${name} import`, await run(bin, ['import', importCsv, '--db', db, '--json'], dir));
          figures['import rows/s'][name].push(rows / (imported.ms / 1000));
          fs.rmSync(db, { force: true });
          expectOk(`${name} import`, await run(bin, ['import', sendCsv, '--db', db, '--json'], dir));
          const sent = expectOk(`${name} send`, await run(bin, ['send', 'bench.txt', '--smtp', `smtp://127.0.0.1:${port}`, '--concurrency', String(CONCURRENCY), '--db', db, '--json'], dir));
          const summary = JSON.parse(sent.stdout) as { sent: number };
          if (summary.sent !== mails) throw new Error(`${name} send sent ${summary.sent} of ${mails}`);
          figures['send msg/s'][name].push(mails / (sent.ms / 1000));
          log(`round ${round} ${name}: import ${fmt(figures['import rows/s'][name].at(-1)!, 'rows/s')}, send ${fmt(figures['send msg/s'][name].at(-1)!, 'msg/s')}`);
        }
      }
    } finally {
      await stopSink(server);
    }
    process.stdout.write(`${rounds} rounds, ${mails} mails, ${rows} rows; this = ${path.dirname(path.dirname(BIN))}, other = ${other}\n`);
    for (const [figure, by] of Object.entries(figures)) {
      const a = median(by.this);
      const b = median(by.other);
      process.stdout.write(`${figure.padEnd(14)} this ${fmt(a, '').padStart(10)}  other ${fmt(b, '').padStart(10)}  this/other ${(a / b).toFixed(3)}  ` +
        `(this: ${by.this.map((v) => Math.round(v)).join(' ')}; other: ${by.other.map((v) => Math.round(v)).join(' ')})\n`);
    }
  });
}

await main();
