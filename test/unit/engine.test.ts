import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliverSends, listSource, type QueueOptions, type QueueOutcome } from '../../src/send/queue.js';
import { stopRequest } from '../../src/send/session.js';
import { Catalog } from '../../src/domain/catalog.js';
import { DeliveryError, type DeliveryStore, type Envelope, type Transport } from '../../src/domain/ports.js';
import type { ClaimResult, Mailing, Member, Send } from '../../src/domain/types.js';

/** The send engine alone: a store and servers made of arrays, no SQLite, no SMTP. */

const NOW = 1_000_000;
const BACKOFF = [1_000, 2_000];

const MAILING: Mailing = {
  id: 1, type: 'newsletter', topic: 'newsletter', required: false, templatePath: 't.txt',
  template: 'Subject: Hallo {{name}}\nFrom: Verein <verein@example.org>\n\nHallo {{name}}, Region {{region}}.\n',
  htmlTemplate: null, footer: null, settings: { from: 'Verein <verein@example.org>' }, test: false, status: 'running',
  statusReason: null, selected: 0, createdAt: 0, finishedAt: null, scheduledAt: null,
};

interface FakeMember {
  email: string;
  region?: string;
  /** the claim finds the address unmailable now (as the store's skip rule would) */
  skip?: { category: string; reason: string };
  /** attempts before this run */
  attempts?: number;
}

type Write = [string, ...unknown[]];

/** A DeliveryStore over arrays: claims as the real one does, and keeps every write in order. */
class FakeStore implements DeliveryStore {
  readonly writes: Write[] = [];
  readonly sends = new Map<number, { status: string; attempts: number; token: string | null; claimed: boolean }>();
  /** handed over (as the fake servers say) minus recorded: at most one per worker */
  unrecorded = 0;
  maxUnrecorded = 0;
  transactions = 0;

  constructor(private readonly members: FakeMember[]) {
    members.forEach((m, i) => this.sends.set(i + 1, { status: 'queued', attempts: m.attempts ?? 0, token: null, claimed: false }));
  }

  private member(id: number): Member {
    const m = this.members[id - 1];
    return { id, key: `m${id}`, email: m.email, name: `Name ${id}`, fields: { region: m.region ?? 'Nord' }, emailProblem: null };
  }

  private sendRow(id: number): Send {
    const s = this.sends.get(id)!;
    return {
      id, mailingId: 1, memberId: id, memberKey: `m${id}`, memberName: `Name ${id}`, email: this.members[id - 1].email,
      type: 'newsletter', test: false, status: s.status as Send['status'], category: null, reason: null, attempts: s.attempts,
      token: s.token, messageId: null, createdAt: 0, sentAt: null, updatedAt: NOW, retargetOf: null, retargetedTo: null, maybeDuplicate: false,
    };
  }

  claimForDelivery(id: number, token: string, now: number): ClaimResult | undefined {
    const s = this.sends.get(id);
    if (!s || !['queued', 'deferred', 'failed'].includes(s.status)) return undefined;
    const skip = this.members[id - 1].skip;
    if (skip) {
      this.markSkipped(id, skip.category, skip.reason, now);
      return { send: this.sendRow(id), member: this.member(id), token: null, skip };
    }
    const claimed = this.claimSend(id, token, now)!;
    return { send: this.sendRow(id), member: this.member(id), token: claimed, skip: null };
  }

  claimSend(id: number, token: string, _now: number): string | undefined {
    const s = this.sends.get(id)!;
    if (!['queued', 'deferred', 'failed'].includes(s.status)) return undefined;
    s.attempts++;
    s.token ??= token;
    s.claimed = true;
    return s.token;
  }

  markSkipped(id: number, category: string, reason: string, _now: number): void {
    this.sends.get(id)!.status = 'skipped';
    this.writes.push(['skipped', id, category, reason]);
  }

  requeue(id: number): void {
    this.writes.push(['requeue', id]);
  }

  recordSent(r: Parameters<DeliveryStore['recordSent']>[0]): void {
    this.sends.get(r.id)!.status = 'sent';
    this.unrecorded--;
    this.writes.push(['sent', r.id, r.email, r.server, r.response]);
  }

  recordUnsent(r: Parameters<DeliveryStore['recordUnsent']>[0]): void {
    this.sends.get(r.id)!.status = r.status;
    this.unrecorded--;
    this.writes.push([r.status, r.id, r.category, r.permanent, r.retryAt, r.response]);
  }

  recordInterrupted(r: Parameters<DeliveryStore['recordInterrupted']>[0]): void {
    const s = this.sends.get(r.id)!;
    s.attempts--;
    s.claimed = false;
    this.unrecorded--;
    this.writes.push(['interrupted', r.id, r.server, r.category]);
  }

  mailing(id: number): Mailing | undefined {
    return id === 1 ? MAILING : undefined;
  }

  linkSecret(): Buffer {
    return Buffer.alloc(32, 7);
  }

  nextQueued(): number[] {
    throw new Error('not used: the tests give the send ids');
  }

  immediate<T>(fn: () => T): T {
    this.transactions++;
    return fn();
  }
}

/** What a fake server answers for one recipient: its reply, or the error it throws. */
type Answer = string | DeliveryError | ((n: number) => string | DeliveryError);

class FakeTransport implements Transport {
  readonly kind = 'smtp' as const;
  readonly tried: string[] = [];
  constructor(readonly description: string, private readonly store: FakeStore, private readonly answer: (to: string) => Answer, private readonly delayMs = 0) {}

  async deliver(envelope: Envelope, raw: Buffer, label: string): Promise<string> {
    assert.ok(raw.length > 0);
    assert.equal(envelope.from, 'verein@example.org');
    this.tried.push(`${label}:${envelope.to[0]}`);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.store.unrecorded++;
    this.store.maxUnrecorded = Math.max(this.store.maxUnrecorded, this.store.unrecorded);
    let a = this.answer(envelope.to[0]);
    if (typeof a === 'function') a = a(this.tried.length);
    if (a instanceof DeliveryError) throw a;
    return a;
  }

  async close(): Promise<void> {}
}

const ok = () => '250 2.0.0 queued';
const unknownUser = new DeliveryError({ message: 'rejected', responseCode: 550, response: '550 5.1.1 user unknown' });
const greylisted = new DeliveryError({ message: 'rejected', responseCode: 451, response: '451 4.7.1 greylisted, try again later' });
const refused = new DeliveryError({ message: 'connect ECONNREFUSED 127.0.0.1:25', code: 'ECONNREFUSED' });
const reset = new DeliveryError({ message: 'socket reset', code: 'ECONNRESET' });

function options(extra: Partial<QueueOptions> = {}): QueueOptions {
  return {
    concurrency: 1, intervalMs: 0, maxConnectionErrors: 5, backoff: BACKOFF,
    catalog: new Catalog(), clock: () => NOW, ...extra,
  };
}

interface Row {
  name: string;
  members: FakeMember[];
  /** the servers, each by what it answers */
  servers: ((to: string) => Answer)[];
  opts?: Partial<QueueOptions>;
  counters: Partial<QueueOutcome> & { done: number };
  writes: Write[];
  stopped?: { server: string; category: string } | null;
  /** what each server was handed, by send id and address */
  tried?: string[][];
}

const a = 'a@example.org';
const b = 'b@example.org';
const c = 'c@example.org';
const zero = { sent: 0, failed: 0, deferred: 0, skipped: 0, tooLarge: 0, unattachable: 0, attachmentsChanged: [], limitReached: false, interrupted: false };

const rows: Row[] = [
  {
    name: 'sent',
    members: [{ email: a }],
    servers: [ok],
    counters: { ...zero, done: 1, sent: 1 },
    writes: [['sent', 1, a, 'fake-1', '250 2.0.0 queued']],
  },
  {
    name: 'permanent failure',
    members: [{ email: a }],
    servers: [() => unknownUser],
    counters: { ...zero, done: 1, failed: 1 },
    writes: [['failed', 1, 'unknown-mailbox', true, null, '550 5.1.1 user unknown']],
  },
  {
    name: 'temporary failure: deferred for the first back-off step',
    members: [{ email: a }],
    servers: [() => greylisted],
    counters: { ...zero, done: 1, deferred: 1 },
    writes: [['deferred', 1, 'greylisted', false, NOW + BACKOFF[0], '451 4.7.1 greylisted, try again later']],
  },
  {
    name: 'temporary failure on the second attempt: the second back-off step',
    members: [{ email: a, attempts: 1 }],
    servers: [() => greylisted],
    counters: { ...zero, done: 1, deferred: 1 },
    writes: [['deferred', 1, 'greylisted', false, NOW + BACKOFF[1], '451 4.7.1 greylisted, try again later']],
  },
  {
    name: 'temporary failure past the last back-off step: failed, with its last reason',
    members: [{ email: a, attempts: 2 }],
    servers: [() => greylisted],
    counters: { ...zero, done: 1, failed: 1 },
    writes: [['failed', 1, 'greylisted', false, null, '451 4.7.1 greylisted, try again later (gave up after 3 attempts)']],
  },
  {
    name: 'server-level error: the send goes to the next server, the failing one is left out',
    members: [{ email: a }, { email: b }],
    servers: [() => refused, ok],
    counters: { ...zero, done: 2, sent: 2 },
    writes: [['interrupted', 1, 'fake-1', 'server-unreachable'], ['sent', 1, a, 'fake-2', '250 2.0.0 queued'], ['sent', 2, b, 'fake-2', '250 2.0.0 queued']],
    stopped: null,
    tried: [[`1:${a}`], [`1:${a}`, `2:${b}`]],
  },
  {
    name: 'server-level error on the only server: given back, the server left out, the run stopped',
    members: [{ email: a }, { email: b }],
    servers: [() => reset],
    counters: { ...zero, done: 2 },
    writes: [['interrupted', 1, 'fake-1', 'server-unreachable'], ['interrupted', 2, 'fake-1', 'server-unreachable']],
    stopped: { server: 'fake-1', category: 'server-unreachable' },
  },
  {
    name: 'a server that refuses at once stops the run: the rest stays queued',
    members: [{ email: a }, { email: b }],
    servers: [() => refused],
    counters: { ...zero, done: 1 },
    writes: [['interrupted', 1, 'fake-1', 'server-unreachable']],
    stopped: { server: 'fake-1', category: 'server-unreachable' },
  },
  {
    name: 'skip on claim: takes no place under --limit',
    members: [{ email: a, skip: { category: 'suppressed', reason: 'the address is suppressed: bounced' } }, { email: b }, { email: c }],
    servers: [ok],
    opts: { limit: 1 },
    counters: { ...zero, done: 2, sent: 1, skipped: 1, limitReached: true },
    writes: [['skipped', 1, 'suppressed', 'the address is suppressed: bounced'], ['sent', 2, b, 'fake-1', '250 2.0.0 queued']],
  },
  {
    name: 'render skip (an empty field): takes no place under --limit',
    members: [{ email: a, region: '' }, { email: b }, { email: c }],
    servers: [ok],
    opts: { limit: 1 },
    counters: { ...zero, done: 2, sent: 1, skipped: 1, limitReached: true },
    writes: [['skipped', 1, 'empty-field', 'the field "region" is empty for this member (the template uses {{region}}); fill it or send with --allow-empty'], ['sent', 2, b, 'fake-1', '250 2.0.0 queued']],
  },
  {
    name: 'too large: skipped and counted as too large, nothing handed over',
    members: [{ email: a }],
    servers: [ok],
    opts: { maxMessageBytes: 10 },
    counters: { ...zero, done: 1, skipped: 1, tooLarge: 1 },
    writes: [['skipped', 1, 'too-large', 'the message is at least 27 bytes encoded, over maxMessageBytes 10; shorten the template, or raise "maxMessageBytes" in mailer.json if the server takes it']],
    tried: [[]],
  },
  {
    name: '--limit: counts the sends handed over, the rest stays queued',
    members: [{ email: a }, { email: b }, { email: c }],
    servers: [() => unknownUser],
    opts: { limit: 2 },
    counters: { ...zero, done: 2, failed: 2, limitReached: true },
    writes: [['failed', 1, 'unknown-mailbox', true, null, '550 5.1.1 user unknown'], ['failed', 2, 'unknown-mailbox', true, null, '550 5.1.1 user unknown']],
  },
  {
    name: '--limit not reached when the queue runs out first',
    members: [{ email: a }],
    servers: [ok],
    opts: { limit: 2 },
    counters: { ...zero, done: 1, sent: 1, limitReached: false },
    writes: [['sent', 1, a, 'fake-1', '250 2.0.0 queued']],
  },
];

for (const row of rows) {
  test(`engine: ${row.name}`, async () => {
    const store = new FakeStore(row.members);
    const servers = row.servers.map((answer, i) => new FakeTransport(`fake-${i + 1}`, store, answer));
    const progress: number[] = [];
    const outcome = await deliverSends(store, servers, listSource(row.members.map((_, i) => i + 1)), options({ ...row.opts, onProgress: (p) => progress.push(p.done) }));
    const { stopped, ...counters } = outcome;
    assert.deepEqual(counters, { ...zero, ...row.counters });
    assert.deepEqual(store.writes, row.writes);
    if (row.stopped !== undefined) assert.deepEqual(stopped && { server: stopped.server, category: stopped.category }, row.stopped);
    else assert.equal(stopped, null);
    if (row.tried) assert.deepEqual(servers.map((s) => s.tried), row.tried);
    assert.deepEqual(progress, Array.from({ length: outcome.done }, (_, i) => i + 1), 'progress once per send finished');
  });
}

test('engine: a worker records its last result and claims its next in one write, and never holds two unrecorded', async () => {
  const members = Array.from({ length: 30 }, (_, i) => ({ email: `m${i}@example.org` }));
  const ids = members.map((_, i) => i + 1);
  // One worker, so one write per transaction: the first claim, then result-and-next-claim per send.
  const alone = new FakeStore(members);
  assert.equal((await deliverSends(alone, [new FakeTransport('fake-1', alone, ok)], listSource(ids), options())).sent, 30);
  assert.equal(alone.transactions, 1 + 30);
  const store = new FakeStore(members);
  const outcome = await deliverSends(store, [new FakeTransport('fake-1', store, ok, 1)], listSource(ids), options({ concurrency: 3 }));
  assert.equal(outcome.sent, 30);
  assert.equal(store.writes.length, 30);
  assert.ok(store.maxUnrecorded <= 3, `at most one handed over but unrecorded per worker: ${store.maxUnrecorded}`);
});

// Last: the stop request stays set for the rest of this process.
test('engine: a stop request: the sends in hand are finished and recorded, nothing new is taken', async () => {
  const members = [{ email: a }, { email: b }, { email: c }];
  const store = new FakeStore(members);
  const server = new FakeTransport('fake-1', store, () => {
    stopRequest.abort();
    return '250 ok';
  });
  const outcome = await deliverSends(store, [server], listSource([1, 2, 3]), options());
  assert.deepEqual({ done: outcome.done, sent: outcome.sent, interrupted: outcome.interrupted, limitReached: outcome.limitReached }, { done: 1, sent: 1, interrupted: true, limitReached: false });
  assert.deepEqual(store.writes, [['sent', 1, a, 'fake-1', '250 ok']]);
  assert.deepEqual([...store.sends.values()].map((s) => s.status), ['sent', 'queued', 'queued']);
});
