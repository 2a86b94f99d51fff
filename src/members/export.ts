import type { Store } from '../store/store.js';
import { memberToErase } from './forget.js';

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/**
 * Everything stored about one member (GDPR art. 15 and 20): fields, addresses with history,
 * suppressions and opt-outs of those addresses, and each send with its attempts, bounces,
 * opens and unsubscribes, and its message exactly as stored.
 */
export function exportMember(store: Store, who: string, now: number): Record<string, unknown> {
  const m = memberToErase(store, who);
  const row = store.members.memberById(m.id)!;
  const addresses = store.members.addressHistory(m.id);
  const emails = [...new Set(addresses.map((a) => a.email))];
  const sends = store.log.logSends({ memberIds: [m.id], limit: 0 }).reverse();
  return {
    exportedAt: iso(now),
    member: { id: row.key, name: row.name, email: row.email, problem: row.emailProblem, fields: row.fields },
    addresses: addresses.map((a) => ({ email: a.email, addedAt: iso(a.addedAt), replacedAt: iso(a.replacedAt), revokedAt: iso(a.revokedAt), revokeReason: a.revokeReason })),
    suppressions: emails.map((e) => store.triage.suppression(e)).filter((s) => !!s).map((s) => ({ email: s!.email, reason: s!.reason, since: iso(s!.createdAt) })),
    optOuts: emails.flatMap((e) => store.triage.optOutsOf(e)).map((o) => ({ email: o.email, topic: o.topic, reason: o.reason, since: iso(o.createdAt) })),
    sends: sends.map((s) => {
      const full = store.sends.send(s.id)!;
      const raw = store.sends.rawMessage(s.id);
      const removed = raw ? null : store.erasure.contentRemovedAt(s.id);
      return {
        id: s.id, mailing: s.mailingId, type: s.type, test: s.test, email: s.email, status: s.status, category: s.category, reason: s.reason,
        createdAt: iso(s.createdAt), sentAt: iso(s.sentAt), messageId: s.messageId, token: full.token,
        data: full.data ? JSON.parse(full.data) : null,
        attempts: store.sends.attempts(s.id).map((a) => ({ at: iso(a.at), email: a.email, server: a.server, outcome: a.outcome, responseCode: a.responseCode, enhancedCode: a.enhancedCode, response: a.response, category: a.category })),
        bounces: store.triage.bounces(s.id).map((b) => ({ at: iso(b.at), recipient: b.recipient, action: b.action, status: b.statusCode, diagnostic: b.diagnostic, category: b.category, permanent: b.permanent })),
        events: store.triage.events(s.id).map((e) => ({ kind: e.kind, at: iso(e.at), lastAt: iso(e.lastAt), times: e.times })),
        attachments: store.sends.attachments(s.id).map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
        // As stored: with attachments, each file's body is cut out (listed above).
        message: raw ? raw.toString('utf8') : null,
        ...(removed !== null ? { messageRemovedAt: iso(removed) } : {}),
      };
    }),
  };
}
