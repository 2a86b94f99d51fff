import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BIN, ROOT, tempDir, type CliResult } from '../support/cli.js';

/**
 * The package as a new user gets it: `npm pack`, `npm install -g` of the tarball into a prefix of
 * its own, then the installed `mailer` runs the README's quick start with the same output as the
 * checkout.
 *
 * `npm pack` runs prepack, which rebuilds dist/: done in the checkout it would pull dist/ from
 * under the tests running beside this one. So the checkout's files (git's list: tracked and new,
 * nothing ignored) are copied to a temp folder and packed there, a build from a clean tree.
 *
 * better-sqlite3 fetches its prebuilt binary from GitHub releases, which a user reaches and this
 * machine may not; compiling it instead takes two minutes of both cores, slowing every test
 * beside this one. So a release server on 127.0.0.1 hands out the binary the checkout already
 * runs on (prebuild-install's own mirror setting, npm_config_better_sqlite3_binary_host): the
 * user's path, offline. Another version than the checkout's gets a 404, and npm compiles it.
 */

const NPM_ENV = (cache: string, extra: Record<string, string> = {}) => ({
  ...process.env,
  // A cache of its own: nothing left in the user's, and the install cannot lean on it.
  npm_config_cache: cache,
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  ...extra,
});

function run(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
  });
}

/** The commands of the README's quick start, as written there. */
function quickStart(): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Quick start'));
  assert.ok(section, 'the README has a "Quick start" section');
  const block = /```sh\n([\s\S]*?)```/.exec(section!);
  assert.ok(block, 'the quick start has a sh block');
  return block![1].split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).map((l) => l.split(/\s+/));
}

/** A quick start's output with what differs from run to run (folder, times, random values) masked. */
function masked(text: string, dir: string): string {
  return text
    .split(fs.realpathSync(dir)).join('<dir>').split(dir).join('<dir>')
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, '<time>')
    .replace(/^Date: .*$/gm, 'Date: <date>')
    .replace(/<(\d+)\.[0-9a-f]+@/g, '<$1.<id>@')
    .replace(/\/register\/[A-Za-z0-9_-]{16,}/g, '/register/<token>');
}

/** Runs the quick start in a fresh folder with its own copy of `examples`; the output of every step. */
async function runQuickStart(mailerCommand: string[], examples: string): Promise<string> {
  const dir = tempDir();
  fs.cpSync(examples, path.join(dir, 'examples'), { recursive: true });
  const env = { PATH: process.env.PATH ?? '', HOME: dir, LANG: 'C', NO_COLOR: '1' };
  const transcript: string[] = [];
  for (const line of quickStart()) {
    if (line[0] === 'cp') {
      assert.equal(line.length, 3, `a cp of one file: ${line.join(' ')}`);
      fs.copyFileSync(path.join(dir, line[1]), path.join(dir, line[2] === '.' ? path.basename(line[1]) : line[2]));
      continue;
    }
    assert.deepEqual(line.slice(0, 2), ['npx', 'mailer'], `every other quick start line is a mailer command: ${line.join(' ')}`);
    const r = await run(mailerCommand[0], [...mailerCommand.slice(1), ...line.slice(2)], { cwd: dir, env });
    assert.equal(r.code, 0, `${line.join(' ')}: ${r.stderr}`);
    transcript.push(`$ ${line.join(' ')}\n${r.stdout}${r.stderr}`);
  }
  transcript.push(`outbox: ${fs.readdirSync(path.join(dir, 'outbox')).sort().join(' ')}`);
  return masked(transcript.join('\n'), dir);
}

/** The checkout's files as git lists them (tracked and new, nothing ignored); without git, all but what .gitignore names. */
function checkoutFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString('utf8').split('\0').filter(Boolean);
  } catch {
    const ignored = /^(node_modules|dist|outbox|\.git)$|\.db(-wal|-shm)?$|^mailer\.json$/;
    const walk = (dir: string): string[] => fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })
      .filter((e) => !ignored.test(e.name) || dir !== '' && e.name === 'mailer.json')
      .flatMap((e) => e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
    return walk('');
  }
}

/** GitHub's release download for better-sqlite3, on 127.0.0.1: the checkout's own binary. */
async function prebuiltServer(tarball: string, version: string) {
  const wanted = `/v${version}/better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    asked.push(req.url ?? '');
    if (req.url !== wanted) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/gzip' });
    fs.createReadStream(tarball).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, asked, close: () => new Promise((r) => server.close(r)) };
}

test('npm pack → npm install -g: the tarball has the built CLI and no tests, and the installed mailer runs the quick start as the checkout does', { timeout: 600_000 }, async (t) => {
  const tmp = tempDir();
  let since = Date.now();
  const step = (what: string) => { t.diagnostic(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`); since = Date.now(); };
  const cache = path.join(tmp, 'npm-cache');

  // The checkout as git sees it (tracked and new files, nothing ignored), packed from a copy.
  const copy = path.join(tmp, 'checkout');
  for (const file of checkoutFiles()) {
    if (!fs.existsSync(path.join(ROOT, file))) continue; // deleted, not yet committed
    fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(copy, file));
  }
  assert.ok(!fs.existsSync(path.join(copy, 'dist')), 'the copy starts without dist/');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');

  step('copy of the checkout');
  const pack = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: copy, env: NPM_ENV(cache) });
  assert.equal(pack.code, 0, pack.stderr);
  const [packed] = JSON.parse(pack.stdout) as { name: string; filename: string; files: { path: string }[] }[];
  step('npm pack (prepack builds)');
  const names = packed.files.map((f) => f.path);
  assert.equal(packed.name, 'batch-mailer', 'the package name (the bare "mailer" is taken on npm)');
  for (const needed of ['bin/mailer.js', 'dist/src/cli.js', 'dist/src/members/import-worker.js', 'README.md', 'LICENSE', 'package.json', 'examples/members.csv', 'examples/mailer.json', 'examples/invitation.txt']) {
    assert.ok(names.includes(needed), `the tarball has ${needed}`);
  }
  assert.ok(names.some((n) => n.startsWith('examples/systemd/')), 'the tarball has the systemd examples');
  const stray = names.filter((n) => !/^(bin\/|dist\/src\/|examples\/|README\.md$|LICENSE$|package\.json$)/.test(n));
  assert.deepEqual(stray, [], 'nothing else: no tests, no sources, no dist/test');
  assert.ok(names.every((n) => !n.endsWith('.ts')), 'no TypeScript sources');

  // Installed as a user does, from the tarball, into a prefix of its own.
  const sqliteVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')).version as string;
  const binary = path.join(tmp, 'better-sqlite3-prebuilt.tar.gz');
  execFileSync('tar', ['czf', binary, '-C', path.join(ROOT, 'node_modules/better-sqlite3'), 'build/Release/better_sqlite3.node']);
  const releases = await prebuiltServer(binary, sqliteVersion);
  const prefix = path.join(tmp, 'prefix');
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', path.join(tmp, packed.filename)], {
    cwd: tmp, env: NPM_ENV(cache, { npm_config_better_sqlite3_binary_host: releases.url }),
  });
  await releases.close();
  assert.equal(install.code, 0, install.stderr);
  step(`npm install -g of the tarball (better-sqlite3's binary asked for: ${releases.asked.join(', ') || 'none'})`);
  const installed = path.join(prefix, 'bin', 'mailer');
  assert.ok(fs.existsSync(installed), 'npm linked the command as "mailer"');
  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'batch-mailer');
  assert.ok(!fs.existsSync(path.join(pkgDir, 'test')) && !fs.existsSync(path.join(pkgDir, 'dist', 'test')), 'no tests installed');

  const home = tempDir();
  const env = { PATH: process.env.PATH ?? '', HOME: home, LANG: 'C', NO_COLOR: '1' };
  const version = await run(installed, ['--version'], { cwd: home, env });
  const checkoutVersion = await run(process.execPath, [BIN, '--version'], { cwd: home, env });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, checkoutVersion.stdout, 'the same --version');
  assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version, '--version is the package version');

  const fromInstall = await runQuickStart([installed], path.join(pkgDir, 'examples'));
  step('the installed quick start');
  const fromCheckout = await runQuickStart([process.execPath, BIN], path.join(ROOT, 'examples'));
  step('the checkout\'s quick start');
  assert.match(fromCheckout, /mailing 2: done/, 'the quick start sent');
  assert.match(fromCheckout, /Sören Köhler/, 'show 8 is Sören Köhler\'s invitation, as the README says');
  assert.equal(fromInstall, fromCheckout, 'the installed mailer gives the quick start the checkout gives');
});
