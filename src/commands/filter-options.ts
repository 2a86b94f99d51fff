import type { Command } from 'commander';
import { collect } from './context.js';

/** The send filters of log (and, later, retry and stats): declared once, parsed by core/filters. */
export function addSendFilterOptions(command: Command): Command {
  return command
    .option('--member <id|email>', 'sends to this member (repeatable)', collect, [])
    .option('--email <address>', 'sends that went to this address (repeatable)', collect, [])
    .option('--type <type>', 'mail type, from the template\'s Type: line (repeatable)', collect, [])
    .option('--mailing <id>', 'sends of this mailing (repeatable)', collect, [])
    .option('--status <status>', 'queued, sending, sent, failed, deferred, skipped, … (repeatable)', collect, [])
    .option('--since <when>', '2026-11-01, 2026-11-01T08:00, or back from now: 90m, 36h, 7d')
    .option('--until <when>', 'same forms; a date alone includes that day');
}
