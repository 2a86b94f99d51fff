/**
 * help: `mailer --help`, the floor under every command's start-up. The command files load
 * their heavy parts lazily; this figure shows whether something heavy crept into the top.
 */
import { expectOk, isMain, mailer, medianOf, runAlone, runTimed, type BenchOptions, type BenchResult } from './lib.js';

const RUNS = 10;

export async function benchHelp({ log }: BenchOptions): Promise<BenchResult> {
  log(`mailer --help ×${RUNS} …`);
  // One unmeasured run first, so the figure is a warm start (node and node_modules in the page cache).
  const { median, all } = await medianOf(RUNS, async () => expectOk('mailer --help', await mailer(['--help'])).ms);
  // The same for node doing nothing: what no change to mailer can take away.
  const bare = await medianOf(RUNS, async () => expectOk('node -e 0', await runTimed(process.execPath, ['-e', '0'])).ms);
  return {
    figures: [
      { name: 'help: mailer --help', value: median, unit: 'ms', target: { op: '<=', value: 120 }, detail: `min ${Math.min(...all).toFixed(0)} ms` },
      { name: 'help: node -e 0 (reference)', value: bare.median, unit: 'ms' },
    ],
    notes: [`help: mailer --help median ${median.toFixed(0)} ms over ${RUNS} runs (all: ${all.map((v) => v.toFixed(0)).join(', ')}); ` +
      `node -e 0 alone takes ${bare.median.toFixed(0)} ms, so mailer's own start-up costs ${(median - bare.median).toFixed(0)} ms.`],
  };
}

if (isMain(import.meta.url)) await runAlone('help', benchHelp);
