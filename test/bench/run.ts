/**
 * Every benchmark in turn, then one table. Run by hand on an otherwise idle machine:
 *
 *   npm run bench                              all of them, real sizes
 *   node dist/test/bench/run.js log help       only these
 *   node dist/test/bench/run.js --quick        5 % sizes: checks the benchmarks work, figures mean little
 *   node dist/test/bench/run.js storage --scale 0.1   a tenth of the sizes (say so beside the figures)
 *
 * Exits 1 when a figure misses its target, so a script can tell; it is never part of `npm test`.
 */
import { benchAttachments } from './attachments.js';
import { benchHelp } from './help.js';
import { benchImport } from './import.js';
import { benchLog } from './log.js';
import { benchSend } from './send.js';
import { benchPrivacy } from './privacy.js';
import { benchStorage } from './storage.js';
import { benchScale } from './scale.js';
import { benchNetwork } from './network.js';
import { formatTable, verdict, type BenchOptions, type BenchResult, type Figure } from './lib.js';

const BENCHES: Record<string, (o: BenchOptions) => Promise<BenchResult>> = {
  import: benchImport,
  send: benchSend,
  log: benchLog,
  help: benchHelp,
  attachments: benchAttachments,
  privacy: benchPrivacy,
  storage: benchStorage,
  scale: benchScale,
  network: benchNetwork,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --scale 0.1: a tenth of the real sizes, for a machine too busy for the real ones (say so with the figures).
  const scaleAt = args.indexOf('--scale');
  const scale = scaleAt >= 0 ? Number(args[scaleAt + 1]) : args.includes('--quick') ? 0.05 : 1;
  const names = args.filter((a, i) => !a.startsWith('--') && !(scaleAt >= 0 && i === scaleAt + 1));
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; there are: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  const chosen = names.length ? names : Object.keys(BENCHES);

  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const name of chosen) {
    const log = (line: string) => process.stderr.write(`[${name}] ${line}\n`);
    const started = Date.now();
    try {
      const r = await BENCHES[name]({ scale, log });
      figures.push(...r.figures);
      notes.push(...r.notes);
    } catch (err) {
      // One broken benchmark should not cost the figures of the others.
      figures.push({ name: `${name}: (failed to run)`, value: null, unit: '', detail: (err as Error).message });
      notes.push(`${name}: failed to run: ${(err as Error).stack ?? err}`);
    }
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }

  process.stdout.write(`\n${notes.join('\n\n')}\n\n${formatTable(figures)}\n`);
  if (scale !== 1) process.stdout.write(`\n(sizes cut to ${scale * 100} %: start-up weighs more, the figures do not compare with the targets one to one)\n`);
  const failed = figures.filter((f) => verdict(f) === 'FAIL');
  if (failed.length) {
    process.stdout.write(`\n${failed.length} figure(s) missed the target: ${failed.map((f) => f.name).join('; ')}\n`);
    process.exitCode = 1;
  }
}

await main();
