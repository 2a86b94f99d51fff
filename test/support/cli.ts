import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'mailer.js');
export const EXAMPLES = path.join(ROOT, 'examples');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

const made: string[] = [];
// The folders go when the test file's process ends (keep them with MAILER_KEEP_TEST_DIRS=1).
process.on('exit', () => {
  if (process.env.MAILER_KEEP_TEST_DIRS) return;
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temp folder to run the CLI in, as a user would: its own mailer.db and outbox. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailer-test-'));
  made.push(dir);
  return dir;
}

/** Runs the built CLI the way a user does, with a clean environment. */
export function mailer(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startMailer(cwd, args, env).done;
}

/** Starts the CLI without waiting: for killing it mid-run or running two at once. */
export function startMailer(cwd: string, args: string[], env: Record<string, string> = {}): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, LANG: 'C', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? (signal ? 128 + 9 : -1), stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
  });
  return { child, done };
}

/** Opens the test's database read-only, to look at what the CLI stored. */
export function openDb(cwd: string): Database.Database {
  return new Database(path.join(cwd, 'mailer.db'), { readonly: true });
}

export function writeFile(dir: string, name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** A member CSV (semicolon, UTF-8) from rows of [id, name, email, ...extra]. */
export function membersCsv(header: string[], rows: string[][]): string {
  return [header, ...rows].map((r) => r.join(';')).join('\n') + '\n';
}

export const INVITATION = `Subject: Einladung für {{name}}
From: Verein <noreply@verein.example>
Type: invitation

Hallo {{name}},
Ihr Link: https://vote.example/register/{{token}}
`;

/** Members 1…n named "Member i" at mi@example.org. */
export const numberedMembers = (n: number) => Array.from({ length: n }, (_, i) => [String(i + 1), `Member ${i + 1}`, `m${i + 1}@example.org`]);

/** A temp folder with these members imported (rows flagged or rejected allowed) and the invitation template beside them. */
export async function folderWithRows(header: string[], rows: string[][]): Promise<string> {
  const dir = tempDir();
  writeFile(dir, 'members.csv', membersCsv(header, rows));
  const r = await mailer(dir, ['import', 'members.csv']);
  if (r.code > 1) throw new Error(`import failed: ${r.stderr}`);
  writeFile(dir, 'invitation.txt', INVITATION);
  return dir;
}

/** A temp folder with n numbered members imported and the invitation template beside them. */
export const folderWithMembers = (n: number): Promise<string> => folderWithRows(['id', 'name', 'email'], numberedMembers(n));

/** `mailer serve --port 0 [args]` in a folder; resolves with its port once it listens. */
export async function startServe(dir: string, args: string[] = [], env: Record<string, string> = {}) {
  const proc = startMailer(dir, ['serve', ...args, '--port', '0'], env);
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 10_000);
    proc.child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  let exited = false;
  proc.child.on('exit', () => { exited = true; });
  return { ...proc, port, base: `http://127.0.0.1:${port}`, get exited() { return exited; }, get stderr() { return stderr; } };
}
