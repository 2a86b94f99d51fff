import { printable } from './printable.js';

const BOLD_ON = '\u001b[1m';
const BOLD_OFF = '\u001b[22m';
const JSON_UNSAFE = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

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
    if (!this.json) this.stdout.write(`${this.printable(text)}\n`);
  }

  /** Raw bytes to stdout, as they are (show --raw, CSV). */
  write(data: string | Buffer): void {
    this.stdout.write(data);
  }

  /** A side note on stderr: what the tool is doing, not what it found. */
  note(text: string): void {
    if (!this.quiet) this.stderr.write(`${this.printable(text)}\n`);
  }

  /** One line of a running service's log on stderr (serve's request lines); --quiet leaves it. */
  logLine(text: string): void {
    this.stderr.write(`${this.printable(text)}\n`);
  }

  /** What the user must act on (a sign-in code), on stderr even with --quiet and --json. */
  prompt(text: string): void {
    this.stderr.write(`${this.printable(text)}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`warning: ${this.printable(text)}\n`);
  }

  /** JSON escapes C0 controls itself; DEL, C1 and bidi overrides are written as \u escapes too (the same value). */
  jsonResult(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`);
  }

  bold(text: string): string {
    return this.color ? `${BOLD_ON}${text}${BOLD_OFF}` : text;
  }

  /**
   * Every line printed goes through printable(), which keeps line breaks (tables and bodies
   * come as one text). The one escape sequence let through is bold()'s own, on a colour terminal.
   */
  private printable(text: string): string {
    if (!this.color) return printable(text, true);
    return text.split(BOLD_ON).map((on) => on.split(BOLD_OFF).map((part) => printable(part, true)).join(BOLD_OFF)).join(BOLD_ON);
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
