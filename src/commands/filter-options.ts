import type { Command } from 'commander';
import type { SettingsFlags } from '../config/settings.js';
import { collect } from './context.js';
import { DEFAULT_CONCURRENCY } from '../config/settings.js';

/** What addSendFilterOptions hands to an action. */
export interface SendFilterFlags {
  member: string[];
  email: string[];
  type: string[];
  mailing: string[];
  status: string[];
  since?: string;
  until?: string;
}

/** The send filters of log and retry: declared once, parsed by config/filters. */
export function addSendFilterOptions(command: Command): Command {
  return command
    .option('--member <id|email>', 'sends to this member (repeatable)', collect, [])
    .option('--email <address>', 'sends that went to this address (repeatable)', collect, [])
    .option('--type <type>', 'mail type, from the template\'s Type: line (repeatable)', collect, [])
    .option('--mailing <id>', 'sends of this mailing (repeatable)', collect, [])
    .option('--status <status>', 'queued, sent, failed, deferred, skipped, bounced, retargeted, cancelled (repeatable)', collect, [])
    .option('--since <when>', '2026-11-01, 2026-11-01T08:00, or back from now: 90m, 36h, 7d')
    .option('--until <when>', 'same forms; a date alone includes that day');
}

/** What addTransportOptions hands to an action. */
export interface TransportFlags {
  rate?: string;
  concurrency?: string;
  smtp: string[];
  outbox?: string;
}

/** Where mail goes, for every command that sends. */
export function addTransportOptions(command: Command): Command {
  return command
    .option('--rate <n/unit>', 'at most this many per second, minute or hour: 10/s, 300/m, 2000/h')
    .option('--concurrency <n>', `parallel SMTP connections (default ${DEFAULT_CONCURRENCY})`)
    .option('--smtp <url>', 'SMTP server, smtp://user@host:587 or smtps://user@host:465 (password: $MAILER_SMTP_PASSWORD)', collect, [])
    .option('--outbox <dir>', 'folder for .eml files when no SMTP server is set (default ./outbox)');
}

export function transportFlags(opts: TransportFlags): SettingsFlags {
  return { smtp: opts.smtp, outbox: opts.outbox, rate: opts.rate, concurrency: opts.concurrency };
}
