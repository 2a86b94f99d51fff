/**
 * network: the send rate where users send, over a network. Each connection is bound by round
 * trips (with PIPELINING two per mail: envelope + DATA, then the message), so the most a run
 * can do is `concurrency / (2 × RTT)`. A delay proxy on 127.0.0.1 forwards each chunk after D ms
 * each way (RTT = 2D) in front of Postfix's smtp-sink; `mailer send` goes through it with
 * --concurrency 1, 4 and 16 at D = 0, 1, 10 and 20 ms.
 *
 * Two rates per run: the whole command as a user waits for it (start-up, connections, queue),
 * and the steady rate the proxy sees between the first and the last message's end. Against
 * another checkout (built), the runs alternate, this and other, and medians are reported:
 *
 *   node dist/test/bench/network.js [--other /path/to/checkout] [--rounds 3] [--seconds 3] [--delays 1,10] [--concurrencies 1,4]
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BIN, MEMBER_HEADER, ensureTool, expectOk, freePort, isMain, median, memberLine, rng, runAlone, runTimed, waitForPort, withTempDir, writeLines,
  type BenchOptions, type BenchResult, type Figure,
} from './lib.js';
import { startSink, stopSink, TEMPLATE } from './send.js';

const CONCURRENCIES = [1, 4, 16];
const DELAYS = [0, 1, 10, 20];

/** What the proxy saw of one run: when each message's end went through towards the server. */
export interface ProxyTrace {
  ends: number[];
  /** the hold each chunk actually had, summed, and how many: a busy machine fires timers late */
  heldMs: number;
  chunks: number;
}

/**
 * A TCP proxy that holds every chunk D ms in each direction, in order. With D = 0 chunks pass
 * at once. Sockets are TCP_NODELAY both sides, as mailer's own.
 */
export function startDelayProxy(listenPort: number, targetPort: number, delayMs: number, trace: ProxyTrace): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    let tail = '';
    const forward = (from: net.Socket, to: net.Socket, watch: boolean) => {
      from.on('data', (chunk: Buffer) => {
        if (watch) {
          // A message ends with CRLF.CRLF; the text before it may end in the previous chunk.
          const text = tail + chunk.toString('latin1');
          let at = text.indexOf('\r\n.\r\n');
          while (at >= 0) { trace.ends.push(performance.now()); at = text.indexOf('\r\n.\r\n', at + 5); }
          tail = text.slice(-4);
        }
        const received = performance.now();
        const pass = () => {
          trace.heldMs += performance.now() - received;
          trace.chunks++;
          if (!to.destroyed) to.write(chunk);
        };
        if (delayMs === 0) pass();
        else setTimeout(pass, delayMs);
      });
      from.on('end', () => setTimeout(() => to.end(), delayMs));
      from.on('error', () => to.destroy());
    };
    forward(client, upstream, true);
    forward(upstream, client, false);
    client.on('close', () => setTimeout(() => upstream.destroy(), delayMs + 5));
    upstream.on('close', () => setTimeout(() => client.destroy(), delayMs + 5));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve(server));
  });
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

interface Cell { concurrency: number; delay: number; mails: number; limit: number | null }
interface Run { wall: number; steady: number; heldMs: number }

export async function benchNetwork({ scale, log }: BenchOptions): Promise<BenchResult> {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const sink = ensureTool('smtp-sink', 'postfix', log, 'postfix postfix/main_mailer_type select No configuration');
  if (!sink.path) {
    figures.push({ name: 'network: (skipped)', value: null, unit: '', detail: sink.reason });
    return { figures, notes };
  }
  const other = flag('other') ? path.resolve(flag('other')!) : null;
  const rounds = Number(flag('rounds') ?? (other ? 3 : 1));
  const seconds = Number(flag('seconds') ?? 3) * Math.max(scale, 0.2);
  const builds: [string, string][] = [['this', BIN], ...(other ? [['other', path.join(other, 'bin', 'mailer.js')] as [string, string]] : [])];

  // --delays 1,10 --concurrencies 1,4: a part of the table
  const list = (name: string, all: number[]) => (flag(name) ? flag(name)!.split(',').map(Number) : all);
  const cells: Cell[] = [];
  for (const delay of list('delays', DELAYS)) {
    for (const concurrency of list('concurrencies', CONCURRENCIES)) {
      const limit = delay > 0 ? concurrency / (2 * (2 * delay) / 1000) : null;
      // Long enough that the steady rate is measured over seconds; at delay 0 a fixed count.
      const mails = limit === null ? Math.round(Number(flag("zero-mails") ?? 10_000) * Math.max(scale, 0.1)) : Math.max(50, Math.round(limit * seconds));
      cells.push({ concurrency, delay, mails, limit });
    }
  }

  return withTempDir('network', async (dir) => {
    const most = Math.max(...cells.map((c) => c.mails));
    const csv = path.join(dir, 'members.csv');
    const random = rng(5);
    await writeLines(csv, MEMBER_HEADER, most, (i) => memberLine(i, random));
    fs.writeFileSync(path.join(dir, 'bench.txt'), TEMPLATE);
    const sinkPort = await freePort();
    const server = startSink(sink.path!, sinkPort);
    const results = new Map<string, Run[]>();
    try {
      await waitForPort(sinkPort);
      for (let round = 1; round <= rounds; round++) {
        for (const cell of cells) {
          for (const [name, bin] of builds) {
            const csvCell = path.join(dir, `members-${cell.mails}.csv`);
            if (!fs.existsSync(csvCell)) {
              const lines = fs.readFileSync(csv, 'utf8').split('\n').slice(0, cell.mails + 1);
              fs.writeFileSync(csvCell, `${lines.join('\n')}\n`);
            }
            const db = path.join(dir, `${name}.db`);
            for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
            expectOk(`${name} import`, await runTimed(process.execPath, [bin, 'import', csvCell, '--db', db, '--json'], { cwd: dir }));
            const trace: ProxyTrace = { ends: [], heldMs: 0, chunks: 0 };
            const proxyPort = await freePort();
            const proxy = await startDelayProxy(proxyPort, sinkPort, cell.delay, trace);
            try {
              const r = (await runTimed(process.execPath, [bin, 'send', 'bench.txt', '--smtp', `smtp://127.0.0.1:${proxyPort}`,
                '--concurrency', String(cell.concurrency), '--db', db, '--json'], { cwd: dir }));
              let sent = 0;
              try { sent = (JSON.parse(r.stdout) as { sent: number }).sent; } catch { /* reported below */ }
              if (sent !== cell.mails) notes.push(`network: ${name} c=${cell.concurrency} D=${cell.delay}: sent ${sent} of ${cell.mails} (exit ${r.code}): ${r.stdout.slice(0, 300)} ${r.stderr.trim().slice(-300)}`);
              if (sent === 0) continue;
              const ends = trace.ends;
              const steady = ends.length > 1 ? (ends.length - 1) / ((ends[ends.length - 1] - ends[0]) / 1000) : NaN;
              const run = { wall: sent / (r.ms / 1000), steady, heldMs: trace.chunks ? trace.heldMs / trace.chunks : 0 };
              const key = `${name} ${cell.concurrency} ${cell.delay}`;
              results.set(key, [...(results.get(key) ?? []), run]);
              log(`round ${round} ${name} c=${cell.concurrency} D=${cell.delay} ms: ${Math.round(run.wall)} msg/s whole run, ${Math.round(run.steady)} steady` +
                (cell.limit ? ` (limit ${Math.round(cell.limit)}; chunks held ${run.heldMs.toFixed(1)} ms on average)` : ''));
            } finally {
              await new Promise((resolve) => proxy.close(resolve));
            }
          }
        }
      }
    } finally {
      await stopSink(server);
    }
    // Where the limit is above what the same build reaches with no delay at all, the machine,
    // not the round trips, bounds the rate: that share is shown beside the limit's.
    const zeroDelay = (name: string, concurrency: number) => median((results.get(`${name} ${concurrency} 0`) ?? []).map((r) => r.steady));
    const table: string[] = ['  D ms  conc  limit msg/s   this whole / steady (of limit) [of the limit at the hold measured] {of D = 0, where that is below the limit}' + (other ? '   other …' : '')];
    for (const cell of cells) {
      const line = [String(cell.delay).padStart(4), String(cell.concurrency).padStart(5), (cell.limit ? Math.round(cell.limit).toString() : '—').padStart(12)];
      for (const [name] of builds) {
        const runs = results.get(`${name} ${cell.concurrency} ${cell.delay}`) ?? [];
        const wall = median(runs.map((r) => r.wall));
        const steady = median(runs.map((r) => r.steady));
        const of = (v: number) => (cell.limit ? ` (${(v / cell.limit).toFixed(2)})` : '');
        // The limit with the hold the chunks really had: on a busy machine timers fire late.
        const held = median(runs.map((r) => r.heldMs));
        const actual = cell.limit && held > 0 ? cell.concurrency / (2 * (2 * held) / 1000) : null;
        const zero = zeroDelay(name, cell.concurrency);
        const bound = cell.limit && zero < cell.limit ? ` {${(steady / zero).toFixed(2)} of ${Math.round(zero)}}` : '';
        line.push(`   ${Math.round(wall)}${of(wall)} / ${Math.round(steady)}${of(steady)}${actual ? ` [${(steady / actual).toFixed(2)} at ${held.toFixed(1)} ms]` : ''}${bound}`.padEnd(48));
        if (name === 'this') {
          figures.push({
            name: `network: D ${cell.delay} ms, --concurrency ${cell.concurrency}${cell.limit ? ', steady / limit' : ', msg/s'}`,
            value: cell.limit ? steady / cell.limit : steady, unit: cell.limit ? '×' : 'msg/s',
            target: cell.limit ? { op: '>=', value: 0.9 } : undefined,
            detail: `whole run ${Math.round(wall)} msg/s${of(wall)}, ${cell.mails} mails, ${runs.length} run(s)${bound ? `; the limit is above this build's rate at D = 0 (${Math.round(zero)} msg/s), of which this is ${(steady / zero).toFixed(2)}` : ''}`,
          });
        }
      }
      table.push(line.join(''));
    }
    notes.push(`network: smtp-sink behind a delay proxy, medians of ${rounds} alternating round(s)${other ? `; other = ${other}` : ''}; ` +
      `"whole" is mails / wall time of \`mailer send\` (start-up included), "steady" the rate between the first and the last message end the proxy forwarded:\n${table.join('\n')}`);
    return { figures, notes };
  });
}

if (isMain(import.meta.url)) await runAlone('network', benchNetwork);
