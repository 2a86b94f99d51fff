/**
 * Shared plumbing of the benchmarks: timing child processes the way a user runs them, peak
 * memory, temp folders that are removed even on Ctrl-C, and the figure table.
 *
 * Benchmarks run by hand (`npm run bench`), never in CI: their numbers depend on the machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** dist/test/bench/lib.js → the package root, where bin/mailer.js lives. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'mailer.js');

export interface BenchOptions {
  /** 1 for the real sizes; smaller to check the benchmark itself quickly (figures then mean little) */
  scale: number;
  log: (line: string) => void;
}

export interface Figure {
  name: string;
  /** null when the figure could not be measured (a tool is missing); `detail` says why */
  value: number | null;
  unit: string;
  target?: { op: '>=' | '<='; value: number };
  detail?: string;
}

export interface BenchResult {
  figures: Figure[];
  /** diagnosis worth reading beside the table: query plans, where time went, what was skipped */
  notes: string[];
}

export type Verdict = 'pass' | 'FAIL' | 'skipped' | '-';

export function verdict(f: Figure): Verdict {
  if (f.value === null) return 'skipped';
  if (!f.target) return '-';
  return (f.target.op === '>=' ? f.value >= f.target.value : f.value <= f.target.value) ? 'pass' : 'FAIL';
}

// -- cleanup that survives Ctrl-C ------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let interruptHooked = false;

/** An interrupted run must not leave an SMTP sink listening or a gigabyte of CSV in /tmp. */
function hookInterrupt(): void {
  if (interruptHooked) return;
  interruptHooked = true;
  const bail = (signal: NodeJS.Signals) => {
    for (const child of liveChildren) killGroup(child, 'SIGTERM');
    for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`\nbench: ${signal}, cleaned up\n`);
    process.exit(130);
  };
  process.once('SIGINT', bail);
  process.once('SIGTERM', bail);
}

/** Runs `fn` with a fresh folder under os.tmpdir(), removed afterwards whatever happens. */
export async function withTempDir<T>(label: string, fn: (dir: string) => Promise<T>): Promise<T> {
  hookInterrupt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mailer-bench-${label}-`));
  liveDirs.add(dir);
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}

/**
 * Children are spawned detached, each the leader of its own process group, so that a wrapper
 * (GNU time, timeout) and what it runs go down together, by that group's id and nothing else.
 */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch { /* already gone */ }
}

/** A child (spawned with detached: true) that is killed on Ctrl-C as well as on normal exit. */
export function track(child: ChildProcess): ChildProcess {
  hookInterrupt();
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

// -- tools -----------------------------------------------------------------------------------

/** The full path of a command, or null; /usr/sbin is searched too (postfix puts smtp-sink there). */
export function which(command: string): string | null {
  if (command.includes('/')) return fs.existsSync(command) ? command : null;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = path.join(dir, command);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  return null;
}

let aptUpdated = false;

/**
 * A Debian package's command, installed on the spot when missing and we are root; otherwise
 * null plus a reason, and the benchmark that needs it reports the figure as skipped.
 */
export function ensureTool(command: string, pkg: string, log: (line: string) => void, debconf?: string): { path: string | null; reason?: string } {
  const found = which(command);
  if (found) return { path: found };
  if (process.getuid?.() !== 0 || !which('apt-get')) {
    return { path: null, reason: `${command} not found; install Debian's ${pkg} package (not root, so not tried)` };
  }
  log(`installing ${pkg} for ${command} (apt-get) …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const opts = { env, stdio: 'ignore' as const, timeout: 300_000 };
  if (debconf) spawnSync('debconf-set-selections', { ...opts, input: `${debconf}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  if (!aptUpdated) {
    spawnSync('apt-get', ['update', '-qq'], opts);
    aptUpdated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], opts);
  const after = which(command);
  if (after) return { path: after };
  return { path: null, reason: `${command} not found and \`apt-get install ${pkg}\` failed (exit ${r.status ?? r.signal})` };
}

// -- running and timing children ----------------------------------------------------------------

export interface Timed {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** wall time from spawn to exit, as a user waiting at the prompt sees it */
  ms: number;
  stdout: string;
  stderr: string;
  /** peak resident set size in MB, when asked for with `peakRss` */
  peakRssMb?: number;
  rssMethod?: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** also measure the child's peak RSS (GNU time, else polling /proc VmHWM) */
  peakRss?: boolean;
  /** killed after this long: a hung child must not hang the benchmark */
  timeoutMs?: number;
  /** flags for node itself, before the script (e.g. --import of a diagnostic preload) */
  nodeArgs?: string[];
}

const OUTPUT_CAP = 8 << 20;
const hasGnuTime = () => which('/usr/bin/time') !== null;

/** Runs a command to completion and times it; output is kept (capped) for checks. */
export function runTimed(command: string, args: string[], opts: RunOptions = {}): Promise<Timed> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  let rssFile: string | null = null;
  let argv = [command, ...args];
  if (opts.peakRss && hasGnuTime()) {
    // -o keeps time's line apart from the child's own stderr.
    rssFile = path.join(os.tmpdir(), `mailer-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
    argv = ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...argv];
  }
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    track(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout!.on('data', (c: Buffer) => { if ((outBytes += c.length) <= OUTPUT_CAP) out.push(c); });
    child.stderr!.on('data', (c: Buffer) => { if ((errBytes += c.length) <= OUTPUT_CAP) err.push(c); });

    // Without GNU time: VmHWM is the kernel's own high-water mark, so polling it only risks
    // missing growth in the last poll interval before exit.
    let hwmKb = 0;
    const poll = opts.peakRss && !rssFile
      ? setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
        } catch { /* gone already */ }
      }, 20)
      : null;
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);

    child.on('error', (e) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      reject(e);
    });
    child.on('exit', () => {
      // exit, not close: the wall time should not include draining our own pipes.
      const ms = performance.now() - start;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      child.on('close', (code, signal) => {
        const result: Timed = {
          code, signal, ms,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        };
        if (rssFile) {
          const text = fs.existsSync(rssFile) ? fs.readFileSync(rssFile, 'utf8') : '';
          fs.rmSync(rssFile, { force: true });
          // time writes "Command exited with non-zero status N" before the figure on failure.
          const kb = Number(text.trim().split('\n').pop());
          if (Number.isFinite(kb) && kb > 0) { result.peakRssMb = kb / 1024; result.rssMethod = 'GNU time %M'; }
        } else if (opts.peakRss && hwmKb > 0) {
          result.peakRssMb = hwmKb / 1024;
          result.rssMethod = '/proc VmHWM, polled every 20 ms';
        }
        resolve(result);
      });
    });
  });
}

/** `node bin/mailer.js …`, timed. */
export function mailer(args: string[], opts: RunOptions = {}): Promise<Timed> {
  return runTimed(process.execPath, [...(opts.nodeArgs ?? []), BIN, ...args], opts);
}

/** Throws with the child's own words when it did not do what the benchmark needs. */
export function expectOk(what: string, r: Timed): Timed {
  if (r.code !== 0) {
    throw new Error(`${what} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  }
  return r;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs `fn` `runs` times after `warmup` unmeasured runs (so the file cache is warm for each). */
export async function medianOf(runs: number, fn: () => Promise<number> | number, warmup = 1): Promise<{ median: number; all: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const all: number[] = [];
  for (let i = 0; i < runs; i++) all.push(await fn());
  return { median: median(all), all };
}

/** A port nobody listens on right now, on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until something accepts connections on 127.0.0.1:port, for at most `ms`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

/** Writes a big file in chunks, respecting back-pressure, so memory stays flat. */
export async function writeLines(file: string, header: string, count: number, line: (i: number) => string): Promise<void> {
  const stream = fs.createWriteStream(file);
  const write = (text: string) => new Promise<void>((resolve, reject) => {
    stream.write(text, (e) => (e ? reject(e) : resolve()));
  });
  await write(`${header}\n`);
  const CHUNK = 10_000;
  for (let start = 0; start < count; start += CHUNK) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(count, start + CHUNK); i++) lines.push(line(i));
    await write(`${lines.join('\n')}\n`);
  }
  await new Promise<void>((resolve, reject) => stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

// -- sample data -------------------------------------------------------------------------------

/** A seeded generator, so two runs import the same file and their figures compare. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// German names on purpose: the import must cope with multi-byte UTF-8, not just ASCII.
const FIRST = ['Anna', 'Jürgen', 'Sören', 'Brigitte', 'Heike', 'Özlem', 'Lukas', 'Renée', 'Friedrich', 'Maria', 'Günther', 'Käthe', 'Jörg', 'Ute', 'Björn', 'Zoë'];
const LAST = ['Müller', 'Weiß', 'Köhler', 'Groß', 'Schäfer', 'Öztürk', 'Bäcker', 'Dubois', 'Straße', 'Jäger', 'Vogel', 'Meier', 'Schmidt', 'Hoffmann', 'Krüger', 'Lößl'];
const ASCII: Record<string, string> = { ä: 'ae', ö: 'oe', ü: 'ue', ß: 'ss', é: 'e', ë: 'e', Ö: 'oe', Ä: 'ae', Ü: 'ue' };
export const REGIONS = ['Nord', 'Süd', 'Ost', 'West', 'Mitte'];
export const MONTHS = ['Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August', 'September', 'Oktober', 'November', 'Dezember'];
export const MEMBER_HEADER = 'id;name;email;region;month';

/** One member line `id;name;email;region;month`, unique id and address per index. */
export function memberLine(i: number, random: () => number): string {
  const first = FIRST[Math.floor(random() * FIRST.length)];
  const last = LAST[Math.floor(random() * LAST.length)];
  const local = `${first}.${last}`.toLowerCase().replace(/[äöüßéëÖÄÜ]/g, (c) => ASCII[c] ?? c);
  const id = 100_000 + i;
  return `${id};${first} ${last};${local}.${id}@example.org;${REGIONS[i % REGIONS.length]};${MONTHS[Math.floor(random() * 12)]}`;
}

// -- output --------------------------------------------------------------------------------------

export function fmt(value: number | null, unit: string): string {
  if (value === null) return '—';
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })} ${unit}`.trim();
}

export function formatTable(figures: Figure[]): string {
  const rows = [
    ['figure', 'value', 'target', 'result'],
    ...figures.map((f) => [
      f.name,
      fmt(f.value, f.unit),
      f.target ? `${f.target.op === '>=' ? '≥' : '≤'} ${fmt(f.target.value, f.unit)}` : '',
      verdict(f),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 1 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** For a benchmark file run on its own: its figures and notes, exit 1 if one missed. */
export async function runAlone(name: string, bench: (o: BenchOptions) => Promise<BenchResult>): Promise<void> {
  const scale = process.argv.includes('--quick') ? 0.05 : 1;
  const log = (line: string) => process.stderr.write(`[${name}] ${line}\n`);
  const { figures, notes } = await bench({ scale, log });
  process.stdout.write(`${formatTable(figures)}\n`);
  if (notes.length) process.stdout.write(`\n${notes.join('\n\n')}\n`);
  if (figures.some((f) => verdict(f) === 'FAIL')) process.exitCode = 1;
}

/** True when this module is the script node was started with (not imported by run.ts). */
export function isMain(moduleUrl: string): boolean {
  return !!process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl);
}
