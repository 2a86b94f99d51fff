/**
 * Where words go. Results on stdout (with --json, only JSON); notes, progress and errors on
 * stderr, so `mailer log --json > sends.json` and cron mails stay clean.
 */
export interface OutputOptions {
  json: boolean;
  quiet: boolean;
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly isTTY: boolean;
  readonly color: boolean;

  constructor(opts: OutputOptions, private readonly stdout = process.stdout, private readonly stderr = process.stderr) {
    this.json = opts.json;
    this.quiet = opts.quiet;
    this.isTTY = !!stderr.isTTY;
    this.color = !!stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  }

  /** A result line for the person reading (not printed with --json). */
  line(text = ''): void {
    if (!this.json) this.stdout.write(`${text}\n`);
  }

  /** Raw bytes to stdout, as they are (show --raw, CSV). */
  write(data: string | Buffer): void {
    this.stdout.write(data);
  }

  /** A side note on stderr: what the tool is doing, not what it found. */
  note(text: string): void {
    if (!this.quiet) this.stderr.write(`${text}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`warning: ${text}\n`);
  }

  jsonResult(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  bold(text: string): string {
    return this.color ? `\u001b[1m${text}\u001b[22m` : text;
  }
}

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function isoTime(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
