import type { Send } from '../domain/types.js';

/** A send as `log --json` and `log --csv` print it: the field names are a contract with scripts. */
export const SEND_RECORD_FIELDS = [
  'id', 'mailing', 'member', 'email', 'type', 'status', 'reason', 'category', 'attempts', 'createdAt', 'sentAt', 'messageId', 'test',
] as const;

export type SendRecord = Record<(typeof SEND_RECORD_FIELDS)[number], string | number | boolean | null>;

export function sendRecord(s: Send): SendRecord {
  return {
    id: s.id,
    mailing: s.mailingId,
    member: s.memberKey,
    email: s.email,
    type: s.type,
    status: s.status,
    reason: s.reason,
    category: s.category,
    attempts: s.attempts,
    createdAt: new Date(s.createdAt).toISOString(),
    sentAt: s.sentAt === null ? null : new Date(s.sentAt).toISOString(),
    messageId: s.messageId,
    test: s.test,
  };
}
